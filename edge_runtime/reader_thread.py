"""The daemon thread of a stream read beside a camera's capture thread (its record stream, its packets)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

__all__ = ["ReaderThread"]


class ReaderThread:
    """A stream read on a daemon thread named ``{name}-{camera}`` running :meth:`_run`: :meth:`start`,
    :meth:`stop` (the thread ends when its current read returns), :meth:`join`, and :attr:`stats`, a copy of
    its counters (a dataclass) taken under its lock."""

    def __init__(self, name: str, camera: str, stats: Any) -> None:
        self.camera = camera
        self._name = f"{name}-{camera}"
        self._stats = stats
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Any:
        """Start reading in the background (the first open, too, is retried there); returns self."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    @property
    def stats(self) -> Any:
        with self._lock:
            return dataclasses.replace(self._stats)

    def _run(self) -> None:
        raise NotImplementedError
