"""When ``twin serve`` swaps to a new model, without a restart and without failing a request.

Two triggers, both on by default (``twin serve --no-reload`` turns them off):

* a newer model file: every ``interval`` seconds (2) a thread looks at the file the server
  would load now (with ``--workspace``, the newest ``model/twin-*.gguf``; with ``--model``, that
  file) and reloads when its name, inode, size or modification time changed. ``twin export``
  (and so ``twin update``) writes the GGUF under a hidden name and renames it into place, so a
  file seen here is always complete;
* ``SIGHUP`` (``kill -HUP PID``): reload now, whatever changed (the transformers backend too).

The new model is loaded beside the old one while the old one keeps answering, then put in place
(server.backends.SwappableBackend): requests that started on the old model finish on it, new
ones go to the new, and the old one is closed once its last request is done. The twin's decoding
defaults ([sampling] of twin.toml, or the GGUF's) are taken from the new model too. A model that
fails to load is logged in one line and the old one keeps serving.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger("twin.server")

INTERVAL_S = 2.0


def file_signature(path: Path | None) -> tuple | None:
    """What tells one model file from the next: its path, inode, size and modification time."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (str(path), info.st_ino, info.st_size, info.st_mtime_ns)


class ModelReloader:
    """Loads a new model when asked (:meth:`request`, SIGHUP) or when ``watched()`` changes.

    ``load()`` returns ``(backend, sampling)``; ``watched()`` the model file that ``load`` would
    open now (None: nothing to watch). ``on_swap(sampling)`` is called after each swap.
    """

    def __init__(self, target, load: Callable[[], tuple[object, object]], watched: Callable[[], Path | None] | None,
                 on_swap: Callable[[object], None] | None = None, interval: float = INTERVAL_S):
        self.target, self.load, self.watched, self.on_swap = target, load, watched, on_swap
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = self._signature()
        self.reloads = 0
        self.failures = 0

    def _signature(self):
        if self.watched is None:
            return None
        try:
            return file_signature(self.watched())
        except Exception:  # noqa: BLE001 - e.g. no model in the workspace for a moment
            return None

    def request(self, *_args) -> None:
        """Reload as soon as possible (safe in a signal handler: it only sets an event)."""
        self._wake.set()

    def install_signal(self) -> bool:
        """SIGHUP asks for a reload (main thread only, where the platform has SIGHUP)."""
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return False
        signal.signal(signal.SIGHUP, self.request)
        return True

    def start(self) -> "ModelReloader":
        self._thread = threading.Thread(target=self._run, name="twin-model-reloader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            asked = self._wake.wait(self.interval if self.watched is not None else None)
            if self._stop.is_set():
                return
            self._wake.clear()
            signature = self._signature()
            if asked or (signature is not None and signature != self._seen):
                self._seen = signature
                self.reload()

    def reload(self) -> bool:
        """Load the model now and swap to it; False (and the old model kept) if it fails."""
        try:
            backend, sampling = self.load()
        except Exception as exc:  # noqa: BLE001 - a bad new file must not stop the server
            self.failures += 1
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("new model not loaded, still serving the previous one: %s", first)
            return False
        self.target.swap(backend)
        if self.on_swap is not None:
            self.on_swap(sampling)
        self.reloads += 1
        log.info("now serving %s (swap %d); the previous model is closed once its requests are done",
                 getattr(backend, "name", "the new model"), self.reloads)
        return True
