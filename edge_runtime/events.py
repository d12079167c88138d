"""From a stream of anomaly scores to ``i3dmtn.event/1`` messages: hysteresis, minimum duration, cool-down.

One :class:`EventStateMachine` per camera. Feed it every score with its timestamp (seconds, the same clock
for all calls, normally the frame's wall-clock time); it returns the messages to publish:

    idle ──score >= on──▶ pending ──stayed >= off for min_duration_s──▶ active ──score < off──▶ idle (cool-down)
                            │ score < off (a blip: nothing is sent)          │ every update_interval_s, or
                            ▼                                                ▼ sooner when the peak rises
                           idle                                            update

- ``start`` is sent when the score has stayed at or above ``off_threshold`` for ``min_duration_s`` since it
  first reached ``on_threshold``; its ``started_at`` is that first crossing.
- While active, a score between ``off`` and ``on`` keeps the event open (hysteresis); it ends at the first
  score below ``off``, with ``ended_at`` = that score's timestamp.
- ``update`` carries the current and peak score: at most every ``update_interval_s``, or sooner when the peak
  rose since the last message, but then not more often than every ``update_interval_s / 4``.
- Cool-down: for ``cooldown_s`` after an ``end`` a re-crossing is ignored (the ended event stays ended, no new
  one opens); the next event can begin only with a crossing after the cool-down, and its ``started_at`` is
  that crossing. This keeps a flickering score from producing a burst of short events.

Example::

    machine = EventStateMachine("dev1", "cam1", EventPolicy(on_threshold=0.6), {"name": "i3d-mtn"})
    for ts, score, frame in scored_frames:
        for message in machine.observe(score, ts, frame):
            publisher.publish_event(message)
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.schema import EVENT_SCHEMA, validate_id

__all__ = ["EventPolicy", "EventStateMachine"]

log = logging.getLogger(__name__)

_IDLE, _PENDING, _ACTIVE = "idle", "pending", "active"
_JPEG_QUALITY = 85  # a readable snapshot at a few tens of kB


@dataclass
class EventPolicy:
    """When a score stream becomes an event. Thresholds are scores; durations are seconds."""

    on_threshold: float  # the operating threshold from the bundle: an event begins at or above it
    off_threshold: float | None = (
        None  # an event ends below it; default 0.8 * on (hysteresis against flicker)
    )
    min_duration_s: float = 1.0  # a crossing shorter than this is a blip, not an event
    cooldown_s: float = 5.0  # quiet time after an end before a new event may begin
    update_interval_s: float = 2.0  # an open event sends an update at least this often

    def __post_init__(self) -> None:
        if self.off_threshold is None:
            self.off_threshold = self.on_threshold * 0.8
        for name in ("on_threshold", "off_threshold", "min_duration_s", "cooldown_s", "update_interval_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"event policy {name} must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"event policy {name} must be >= 0, got {value}")
        if self.off_threshold > self.on_threshold:
            raise ValueError(
                f"event policy off_threshold ({self.off_threshold}) must be <= on_threshold ({self.on_threshold})"
            )
        if self.update_interval_s <= 0:
            raise ValueError(f"event policy update_interval_s must be > 0, got {self.update_interval_s}")


class EventStateMachine:
    """Turns one camera's scores into start / update / end messages (see the module docstring)."""

    def __init__(
        self,
        device_id: str,
        camera: str,
        policy: EventPolicy,
        model_info: dict[str, Any],
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.device_id = validate_id(device_id, "device_id")
        self.camera = validate_id(camera, "camera")
        self.policy = policy
        self.model_info = dict(model_info)
        self._clock = clock
        self._state = _IDLE
        self._cooldown_until = -math.inf
        self._event_id: str | None = None
        self._seq = 0
        self._started_at = 0.0
        self._score = 0.0
        self._peak = 0.0
        self._peak_frame: np.ndarray | None = None  # of the pending or active event
        self._last_sent_at = 0.0
        self._last_sent_peak = 0.0
        self._snapshot_frame: np.ndarray | None = None  # peak frame of the current or last started event
        self._snapshot_jpeg: bytes | None = None

    @property
    def active(self) -> bool:
        """An event has started and not ended."""
        return self._state == _ACTIVE

    @property
    def event_id(self) -> str | None:
        """The open event's id, else None."""
        return self._event_id if self._state == _ACTIVE else None

    @property
    def peak_score(self) -> float:
        """Peak score of the current (or last) event."""
        return self._peak

    def observe(
        self, score: float, timestamp: float, frame: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """Feed one score (and optionally the BGR frame it belongs to); return the messages to publish."""
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"camera {self.camera}: score must be a finite number, got {score}")
        timestamp = float(timestamp)
        self._score = score
        on, off = self.policy.on_threshold, self.policy.off_threshold
        assert off is not None
        messages: list[dict[str, Any]] = []
        if self._state == _ACTIVE:
            self._track_peak(score, frame)
            if score < off:
                messages.append(self._message("end", timestamp, ended_at=timestamp))
                self._state = _IDLE
                self._cooldown_until = timestamp + self.policy.cooldown_s
                log.info("camera %s: event %s ended (peak %.3f)", self.camera, self._event_id, self._peak)
            elif self._update_due(timestamp):
                messages.append(self._message("update", timestamp))
            return messages
        if self._state == _PENDING and score < off:
            self._state = _IDLE  # a blip shorter than min_duration_s: forget it
            self._peak_frame = None
            return messages
        if self._state == _IDLE:
            if timestamp < self._cooldown_until or score < on:
                return messages
            self._state = _PENDING
            self._started_at = timestamp
            self._peak = -math.inf
            self._peak_frame = None
        self._track_peak(score, frame)
        if timestamp - self._started_at >= self.policy.min_duration_s:
            self._state = _ACTIVE
            self._event_id = str(uuid.uuid4())
            self._seq = 0
            self._snapshot_frame, self._snapshot_jpeg = self._peak_frame, None
            messages.append(self._message("start", timestamp))
            log.info("camera %s: event %s started (score %.3f)", self.camera, self._event_id, score)
        return messages

    def close(self, timestamp: float | None = None) -> list[dict[str, Any]]:
        """End an open event (shutdown); a pending crossing is dropped. Returns the ``end`` message, if any."""
        ts = self._clock() if timestamp is None else float(timestamp)
        if self._state == _PENDING:
            self._state = _IDLE
            self._peak_frame = None
            return []
        if self._state != _ACTIVE:
            return []
        self._state = _IDLE
        self._cooldown_until = ts + self.policy.cooldown_s
        return [self._message("end", ts, ended_at=ts)]

    def snapshot_jpeg(self) -> bytes | None:
        """JPEG of the peak frame of the current (or last) event, encoded once on first request; None if none."""
        if self._snapshot_jpeg is None and self._snapshot_frame is not None:
            import cv2

            ok, buf = cv2.imencode(
                ".jpg", self._snapshot_frame, [int(cv2.IMWRITE_JPEG_QUALITY), _JPEG_QUALITY]
            )
            if not ok:
                log.warning("camera %s: could not encode the peak frame as JPEG", self.camera)
                return None
            self._snapshot_jpeg = buf.tobytes()
        return self._snapshot_jpeg

    def _track_peak(self, score: float, frame: np.ndarray | None) -> None:
        if score > self._peak:
            self._peak = score
            if frame is not None:
                self._peak_frame = np.array(frame, copy=True)  # the caller may reuse its frame buffer
                if self._state == _ACTIVE:
                    self._snapshot_frame, self._snapshot_jpeg = self._peak_frame, None

    def _update_due(self, timestamp: float) -> bool:
        since = timestamp - self._last_sent_at
        if since >= self.policy.update_interval_s:
            return True
        return self._peak > self._last_sent_peak and since >= self.policy.update_interval_s / 4

    def _message(self, kind: str, timestamp: float, *, ended_at: float | None = None) -> dict[str, Any]:
        assert self._event_id is not None
        message = {
            "schema": EVENT_SCHEMA,
            "event_id": self._event_id,
            "seq": self._seq,
            "type": kind,
            "device_id": self.device_id,
            "camera": self.camera,
            "timestamp": timestamp,
            "started_at": self._started_at,
            "ended_at": ended_at,
            "score": self._score,
            "peak_score": self._peak,
            "threshold": float(self.policy.on_threshold),
            "model": dict(self.model_info),
        }
        self._seq += 1
        self._last_sent_at, self._last_sent_peak = timestamp, self._peak
        return message
