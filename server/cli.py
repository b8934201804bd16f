"""The ``twin serve`` command: the twin's HTTP API on waitress (a production WSGI server).

Loads the backend (llama.cpp over the workspace's newest model GGUF by default, or the adapter
through transformers) with what the twin was trained with: persona, data rules and decoding
defaults from ``twin.toml``, or from the GGUF's metadata when a model file is served alone.
Then it builds the app with its protections, optionally opens the public ngrok URL, and serves
with waitress's own limits set to the app's: body size (checked while reading, chunked bodies
too), idle-connection timeout, connection count, header size; and what server.http_server adds
(JSON refusals, lingering close, idle connections closed to make room for real clients).

Authentication: ``--api-key`` (one key) or ``--api-key-file`` (named keys, one a line). An
empty key is refused; serving beyond this machine (``--host`` not loopback, or ``--public``)
without a key generates one; the start-up line says whether authentication is on.

Hot swap (``--reload``, on by default; server.hot_swap): a newer model GGUF in WORKSPACE/model
(``twin update``, ``twin export``) or SIGHUP loads the new model beside the old one and swaps;
requests in flight finish on the old model, which is closed when idle.
"""
from __future__ import annotations

import ipaddress
import logging
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import click

from core.artifacts import GGUF_KEY_PERSONA, persona_from_gguf_name
from core.errors import InputError, cli_errors
from core.settings import DEFAULT_PERSONA, REQUEST_TIMEOUT_S, Rules, Sampling
from core.workspace import Workspace
from dataprocess.live_prompt import LivePrompt, rules_from_metadata
from dataprocess.memory import Memory
from voice.backend import DEFAULT_CONTEXT
from voice.exported import sampling_from_metadata
from voice.queueing import Gate

from .app import MAX_TOKENS_CAP, create_app
from .backends import BACKENDS, SwappableBackend, auto_workers, open_backend
from .conversations import ConversationStore
from .http_server import make_server, waitress_limits
from .keys import KeyRing, check_key
from .ratelimit import RateLimiter
from .tunnel import TunnelError, open_tunnel


def check_rate(ctx, param, value):
    """click callback: a --rate-limit value RateLimiter can parse (N/sec|min|hour), else a usage error."""
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
        click.option("--context", type=click.IntRange(256, 131072), default=DEFAULT_CONTEXT, show_default=True,
                     help="Context window in tokens (llama backend)."),
    ]):
        func = option(func)
    return func


@dataclass
class Served:
    """A loaded backend and what the twin was trained with."""

    backend: object
    persona: str
    rules: Rules
    sampling: Sampling
    memory: Memory = field(default_factory=Memory)  # the knowledge base and contact groups

    def prompts(self) -> LivePrompt:
        """The twin's prompt builder: what every client of this model speaks through."""
        return LivePrompt(self.persona, self.rules, self.memory)


def load(workspace, model_path, backend, persona, gpu_layers, threads, context, gate=None, timeout=None,
         parallel=1, workers=1) -> Served:
    """The backend for a command's options, with persona, data rules and decoding defaults
    from the workspace's twin.toml, or from the GGUF's metadata for a model file alone."""
    if bool(workspace) == bool(model_path):
        raise click.UsageError("give exactly one of --workspace or --model")
    if backend == "transformers" and not workspace:
        raise click.UsageError("--backend transformers needs --workspace (it loads WORKSPACE/adapter)")
    loaded = open_backend(backend, workspace=workspace, model_path=model_path, gpu_layers=gpu_layers,
                          threads=threads, context=context, parallel=parallel, workers=workers, gate=gate,
                          timeout=timeout)
    if workspace:
        settings = Workspace(workspace).settings()
        return Served(loaded, persona or settings.persona.name, settings.data, settings.sampling,
                      Memory.load(Workspace(workspace).data_dir).warm())
    metadata = getattr(loaded, "metadata", {}) or {}
    persona = (persona or metadata.get(GGUF_KEY_PERSONA) or persona_from_gguf_name(metadata.get("general.name"))
               or DEFAULT_PERSONA)
    return Served(loaded, persona, rules_from_metadata(metadata), sampling_from_metadata(metadata),
                  Memory.from_metadata(metadata).warm())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _keys(api_key: str | None, key_file: Path | None) -> KeyRing | None:
    if api_key is not None and key_file is not None:
        raise click.UsageError("give --api-key or --api-key-file, not both")
    if key_file is not None:
        return KeyRing.from_file(key_file)
    if api_key is not None:
        return KeyRing.single(check_key(api_key))
    return None


@click.command("serve")
@model_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; an API key is then required, "
                   "and generated if none is given).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--api-key", envvar="TWIN_API_KEY", help="Require 'Authorization: Bearer KEY' (env TWIN_API_KEY).")
@click.option("--api-key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Named keys, one 'NAME KEY' a line: each name gets its own rate limit and conversations.")
@click.option("--public", is_flag=True, help="Also open a public ngrok URL (an API key is then required; "
              "one is generated if none is given).")
