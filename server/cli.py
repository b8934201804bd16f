"""The ``twin serve`` command: the twin's HTTP API on a production WSGI server (waitress)."""
from __future__ import annotations

import logging
import secrets
from pathlib import Path

import click

from dataprocess.workspace import Workspace

from .app import create_app
from .backends import BackendError, LlamaCppBackend
from .tunnel import TunnelError, open_tunnel


def find_model(workspace: Path) -> Path:
    """The newest ``twin-*.gguf`` in WORKSPACE/model."""
    models = sorted(Workspace(workspace).model_dir.glob("twin-*.gguf"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise click.ClickException(f"no twin-*.gguf in {Workspace(workspace).model_dir}: run `twin export` first")
    return models[-1]


@click.command("serve")
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
              help="Serve the newest GGUF exported into this workspace.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Serve this GGUF file instead.")
@click.option("--persona", help="Name the twin speaks as (default: the workspace's persona).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--api-key", envvar="TWIN_API_KEY", help="Require 'Authorization: Bearer KEY' (env TWIN_API_KEY).")
@click.option("--public", is_flag=True, help="Also open a public ngrok URL (an API key is then required; "
              "one is generated if none is given).")
@click.option("--ngrok-token", envvar="NGROK_AUTHTOKEN", help="ngrok auth token (env NGROK_AUTHTOKEN).")
@click.option("--ngrok-path", type=click.Path(dir_okay=False), help="Use this ngrok agent binary.")
@click.option("--gpu-layers", type=int, default=0, show_default=True, help="Layers to offload to the GPU (-1 = all).")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for generation.")
@click.option("--log-requests", is_flag=True, help="Log message text (off by default: logs hold no message text).")
def serve_command(workspace, model_path, persona, host, port, api_key, public, ngrok_token, ngrok_path,
                  gpu_layers, threads, log_requests):
    """Serve the twin over HTTP: POST /generate, GET /health."""
    if bool(workspace) == bool(model_path):
        raise click.UsageError("give exactly one of --workspace or --model")
    settings = Workspace(workspace).load_settings() if workspace else {}
    model_path = model_path or find_model(workspace)
    persona = persona or settings.get("persona", {}).get("name", "me")
    if public and not api_key:
        api_key = secrets.token_urlsafe(24)
        click.echo(f"--public needs an API key; generated one: {api_key}")
    try:
        backend = LlamaCppBackend(model_path, gpu_layers=gpu_layers, threads=threads)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(backend, persona=persona, api_key=api_key, log_requests=log_requests,
                     lowercase=settings.get("data", {}).get("lowercase", True))
    local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    click.echo(f"serving {model_path.name} as {persona!r} on {local}")
    if public:
        try:
            url = open_tunnel(port, authtoken=ngrok_token, ngrok_path=ngrok_path)
            click.echo(f"public URL: {url}")
            click.echo(f"try: curl -X POST {url}/generate -H 'Authorization: Bearer {api_key}' "
                       "-H 'Content-Type: application/json' -d '{\"text\": \"hello, how are you?\"}'")
        except TunnelError as exc:
            click.echo(f"warning: {exc}; serving locally only", err=True)
    from waitress import serve

    serve(app, host=host, port=port, threads=4, ident="twin")
