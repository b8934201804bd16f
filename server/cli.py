"""The ``twin serve`` command: the twin's HTTP API on waitress (a production WSGI server).

Loads the backend (llama.cpp over the workspace's newest GGUF by default, or the adapter
through transformers), builds the app with its protections, optionally opens the public ngrok
URL, and serves. waitress runs enough threads for the bounded queue in front of the model.
"""
from __future__ import annotations

import logging
import secrets
import sqlite3
from pathlib import Path

import click

from core.artifacts import persona_from_gguf_name
from core.workspace import Workspace

from .app import MAX_TOKENS_CAP, create_app
from .backends import BACKENDS, BackendError, auto_workers, open_backend
from .conversations import ConversationStore
from .feedback import FEEDBACK_FILE
from .queueing import Gate
from .ratelimit import RateLimiter
from .tunnel import TunnelError, open_tunnel


def _rate(ctx, param, value):
    try:
        RateLimiter.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def model_options(func):
    """The options ``twin serve`` and ``twin chat`` share: which model, on what."""
    for option in reversed([
        click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
                     help="Use this workspace's newest model/twin-*.gguf (or its adapter with --backend transformers)."),
        click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Use this GGUF file instead."),
        click.option("--backend", type=click.Choice(BACKENDS), default="llama", show_default=True,
                     help="llama: the exported GGUF through llama.cpp; transformers: base model + "
                          "WORKSPACE/adapter (before export; slower)."),
        click.option("--persona", help="Name the twin speaks as (default: the workspace's persona)."),
        click.option("--gpu-layers", type=int, default=0, show_default=True,
                     help="Layers to offload to the GPU (-1 = all; llama backend)."),
        click.option("--threads", type=click.IntRange(min=1), help="CPU threads for generation."),
        click.option("--context", type=click.IntRange(256, 131072), default=2048, show_default=True,
                     help="Context window in tokens (llama backend)."),
    ]):
        func = option(func)
    return func


def load(workspace, model_path, backend, persona, gpu_layers, threads, context, gate=None, timeout=None,
         parallel=1, workers=1):
    """(backend, persona, settings) for a command's options; one-line errors."""
    if bool(workspace) == bool(model_path):
        raise click.UsageError("give exactly one of --workspace or --model")
    if backend == "transformers" and not workspace:
        raise click.UsageError("--backend transformers needs --workspace (it loads WORKSPACE/adapter)")
    settings = Workspace(workspace).load_settings() if workspace else {}
    try:
        loaded = open_backend(backend, workspace=workspace, model_path=model_path, gpu_layers=gpu_layers,
                              threads=threads, context=context, parallel=parallel, workers=workers, gate=gate,
                              timeout=timeout)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from None
    persona = (persona or settings.get("persona", {}).get("name")
               or persona_from_gguf_name(getattr(loaded, "metadata", {}).get("general.name")) or "me")
    return loaded, persona, settings


@click.command("serve")
@model_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--api-key", envvar="TWIN_API_KEY", help="Require 'Authorization: Bearer KEY' (env TWIN_API_KEY).")
@click.option("--public", is_flag=True, help="Also open a public ngrok URL (an API key is then required; "
              "one is generated if none is given).")
@click.option("--ngrok-token", envvar="NGROK_AUTHTOKEN", help="ngrok auth token (env NGROK_AUTHTOKEN).")
@click.option("--ngrok-path", type=click.Path(dir_okay=False), help="Use this ngrok agent binary.")
@click.option("--rate-limit", default="60/min", show_default=True, callback=_rate,
              help="Requests allowed per API key (per client address without a key), e.g. 60/min, 5/s; 'off'.")
@click.option("--cors", "cors", multiple=True, metavar="ORIGIN",
              help="Allow browser pages from ORIGIN (repeatable; '*' for any). Off by default.")
@click.option("--max-tokens", "max_tokens_cap", type=click.IntRange(1, 4096), default=MAX_TOKENS_CAP,
              show_default=True, help="Most tokens one reply may ask for.")
@click.option("--parallel", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Replies generated at once (llama backend, continuous batching; 1 = one at a time). "
                   "Each slot reserves --context tokens of KV cache.")
@click.option("--workers", type=click.IntRange(1, 64),
              help="llama.cpp contexts batching side by side, each with --threads threads "
                   "[default: CPUs / threads, at most 4; 1 with --gpu-layers].")
@click.option("--queue", "max_queue", type=click.IntRange(1, 1000), default=16, show_default=True,
              help="Requests that may wait for the model; more get 503.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds a request may wait for the model (then 503) and a generation may run (then 504).")
@click.option("--feedback-db", type=click.Path(dir_okay=False, path_type=Path),
              help=f"SQLite file for POST /feedback (default with --workspace: WORKSPACE/{FEEDBACK_FILE}).")
@click.option("--conversations", type=click.IntRange(1), default=1000, show_default=True,
              help="Conversations the server remembers (least recently used dropped).")
@click.option("--conversation-ttl", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Minutes an unused conversation is kept.")
@click.option("--log-requests", is_flag=True, help="Log message text (off by default: logs hold no message text).")
def serve_command(workspace, model_path, backend, persona, gpu_layers, threads, context, host, port, api_key,
                  public, ngrok_token, ngrok_path, rate_limit, cors, max_tokens_cap, parallel, workers, max_queue, timeout,
                  feedback_db, conversations, conversation_ttl, log_requests):
    """Serve the twin over HTTP: POST /generate, /v1/chat/completions, /feedback; GET /, /health, /v1/models."""
    if public and not api_key:
        api_key = secrets.token_urlsafe(24)
        click.echo(f"--public needs an API key; generated one: {api_key}")
    gate = Gate(max_waiting=max_queue, wait_timeout=timeout)
    workers = workers or (auto_workers(threads, gpu_layers) if backend == "llama" else 1)
    loaded, persona, settings = load(workspace, model_path, backend, persona, gpu_layers, threads, context,
                                     gate=gate, timeout=timeout, parallel=parallel, workers=workers)
    if feedback_db is None and workspace:
        feedback_db = Workspace(workspace).root / FEEDBACK_FILE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        app = create_app(loaded, persona=persona, api_key=api_key, log_requests=log_requests,
                         lowercase=settings.get("data", {}).get("lowercase", True), rate_limit=rate_limit,
                         cors_origins=cors, feedback_db=feedback_db, max_tokens_cap=max_tokens_cap,
                         conversations=ConversationStore(conversations, ttl=conversation_ttl * 60))
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot open the feedback database {feedback_db}: {exc}") from None
    local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    batching = f", {workers} x {parallel} replies at once" if backend == "llama" and parallel * workers > 1 else ""
    click.echo(f"serving {loaded.name} as {persona!r}{batching} on {local} (chat page: {local}/)")
    if public:
        try:
            url = open_tunnel(port, authtoken=ngrok_token, ngrok_path=ngrok_path)
        except TunnelError as exc:
            click.echo(f"warning: {exc}; serving locally only", err=True)
        else:
            click.echo(f"public URL: {url}  (chat page: {url}/)")
            click.echo(f"try: curl -X POST {url}/generate -H 'Authorization: Bearer {api_key}' "
                       "-H 'Content-Type: application/json' -d '{\"text\": \"hello, how are you?\"}'")
    from waitress import serve

    # A thread per generating and per queued request, plus a few for /health and quick errors.
    serve(app, host=host, port=port, threads=parallel * workers + max_queue + 4, ident="twin", channel_timeout=max(120, int(timeout) * 2))
