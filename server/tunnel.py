"""Opening a public ngrok URL for the local server through pyngrok.

Every way this can fail (no agent and no network to download it, a bad token, no network)
becomes one :class:`TunnelError` line; ``twin serve`` then keeps serving locally.
"""
from __future__ import annotations

import os


class TunnelError(RuntimeError):
    """The tunnel could not be opened (agent missing and not downloadable, no network, bad token)."""


def open_tunnel(port: int, authtoken: str | None = None, ngrok_path: str | None = None) -> str:
    """Open an HTTPS tunnel to ``port`` and return its public URL."""
    try:
        from pyngrok import conf, ngrok
        from pyngrok.exception import PyngrokError
    except ImportError:
        raise TunnelError("pyngrok is not installed: pip install pyngrok") from None
    config = conf.PyngrokConfig(ngrok_path=ngrok_path) if ngrok_path else conf.get_default()
    if ngrok_path and not os.path.isfile(ngrok_path):
        raise TunnelError(f"ngrok agent not found at {ngrok_path}")
    token = authtoken or os.environ.get("NGROK_AUTHTOKEN")
    try:
        if token:
            ngrok.set_auth_token(token, pyngrok_config=config)
        return ngrok.connect(port, "http", pyngrok_config=config).public_url
    except PyngrokError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TunnelError(f"could not open the ngrok tunnel: {first}") from None
    except OSError as exc:
        raise TunnelError(f"could not open the ngrok tunnel (no network or no agent): {exc}") from None
    except Exception as exc:  # noqa: BLE001 - pyngrok raises assorted errors; never a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TunnelError(f"could not open the ngrok tunnel: {first}") from None
