"""``twin bot``: the twin answers where people text (Telegram, Discord), with the person's timing.

- ``cli``        the ``twin bot telegram|discord`` commands (options shared by both)
- ``engine``     what both platforms share: a chat's burst debounced and answered once through
                 the server's reply path, each `` | `` part sent on its own with typing between
- ``timing``     playing back the person's timing (``twin.toml`` ``[timing]``)
- ``access``     who gets answers: the allowlist, owners' /pause and /resume, groups
- ``telegram_bot`` / ``discord_bot``  each platform's client (python-telegram-bot, discord.py)
- ``logs``       logging without tokens or message text
"""
