"""The runtime's health numbers, published on ``{prefix}/{device_id}/stats`` every ``--stats-interval`` seconds.

:class:`RuntimeStats` counts what the loop does (frames, snippets, batched backbone calls, the newest score per
camera, the seconds the loop spent preprocessing and idle) and, on :meth:`RuntimeStats.snapshot`, adds what the capture
threads and the scorer counted (including its seconds in the backbone and the heads), plus the process's CPU
share. Rates (fps, CPU) are over the time since the previous snapshot; counters and seconds are since the start,
so ``preprocess_s / uptime_s`` is the share of the loop's time spent preprocessing (and ``idle_s / uptime_s``
its headroom: the share spent waiting for frames). The alerts page reads the
per-camera scores as ``{"cameras": {"<camera>": {"score": x, ...}}}``.

>>> stats = RuntimeStats(["door"])
>>> stats.frame("door"); stats.snippet("door", 0.25); stats.batch(1)
>>> snap = stats.snapshot()
>>> snap["cameras"]["door"]["score"], snap["frames"], snap["max_batch"]
(0.25, 1, 1)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .capture import CaptureStats

__all__ = ["RuntimeStats", "cpu_seconds"]

log = logging.getLogger(__name__)


def cpu_seconds() -> float:
    """CPU time (user + system) used by this process and all its threads so far."""
    return time.process_time()


class RuntimeStats:
    """Counters of one runtime process; :meth:`snapshot` turns them into the ``/stats`` message."""

    def __init__(self, cameras: Iterable[str], *, clock=time.monotonic) -> None:
        self.cameras = tuple(cameras)
        self._clock = clock
        self.started = clock()
        self.cpu_count = os.cpu_count() or 1
        self.frames = dict.fromkeys(self.cameras, 0)
        self.snippets = dict.fromkeys(self.cameras, 0)
        self.scores: dict[str, float | None] = dict.fromkeys(self.cameras)
        self.events_started = dict.fromkeys(self.cameras, 0)
        self.batches = 0  # StreamingScorer.score calls
        self.batched = 0  # of them with more than one camera's snippet
        self.max_batch = 0
        self.messages = 0  # event messages produced (start / update / end)
        self.preprocess_s = 0.0  # seconds the loop spent putting frames into the snippet windows
        self.idle_s = 0.0  # seconds the loop waited because no camera had a frame queued
        self._last_at = self.started
        self._last_cpu = cpu_seconds()
        self._last_frames = dict(self.frames)

    def frame(self, camera: str, preprocess_s: float = 0.0) -> None:
        """One frame of ``camera`` went into its window, which took ``preprocess_s`` seconds (resampling,
        resize, colour or flow, and stacking the snippet it completes)."""
        self.frames[camera] += 1
        self.preprocess_s += preprocess_s

    def snippet(self, camera: str, score: float) -> None:
        """``camera``'s newest snippet scored ``score``."""
        self.snippets[camera] += 1
        self.scores[camera] = float(score)

    def batch(self, size: int) -> None:
        """One scoring call over ``size`` cameras' snippets (one batched backbone call)."""
        self.batches += 1
        self.batched += size > 1
        self.max_batch = max(self.max_batch, size)

    def idle(self, seconds: float) -> None:
        """The loop waited ``seconds`` for frames (nothing was queued on any camera)."""
        self.idle_s += seconds

    def message(self, camera: str, kind: str) -> None:
        """An event message of ``kind`` was produced for ``camera``."""
        self.messages += 1
        if kind == "start":
            self.events_started[camera] += 1

    def snapshot(
        self,
        captures: Mapping[str, CaptureStats] | None = None,
        scorer: Mapping[str, Any] | None = None,
        active: Mapping[str, bool] | None = None,
    ) -> dict[str, Any]:
        """The ``/stats`` body (JSON-able); resets the interval the rates are measured over."""
        now, cpu = self._clock(), cpu_seconds()
        wall = max(now - self._last_at, 1e-9)
        cpu_share = (cpu - self._last_cpu) / wall  # cores busy on average
        captures, active = captures or {}, active or {}
        cameras: dict[str, dict[str, Any]] = {}
        for cam in self.cameras:
            cap = captures.get(cam, CaptureStats())
            cameras[cam] = {
                "score": None if self.scores[cam] is None else round(self.scores[cam], 4),
                "fps": round((self.frames[cam] - self._last_frames[cam]) / wall, 2),
                "frames": self.frames[cam],
                "snippets": self.snippets[cam],
                "dropped_frames": cap.frames_dropped,
                "skipped_frames": cap.frames_skipped,
                "stream_fps": cap.stream_fps,
                "reconnects": cap.reconnects,
                "events": self.events_started[cam],
                "active": bool(active.get(cam, False)),
                "last_error": cap.last_error,
            }
        body: dict[str, Any] = {
            "uptime_s": round(now - self.started, 1),
            "fps": round(sum(c["fps"] for c in cameras.values()), 2),
            "frames": sum(self.frames.values()),
            "snippets": sum(self.snippets.values()),
            "dropped_frames": sum(c["dropped_frames"] for c in cameras.values()),
            "skipped_frames": sum(c["skipped_frames"] for c in cameras.values()),
            "reconnects": sum(c["reconnects"] for c in cameras.values()),
            "batches": self.batches,
            "batched_calls": self.batched,
            "max_batch": self.max_batch,
            "event_messages": self.messages,
            "cpu_cores_used": round(cpu_share, 3),
            "cpu_percent": round(100.0 * cpu_share / self.cpu_count, 2),  # of the whole machine
            "preprocess_s": round(self.preprocess_s, 4),
            "idle_s": round(self.idle_s, 4),
            "cameras": cameras,
        }
        body.update(dict(scorer or {}))
        self._last_at, self._last_cpu, self._last_frames = now, cpu, dict(self.frames)
        return body
