"""The live picture behind the web page: devices, open and recent events, score history, snapshots.

:class:`AlertState` is a sink fed by the MQTT thread and read by the HTTP threads; one lock guards it and
a version counter with a condition tells the Server-Sent-Events streams that something changed (they then
send the whole picture, which is small: bounded lists everywhere).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any

from alert_consumer.consumer import AlertSink
from edge_runtime.schema import is_finite_number

__all__ = ["AlertState", "RECENT_EVENTS", "SCORE_HISTORY"]

RECENT_EVENTS = 50  # events listed on the page (open ones are kept until they end)
SCORE_HISTORY = 120  # points per camera sparkline
EVENT_TIMELINE = 200  # score points per event (its messages' scores), for the review panel
MAX_OPEN = 500  # open events kept even if their end never comes (a device that died mid-event)
MAX_DEVICES = 1000
_STATS_KEYS = 12  # scalar stats fields shown per device
_STATS_HIDDEN = {"device_id", "timestamp"}  # already on the card / not worth a raw epoch number


def _scores_from_stats(stats: dict[str, Any]) -> dict[str, float]:
    """Per-camera scores in a stats message, if it carries any.

    Accepted forms: ``{"cameras": {"front": {"score": 0.1}}}``, ``{"cameras": [{"camera": "front",
    "score": 0.1}]}`` or ``{"scores": {"front": 0.1}}``.
    """
    found: dict[str, Any] = {}
    cameras = stats.get("cameras")
    if isinstance(cameras, dict):
        found.update({k: v.get("score") for k, v in cameras.items() if isinstance(v, dict)})
    elif isinstance(cameras, list):
        found.update({c.get("camera"): c.get("score") for c in cameras if isinstance(c, dict)})
    if isinstance(stats.get("scores"), dict):
        found.update(stats["scores"])
    return {str(k): float(v) for k, v in found.items() if isinstance(k, str) and is_finite_number(v)}


def _scalars(stats: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in stats.items():
        if key in _STATS_HIDDEN:
            continue
        if isinstance(value, float) and not is_finite_number(value):
            continue  # NaN / Infinity are not JSON: the page could not read the state
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[str(key)[:40]] = value[:80] if isinstance(value, str) else value
        if len(out) >= _STATS_KEYS:
            break
    return out


class AlertState(AlertSink):
    """Thread-safe state; :meth:`to_dict` is the ``/api/state`` JSON and what the SSE stream sends."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.version = 0
        self._devices: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._events: OrderedDict[str, dict[str, Any]] = OrderedDict()  # event_id -> record, oldest first
        self._scores: dict[tuple[str, str], deque] = {}
        self._snapshots: dict[tuple[str, str], tuple[int, bytes]] = {}  # -> (version, jpeg)
        self._event_snapshots: dict[str, bytes] = {}
        self._reviews: OrderedDict[str, dict[str, Any]] = OrderedDict()  # event_id -> latest review

    # -- sink ------------------------------------------------------------------------------------------
    def on_status(self, device_id: str, status: str) -> None:
        with self._changed:
            self._device(device_id).update(status=status, status_at=time.time())
            self._bump()

    def on_stats(self, device_id: str, stats: dict[str, Any]) -> None:
        with self._changed:
            self._device(device_id).update(stats=_scalars(stats), stats_at=time.time())
            for camera, score in _scores_from_stats(stats).items():
                self._add_score(device_id, camera, time.time(), score)
            self._bump()

    def on_snapshot(self, device_id: str, camera: str, jpeg: bytes) -> None:
        with self._changed:
            self._camera(device_id, camera)
            self._snapshots[(device_id, camera)] = (self.version + 1, jpeg)
            self._bump()

    def on_event_snapshot(self, event: dict[str, Any], jpeg: bytes) -> None:
        with self._changed:
            record = self._events.get(event["event_id"])
            if record is not None:
                self._event_snapshots[event["event_id"]] = jpeg
                record["snapshot"] = True
                self._bump()

    def on_event(self, event: dict[str, Any]) -> None:
        with self._changed:
            self._device(event["device_id"])
            self._camera(event["device_id"], event["camera"])
            self._add_score(event["device_id"], event["camera"], event["timestamp"], event["score"])
            record = self._events.get(event["event_id"])
            if record is None:
                record = {"event_id": event["event_id"], "seq": -1, "state": "open", "snapshot": False}
                self._events[event["event_id"]] = record
                self._trim_events()
            timeline = record.setdefault("timeline", [])
            timeline.append([float(event["timestamp"]), float(event["score"])])
            timeline.sort()
            del timeline[: max(0, len(timeline) - EVENT_TIMELINE)]
            if (event["seq"] > record["seq"] and record["state"] != "ended") or event["type"] == "end":
                record.update(
                    device_id=event["device_id"],
                    camera=event["camera"],
                    seq=max(event["seq"], record["seq"]),
                    started_at=event["started_at"],
                    last_at=event["timestamp"],
                    ended_at=event["ended_at"],
                    score=event["score"],
                    peak_score=max(event["peak_score"], record.get("peak_score", 0.0)),
                    threshold=event["threshold"],
                    state="ended" if event["type"] == "end" else "open",
                    model={k: v for k, v in event["model"].items() if isinstance(v, (str, int, float))},
                )
                end = event["ended_at"] if event["type"] == "end" else event["timestamp"]
                record["duration"] = max(0.0, float(end) - float(event["started_at"]))
            self._bump()

    def on_review(self, review: dict[str, Any]) -> None:
        with self._changed:
            known = self._reviews.get(review["event_id"])
            if known is not None and known["reviewed_at"] >= review["reviewed_at"]:
                return
            self._reviews[review["event_id"]] = {
                k: review[k] for k in ("verdict", "note", "reviewer", "reviewed_at")
            }
            self._reviews.move_to_end(review["event_id"])
            while len(self._reviews) > MAX_OPEN + RECENT_EVENTS:
                self._reviews.popitem(last=False)
            self._bump()

    def on_clip_saved(self, event_id: str, url: str, duration_s: float) -> None:
        """The watcher holds the event's clip and serves it at ``url`` (a path on the page's server)."""
        with self._changed:
            record = self._events.get(event_id)
            if record is not None:
                record["clip"] = {"url": url, "duration_s": float(duration_s)}
                self._bump()

    def restore(self, records: list[dict[str, Any]]) -> None:
        """Ended events from the watcher's database (oldest first), shown as after a restart; each has the
        :meth:`on_event` record's keys, ``timeline`` and optionally ``clip`` (``{"url", "duration_s"}``)."""
        with self._changed:
            for record in records:
                if record["event_id"] not in self._events:
                    self._device(record["device_id"])
                    self._events[record["event_id"]] = {"snapshot": False, **record}
            self._trim_events()
            self._bump()

    def event_record(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._events.get(event_id)
            return dict(record) if record is not None and "device_id" in record else None

    # -- reading ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return self._to_dict_locked()

    def wait_for_change(self, seen_version: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        """Block until ``version`` passes ``seen_version`` (-> new version and state) or ``timeout`` (-> None)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.version != seen_version, timeout):
                return seen_version, None
            return self.version, self._to_dict_locked()

    def wake_all(self) -> None:
        """Wake every waiting stream (used when the server stops)."""
        with self._changed:
            self._changed.notify_all()

    def snapshot(self, device_id: str, camera: str) -> bytes | None:
        with self._lock:
            entry = self._snapshots.get((device_id, camera))
            return entry[1] if entry else None

    def event_snapshot(self, event_id: str) -> bytes | None:
        with self._lock:
            return self._event_snapshots.get(event_id)

    # -- internals (lock held) ------------------------------------------------------------------------
    def _bump(self) -> None:
        self.version += 1
        self._changed.notify_all()

    def _device(self, device_id: str) -> dict[str, Any]:
        device = self._devices.get(device_id)
        if device is None:
            if len(self._devices) >= MAX_DEVICES:
                self._devices.popitem(last=False)
            device = {
                "device_id": device_id,
                "status": "unknown",
                "status_at": None,
                "stats": {},
                "cameras": [],
            }
            self._devices[device_id] = device
        return device

    def _camera(self, device_id: str, camera: str) -> None:
        cameras = self._device(device_id)["cameras"]
        if camera not in cameras and len(cameras) < 64:
            cameras.append(camera)

    def _add_score(self, device_id: str, camera: str, at: float, score: float) -> None:
        self._camera(device_id, camera)
        self._scores.setdefault((device_id, camera), deque(maxlen=SCORE_HISTORY)).append(
            (float(at), float(score))
        )

    def _trim_events(self) -> None:
        ended = [k for k, r in self._events.items() if r["state"] == "ended"]
        opened = [k for k, r in self._events.items() if r["state"] != "ended"]
        drop = ended[: max(0, len(self._events) - RECENT_EVENTS)] if len(self._events) > RECENT_EVENTS else []
        drop += opened[: max(0, len(opened) - MAX_OPEN)]
        for key in drop:
            self._events.pop(key, None)
            self._event_snapshots.pop(key, None)

    def _to_dict_locked(self) -> dict[str, Any]:
        devices = []
        for device in self._devices.values():
            cameras = []
            for camera in device["cameras"]:
                key = (device["device_id"], camera)
                snap = self._snapshots.get(key)
                cameras.append(
                    {
                        "camera": camera,
                        "scores": list(self._scores.get(key, ())),
                        "snapshot_version": snap[0] if snap else None,
                    }
                )
            devices.append({**device, "cameras": cameras, "stats": dict(device["stats"])})
        events = [  # newest first
            {**r, "timeline": list(r.get("timeline", ())), "review": self._reviews.get(r["event_id"])}
            for r in reversed(self._events.values())
            if "device_id" in r
        ]
        return {
            "prefix": self.prefix,
            "version": self.version,
            "generated_at": time.time(),
            "devices": devices,
            "open_events": [e for e in events if e["state"] == "open"],
            "recent_events": [e for e in events if e["state"] == "ended"][:RECENT_EVENTS],
        }
