"""What every reader thread of a camera shares: how it waits between reconnect attempts
(:class:`BackoffPolicy`) and how it measures the frame rate its stream really delivers (:class:`RateMeter`).
Used by the capture thread (:mod:`edge_runtime.capture`), the record stream and the packet stream."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["BackoffPolicy", "RateMeter"]

_FPS_WINDOW = 64  # frames the measured frame rate is taken over: about 2 s of a 30 fps camera


class RateMeter:
    """The frame rate a stream really delivers: frames per second over the stamps of its newest
    :data:`_FPS_WINDOW` frames; 0.0 until they span 0.5 s."""

    def __init__(self) -> None:
        self._stamps: deque[float] = deque(maxlen=_FPS_WINDOW)

    def clear(self) -> None:
        self._stamps.clear()

    def add(self, ts: float) -> None:
        self._stamps.append(ts)

    @property
    def fps(self) -> float:
        if len(self._stamps) < 2 or self._stamps[-1] - self._stamps[0] <= 0.5:
            return 0.0
        return round((len(self._stamps) - 1) / (self._stamps[-1] - self._stamps[0]), 2)


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff between reconnect attempts: ``min(max, initial * factor ** attempt)`` seconds."""

    initial: float = 0.5  # first wait: a brief glitch reconnects almost at once
    factor: float = 2.0  # doubling: a camera that is gone for good is not hammered
    max: float = 30.0  # never wait longer than this: a camera that comes back is picked up within 30 s

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.max < self.initial:
            raise ValueError(f"bad backoff policy {self}: need initial >= 0, factor >= 1, max >= initial")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0-based)."""
        return min(self.max, self.initial * self.factor ** min(attempt, 64))
