"""The event contract on MQTT (DESIGN "Events over MQTT") and the validation of ids used in topics.

Shared by the producer (the runtime) and the consumers (``i3dmtn alerts``), so both read the same rules.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "EVENT_FIELDS",
    "SchemaError",
    "validate_id",
    "validate_event",
    "events_topic",
    "status_topic",
    "stats_topic",
    "snapshot_topic",
]

EVENT_SCHEMA = "i3dmtn.event/1"
EVENT_TYPES = ("start", "update", "end")
# field -> accepted Python types (after json.loads). ``ended_at`` is null until the ``end`` message.
EVENT_FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "event_id": (str,),
    "seq": (int,),
    "type": (str,),
    "device_id": (str,),
    "camera": (str,),
    "timestamp": (float, int),
    "started_at": (float, int),
    "ended_at": (float, int, type(None)),
    "score": (float, int),
    "peak_score": (float, int),
    "threshold": (float, int),
    "model": (dict,),
}

# Letters, digits, '-', '_', '.', 1..64 chars: no MQTT wildcards ('#', '+'), no level separator ('/'),
# no control characters, no path traversal ('..' alone), usable as a file name too.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # used with fullmatch: "$" would accept a final "\n"


class SchemaError(ValueError):
    """An id or a message that does not follow the contract."""


def validate_id(value: Any, what: str = "id") -> str:
    """Return ``value`` if it is a safe topic level / file name, else raise naming ``what``."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or value in (".", ".."):
        raise SchemaError(
            f"{what} {value!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (no '#', '+', '/', spaces or control characters)"
        )
    return value


def validate_event(message: Any) -> dict[str, Any]:
    """Check an event dict against ``i3dmtn.event/1``; return it or raise :class:`SchemaError`."""
    if not isinstance(message, dict):
        raise SchemaError(f"an event must be a JSON object, got {type(message).__name__}")
    missing = [k for k in EVENT_FIELDS if k not in message]
    if missing:
        raise SchemaError(f"event is missing field(s) {missing}")
    for key, types in EVENT_FIELDS.items():
        value = message[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = "/".join(t.__name__ for t in types)
            raise SchemaError(f"event field {key!r} must be {names}, got {type(value).__name__}")
    if message["schema"] != EVENT_SCHEMA:
        raise SchemaError(f"unknown event schema {message['schema']!r}; expected {EVENT_SCHEMA!r}")
    if message["type"] not in EVENT_TYPES:
        raise SchemaError(f"event type must be one of {EVENT_TYPES}, got {message['type']!r}")
    if message["seq"] < 0:
        raise SchemaError(f"event seq must be >= 0, got {message['seq']}")
    validate_id(message["device_id"], "device_id")
    validate_id(message["camera"], "camera")
    if message["type"] == "end" and message["ended_at"] is None:
        raise SchemaError("an 'end' event must carry ended_at")
    return message


def _topic(prefix: str, device_id: str, leaf: str) -> str:
    for level in prefix.split("/"):
        validate_id(level, "topic prefix level")
    return f"{prefix}/{validate_id(device_id, 'device_id')}/{leaf}"


def events_topic(prefix: str, device_id: str) -> str:
    return _topic(prefix, device_id, "events")


def status_topic(prefix: str, device_id: str) -> str:
    return _topic(prefix, device_id, "status")


def stats_topic(prefix: str, device_id: str) -> str:
    return _topic(prefix, device_id, "stats")


def snapshot_topic(prefix: str, device_id: str, camera: str) -> str:
    return _topic(prefix, device_id, f"snapshot/{validate_id(camera, 'camera')}")
