"""The HTTP server ``twin serve`` runs: waitress, with its own limits set to the app's, plus what
waitress does not do for a server on the open internet.

waitress's own knobs do most of the job (:func:`waitress_limits`): the body limit while reading
(chunked bodies too), the header size, the keep-alive idle timeout, the connection count, and
poll() instead of select() (no 1024-descriptor ceiling). Three things it lacks are added here,
in a channel (one connection) and a server subclass:

* **JSON errors.** waitress's own refusals (413 body too large, 431 headers too large, 400 bad
  request line) are answered ``{"error": "..."}`` with ``application/json``, like the app's.
* **Lingering close.** waitress closes a refused connection as soon as its answer is written;
  a client still sending its body (Python's ``urllib``/``http.client`` and many SDKs send the
  whole body before reading) then gets a TCP reset, which throws the 413 away unread. Here the
  channel shuts down its sending side (the client sees the answer end) and reads and discards
  what still comes, at most :data:`LINGER_BYTES` for :data:`LINGER_S` seconds, before closing.
* **Idle connections cannot lock out real clients.** waitress stops accepting at the connection
  limit and only frees slots after ``channel_timeout``, so sockets that never send a request
  made a real client wait in the listen backlog (44 s with 150 of them). Here a connection must
  send its first request's head within :data:`HEAD_TIMEOUT_S` seconds, and at the limit the
  server closes the longest-idle connection that has no request in progress (never sent one,
  waits between keep-alive requests, or lingers after its answer) to make room for the new one.
  A connection with a request being read, generated or written is never closed for room.
"""
from __future__ import annotations

import json
import socket
import time

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask

from .app import MAX_BODY_BYTES

MAX_HEADER_BYTES = 16 * 1024
IDLE_TIMEOUT_S = 30       # keep-alive connection with no request (waitress's channel_timeout)
HEAD_TIMEOUT_S = 10       # a new connection's first request head must be in by then
LINGER_BYTES = 4 << 20    # body bytes read and dropped after a refusal, at most ...
LINGER_S = 5.0            # ... and for at most this long
CLEANUP_INTERVAL_S = 1    # how often waitress's maintenance checks the deadlines above


def waitress_limits(connections: int = 100) -> dict:
    """waitress's own settings, set to the app's: a body over the app's limit is refused while it
    is read (a chunked one too, never buffered whole), idle connections are closed, and at most
    ``connections`` are open at once."""
    return {"max_request_body_size": MAX_BODY_BYTES, "max_request_header_size": MAX_HEADER_BYTES,
            # keep-alive connections idle this long are closed; not lower: it is also the longest
            # pause a slow client may take while sending its body
            "channel_timeout": IDLE_TIMEOUT_S,
            "connection_limit": connections,
            # the maintenance pass also applies HEAD_TIMEOUT_S and LINGER_S: run it every second
            "cleanup_interval": CLEANUP_INTERVAL_S,
            # poll(): no FD_SETSIZE (1024) ceiling on open sockets, whatever --connections says
            "asyncore_use_poll": True}


class JsonErrorTask(ErrorTask):
    """waitress's refusals as the app's JSON errors."""

    def execute(self):
        error = self.request.error
        message = (f"request body larger than {MAX_BODY_BYTES // 1024} KiB" if error.code == 413
                   else f"{error.reason.lower()}: {error.body}")
        body = json.dumps({"error": message}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class TwinChannel(HTTPChannel):
    """One connection: lingering close, and whether it may be closed to make room."""

    error_task_class = JsonErrorTask
    linger_until = None   # set while lingering: the time it is closed at the latest
    linger_left = 0
    heads = 0             # request heads received on this connection

    def received(self, data):
        done = super().received(data)
        if self.request is not None and self.request.headers_finished:
            self.heads = max(self.heads, 1)  # a body on its way: a request is in progress
        return done

    def service(self):
        self.heads += 1
        super().service()

    def handle_write(self):
        if self.linger_until is None and self.close_when_flushed and not self.will_close and not self.requests:
            self._flush_exception(self._flush_some)
            if self.will_close:  # the client is gone
                self.handle_close()
            elif not self.total_outbufs_len:
                self.close_when_flushed = False
                self._linger()
            return
        if self.linger_until is not None:
            if self.will_close:
                self.handle_close()
            return
        super().handle_write()

    def _linger(self):
        try:
            self.socket.shutdown(socket.SHUT_WR)  # the client sees the answer end
        except OSError:
            self.will_close = True
            self.handle_close()
            return
        self.linger_until, self.linger_left = time.monotonic() + LINGER_S, LINGER_BYTES

    def readable(self):
        return True if self.linger_until is not None else super().readable()

    def writable(self):
        return self.will_close if self.linger_until is not None else super().writable()

    def handle_read(self):
        if self.linger_until is None:
            return super().handle_read()
        try:
            data = self.socket.recv(min(self.linger_left, 65536))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.linger_left -= len(data)
        if not data or self.linger_left <= 0 or time.monotonic() > self.linger_until:
            self.handle_close()

    def idle(self) -> bool:
        """No request in progress: nothing read but not yet answered, nothing left to send."""
        if self.linger_until is not None:
            return True
        request = self.request
        return (not self.requests and not self.total_outbufs_len and not self.will_close
                and (request is None or not request.headers_finished))

    def overdue(self, now: float) -> bool:
        """Lingered long enough, or never sent a whole request head in time."""
        if self.linger_until is not None:
            return time.monotonic() > self.linger_until
        return not self.heads and self.idle() and now - self.creation_time > HEAD_TIMEOUT_S


def _make_room(server) -> bool:
    """At the connection limit: close the longest-idle connection without a request in progress
    (one at a time: the next accept waits for it to be gone). False if every one is busy."""
    channels = list(server.active_channels.values())
    if any(channel.will_close for channel in channels):
        return True
    idle = [channel for channel in channels if isinstance(channel, TwinChannel) and channel.idle()]
    if not idle:
        return False
    # lingering and never-requested ones first, then keep-alive ones; the longest idle first
    min(idle, key=lambda ch: (ch.linger_until is None and ch.heads > 0, ch.last_activity)).will_close = True
    return True


def _maintenance(server, now: float, original) -> None:
    original(now)
    for channel in list(server.active_channels.values()):
        if isinstance(channel, TwinChannel) and channel.overdue(now):
            channel.will_close = True


def make_server(app, host: str = "127.0.0.1", port: int = 0, threads: int = 8, **options):
    """A waitress server for ``app`` with :class:`TwinChannel` connections (not started: call
    ``run()``); ``options`` are waitress settings, e.g. :func:`waitress_limits`."""
    server = create_server(app, host=host, port=port, threads=threads, **options)
    # one listening socket, or several (a host name with IPv4 and IPv6 addresses) sharing one map
    listeners = [server] if hasattr(server, "active_channels") else \
        [obj for obj in server.map.values() if hasattr(obj, "active_channels")]
    for listener in listeners:
        _install(listener)
    return server


def _install(listener) -> None:
    listener.channel_class = TwinChannel
    original_readable, original_maintenance = listener.readable, listener.maintenance

    def readable():
        # at the limit, make room instead of leaving new clients in the backlog (waitress would
        # stop accepting, and log it, until channel_timeout frees a slot)
        if listener.accepting and len(listener._map) >= listener.adj.connection_limit and _make_room(listener):
            return False  # accept on the next turn, once the closed one is gone
        return original_readable()

    listener.readable = readable
    listener.maintenance = lambda now: _maintenance(listener, now, original_maintenance)
