"""Serving stage: the twin behind an HTTP API (``twin serve``) and in the terminal (``twin chat``).

The app (Flask): ``app`` (the factory), ``security`` (keys, throttles, headers), ``errors``
(JSON errors), ``schema`` (request validation), one blueprint per area: ``api`` (/generate),
``openai_compat`` (/v1), ``feedback`` (/feedback), ``pages`` (/, /health, /metrics); ``state``
(what they share). No Flask in: ``reply_log`` (the ids /feedback rates), ``keys``,
``ratelimit``, ``conversations``, ``metrics``; the prompt is built by ``dataprocess.live_prompt``
(the training rules). Models: ``backends`` (which one to load); the runtimes themselves, the
decoding contract and the reply filters are the ``voice`` package's, shared with ``twin eval``.
Commands: ``cli`` (``twin serve``), ``chat`` (``twin chat``); ``tunnel`` (ngrok);
``static/chat.html`` (the page).
"""