@click.option("--ngrok-token", envvar="NGROK_AUTHTOKEN", help="ngrok auth token (env NGROK_AUTHTOKEN).")
@click.option("--ngrok-path", type=click.Path(dir_okay=False), help="Use this ngrok agent binary.")
@click.option("--rate-limit", default="60/min", show_default=True, callback=check_rate,
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
@click.option("--timeout", type=click.FloatRange(1, 3600), default=REQUEST_TIMEOUT_S, show_default=True,
              help="Seconds a request may wait for the model (then 503) and a generation may run (then 504).")
@click.option("--connections", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Open connections accepted at once (more wait in the listen backlog).")
@click.option("--feedback-db", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file for POST /feedback (default with --workspace: WORKSPACE/feedback.sqlite).")
@click.option("--conversations", type=click.IntRange(1), default=1000, show_default=True,
              help="Conversations the server remembers (least recently used dropped).")
@click.option("--conversation-ttl", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Minutes an unused conversation is kept.")
@click.option("--log-requests", is_flag=True, help="Log message text (off by default: logs hold no message text).")
@click.option("--reload/--no-reload", default=True, show_default=True,
              help="Swap to a new model without a restart: when a newer model/twin-*.gguf appears (or the --model "
                   "file changes; checked every 2 s) and on SIGHUP. Requests in flight finish on the old model.")
def serve_command(workspace, model_path, backend, persona, gpu_layers, threads, context, host, port, api_key,
                  api_key_file, public, ngrok_token, ngrok_path, rate_limit, cors, max_tokens_cap, parallel, workers,
                  max_queue, timeout, connections, feedback_db, conversations, conversation_ttl, log_requests, reload):
    """Serve the twin over HTTP: POST /generate, /v1/chat/completions, /feedback; GET /, /health, /v1/models, /metrics."""
    with cli_errors():
        keys = _keys(api_key, api_key_file)
        exposed = "--public" if public else (f"--host {host}" if not _is_loopback(host) else None)
        if exposed and keys is None:
            api_key = secrets.token_urlsafe(24)
            keys = KeyRing.single(api_key)
            click.echo(f"{exposed} needs an API key; generated one: {api_key}")
        gate = Gate(max_waiting=max_queue, wait_timeout=timeout)
        workers = workers or (auto_workers(threads, gpu_layers) if backend == "llama" else 1)
        served = load(workspace, model_path, backend, persona, gpu_layers, threads, context,
                      gate=gate, timeout=timeout, parallel=parallel, workers=workers)
        if feedback_db is None and workspace:
            feedback_db = Workspace(workspace).feedback_path
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        try:
            app = create_app(SwappableBackend(served.backend), persona=served.persona, api_key=keys, log_requests=log_requests,
                             rules=served.rules, sampling=served.sampling, rate_limit=rate_limit, cors_origins=cors,
                             feedback_db=feedback_db, max_tokens_cap=max_tokens_cap, behind_proxy=public,
                             conversations=ConversationStore(conversations, ttl=conversation_ttl * 60),
                             workspace=workspace, memory=served.memory)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot open the feedback database {feedback_db}: {exc}") from None
    if reload:
        _start_reloader(app, workspace, model_path, backend, persona, gpu_layers, threads, context, gate, timeout,
                        parallel, workers)
    local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    batching = f", {workers} x {parallel} replies at once" if backend == "llama" and parallel * workers > 1 else ""
    click.echo(f"serving {served.backend.name} as {served.persona!r}{batching} on {local} (chat page: {local}/)")
    if keys is not None:
        click.echo(f"authentication: on ({len(keys)} key{'s' if len(keys) > 1 else ''}); every route but /health "
                   "and the page needs 'Authorization: Bearer KEY'")
    else:
        click.echo(f"authentication: OFF: anyone who can reach {local} can use the twin (local only)")
    if public:
        try:
            url = open_tunnel(port, authtoken=ngrok_token, ngrok_path=ngrok_path)
        except TunnelError as exc:
            click.echo(f"warning: {exc}; serving locally only", err=True)
        else:
            shown = api_key if api_key else "KEY"
            click.echo(f"public URL: {url}  (chat page: {url}/)")
            click.echo(f"try: curl -X POST {url}/generate -H 'Authorization: Bearer {shown}' "
                       "-H 'Content-Type: application/json' -d '{\"text\": \"hello, how are you?\"}'")
    from waitress import serve

    # A thread per generating and per queued request, plus a few for /health and quick errors.
    # waitress's serve() (its logging, its start-up line) on server.http_server's server: JSON
    # refusals, lingering close, idle connections closed to make room (_server is serve's hook).
    serve(app, host=host, port=port, threads=parallel * workers + max_queue + 4, ident="twin",
          _server=make_server, **waitress_limits(connections))


def _start_reloader(app, workspace, model_path, backend, persona, gpu_layers, threads, context, gate, timeout,
                    parallel, workers):
    """The hot swap (server.hot_swap): the same options load the new model, whose decoding
    defaults replace the old ones."""
    from .hot_swap import ModelReloader

    twin = app.extensions["twin"]

    def load_new():
        served = load(workspace, model_path, backend, persona, gpu_layers, threads, context, gate=gate,
                      timeout=timeout, parallel=parallel, workers=workers)
        return served.backend, served.sampling

    def watched():
        if backend != "llama":
            return None
        return Path(model_path) if model_path else Workspace(workspace).newest_model_gguf()

    def on_swap(sampling):
        twin.sampling = sampling

    reloader = ModelReloader(twin.backend, load_new, watched if backend == "llama" else None, on_swap)
    reloader.install_signal()
    app.extensions["twin.reloader"] = reloader
    return reloader.start()
