"""The MQTT side of ``i3dmtn alerts``: what to subscribe to, and routing each message to the sinks.

A message is routed by its topic's last level(s) through a table of handlers (events, status, stats,
snapshot). Events are parsed, checked against ``i3dmtn.event/1`` and de-duplicated by ``event_id`` + ``seq``
(QoS 1 and the device's outbox deliver *at least* once). Anything that does not follow the contract is
logged as one warning line and skipped: the payloads are untrusted.

Sinks (:class:`AlertSink`) receive the cleaned messages: the terminal printer, the ``--exec`` runner, the
snapshot saver and the web page's state. A failing sink is logged and never stops the others.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from edge_runtime.schema import DEVICE_STATUSES, SchemaError, validate_event, validate_id, validate_review

__all__ = ["AlertSink", "SeenKeys", "AlertConsumer", "parse_event", "is_jpeg"]

log = logging.getLogger(__name__)

# A snapshot received up to this many seconds before a start belongs to it (the runtime may publish the
# frame just before the event message); otherwise the first one after the start, while the event is young.
SNAPSHOT_BEFORE_S = 10.0
SNAPSHOT_AFTER_S = 30.0


def parse_event(payload: bytes) -> dict[str, Any]:
    """JSON bytes -> a validated event dict; raises :class:`SchemaError` with a one-line reason."""
    try:
        message = json.loads(payload.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, an integer of over 4300 digits
        raise SchemaError(f"not JSON ({exc.__class__.__name__}: {exc})") from None
    except RecursionError:  # json.loads recurses per nesting level: "[[[[..." from anyone on the broker
        raise SchemaError("JSON nested too deeply") from None
    return validate_event(message)


def _json_object(payload: bytes, what: str) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, an integer of over 4300 digits
        raise SchemaError(f"{what} not JSON ({exc})") from None
    except RecursionError:
        raise SchemaError(f"{what} JSON nested too deeply") from None


def is_jpeg(payload: bytes) -> bool:
    """A JPEG starts with the SOI marker ``FF D8 FF``."""
    return len(payload) > 3 and payload[:3] == b"\xff\xd8\xff"


class SeenKeys:
    """A bounded LRU set: ``add(key)`` is True the first time a key is seen (within the last ``maxsize``)."""

    def __init__(self, maxsize: int = 10_000):
        if maxsize < 1:
            raise ValueError(f"SeenKeys maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._keys: OrderedDict[Any, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: Any) -> bool:
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self.maxsize:
                self._keys.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._keys)


class AlertSink:
    """Receives cleaned messages; override what you need (every method defaults to doing nothing)."""

    def on_event(self, event: dict[str, Any]) -> None:
        """A new (not duplicate) valid event."""

    def on_status(self, device_id: str, status: str) -> None:
        """``online`` / ``offline`` / ``degraded`` (the device's outbox cannot store: its events still come,
        without the disk's safety net); retained by the broker, so known at subscribe time."""

    def on_stats(self, device_id: str, stats: dict[str, Any]) -> None:
        """The device's periodic stats JSON object."""

    def on_snapshot(self, device_id: str, camera: str, jpeg: bytes) -> None:
        """The latest JPEG of a camera (retained: also the last one from before we subscribed)."""

    def on_event_snapshot(self, event: dict[str, Any], jpeg: bytes) -> None:
        """The snapshot taken near an event's start (at most once per event)."""

    def on_review(self, review: dict[str, Any]) -> None:
        """A validated ``i3dmtn.review/1`` review (retained: the ones made before we subscribed come too)."""


class AlertConsumer:
    """Subscriptions and message routing for one prefix, optionally one device or a shared-subscription group.

    ``handle(topic, payload, retained)`` does all the work and needs no network, so it is the one entry
    point; :class:`~alert_consumer.connection.ConsumerConnection` feeds it from the broker.
    """

    def __init__(
        self,
        prefix: str,
        sinks: Iterable[AlertSink] = (),
        *,
        device: str | None = None,
        group: str | None = None,
        dedup_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        for level in prefix.split("/"):
            validate_id(level, "topic prefix level")
        self.prefix = prefix
        self.device = validate_id(device, "--device") if device is not None else None
        self.group = validate_id(group, "--group") if group is not None else None
        self.sinks = list(sinks)
        self.seen = SeenKeys(dedup_size)
        self._clock = clock
        self._lock = threading.Lock()
        # (device, camera) -> (receive time, jpeg) of the last live (non-retained) snapshot
        self._last_snapshot: dict[tuple[str, str], tuple[float, bytes]] = {}
        # (device, camera) -> [(start receive time, start event)] still waiting for a snapshot
        self._waiting: dict[tuple[str, str], list[tuple[float, dict[str, Any]]]] = {}
        self._routes: dict[str, Callable[[str, list[str], bytes, bool], None]] = {
            "events": self._on_events,
            "status": self._on_status,
            "stats": self._on_stats,
            "snapshot": self._on_snapshot,
            "reviews": self._on_reviews,
        }

    # -- subscriptions -------------------------------------------------------------------------------
    def subscriptions(self) -> list[tuple[str, int]]:
        """``(topic filter, qos)`` pairs. Events go through ``$share/GROUP/`` when a group is set."""
        device = self.device or "+"
        events = f"{self.prefix}/{device}/events"
        if self.group:
            events = f"$share/{self.group}/{events}"
        return [
            (events, 1),
            (f"{self.prefix}/{device}/status", 1),
            (f"{self.prefix}/{device}/stats", 0),
            (f"{self.prefix}/{device}/snapshot/+", 0),
            (f"{self.prefix}/{device}/reviews/+", 1),
        ]

    # -- routing --------------------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Route one message; invalid ones are logged (one line) and dropped."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            log.warning("ignored a message on unexpected topic %r", topic[:200])
            return
        levels = topic[len(head) :].split("/")
        if len(levels) < 2 or levels[1] not in self._routes:
            log.warning("ignored a message on unexpected topic %r", topic[:200])
            return
        try:
            device_id = validate_id(levels[0], "device id in topic")
            self._routes[levels[1]](device_id, levels[2:], payload, retained)
        except SchemaError as exc:
            log.warning("skipped invalid message on %r: %s", topic[:200], exc)

    def _on_events(self, device_id: str, rest: list[str], payload: bytes, retained: bool) -> None:
        if rest:
            raise SchemaError("events topic has extra levels")
        event = parse_event(payload)
        if event["device_id"] != device_id:
            raise SchemaError(f"event device_id {event['device_id']!r} does not match its topic")
        if not self.seen.add((event["event_id"], event["seq"])):
            log.debug("duplicate event %s seq %d skipped", event["event_id"], event["seq"])
            return
        self._emit("on_event", event)
        if event["type"] == "start":
            self._match_snapshot_for_start(event)

    def _on_status(self, device_id: str, rest: list[str], payload: bytes, retained: bool) -> None:
        status = payload.decode("utf-8", "replace").strip()
        if rest or status not in DEVICE_STATUSES:
            raise SchemaError(f"status must be one of {', '.join(DEVICE_STATUSES)}, got {status[:40]!r}")
        self._emit("on_status", device_id, status)

    def _on_stats(self, device_id: str, rest: list[str], payload: bytes, retained: bool) -> None:
        stats = _json_object(payload, "stats are")
        if rest or not isinstance(stats, dict):
            raise SchemaError(f"stats must be a JSON object, got {type(stats).__name__}")
        self._emit("on_stats", device_id, stats)

    def _on_snapshot(self, device_id: str, rest: list[str], payload: bytes, retained: bool) -> None:
        if len(rest) != 1:
            raise SchemaError("snapshot topic must end with /snapshot/<camera>")
        camera = validate_id(rest[0], "camera in snapshot topic")
        if not is_jpeg(payload):
            raise SchemaError(f"snapshot is not a JPEG ({len(payload)} bytes)")
        self._emit("on_snapshot", device_id, camera, payload)
        if retained:  # an old frame from before we subscribed: near no event we will see start
            return
        key = (device_id, camera)
        now = self._clock()
        with self._lock:
            self._last_snapshot[key] = (now, payload)
            waiting = [w for w in self._waiting.pop(key, []) if now - w[0] <= SNAPSHOT_AFTER_S]
        for _, event in waiting:
            self._emit("on_event_snapshot", event, payload)

    def _on_reviews(self, device_id: str, rest: list[str], payload: bytes, retained: bool) -> None:
        if len(rest) != 1:
            raise SchemaError("reviews topic must end with /reviews/<event_id>")
        if not payload:
            return  # a cleared retained review
        review = validate_review(_json_object(payload, "review is"))
        if (review["device_id"], review["event_id"]) != (device_id, rest[0]):
            raise SchemaError("review device_id / event_id do not match its topic")
        self._emit("on_review", review)

    # -- snapshot near a start ------------------------------------------------------------------------
    def _match_snapshot_for_start(self, event: dict[str, Any]) -> None:
        key = (event["device_id"], event["camera"])
        now = self._clock()
        with self._lock:
            last = self._last_snapshot.get(key)
            if last is None or now - last[0] > SNAPSHOT_BEFORE_S:
                young = [w for w in self._waiting.get(key, []) if now - w[0] <= SNAPSHOT_AFTER_S]
                self._waiting[key] = (young + [(now, event)])[-16:]  # bounded, whatever the sender does
                return
        self._emit("on_event_snapshot", event, last[1])

    def _emit(self, method: str, *args: Any) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception:  # a broken sink must not stop the others or the MQTT loop
                log.exception("%s.%s failed", type(sink).__name__, method)
