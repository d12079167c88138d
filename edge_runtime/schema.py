"""The event contract on MQTT and the validation of ids in topics (docs/architecture.md, "Events over MQTT").

Shared by the producer (the runtime) and the consumers (``i3dmtn alerts``), so both read the same rules.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "EVENT_SCHEMA",
    "CLIP_SCHEMA",
    "CLIP_FIELDS",
    "CLIP_FILE_RE",
    "event_clip",
    "EVENT_TYPES",
    "EVENT_FIELDS",
    "DEVICE_STATUSES",
    "SchemaError",
    "validate_id",
    "validate_event",
    "is_finite_number",
    "events_topic",
    "status_topic",
    "stats_topic",
    "snapshot_topic",
    "REVIEW_SCHEMA",
    "REVIEW_VERDICTS",
    "MAX_REVIEW_NOTE",
    "validate_review",
    "reviews_topic",
]

EVENT_SCHEMA = "i3dmtn.event/1"
# The optional ``clip`` field of an ``end`` event has its own version: a field added to an event is ignored by
# a consumer that does not know it (events are validated field by field, unknown ones are kept, not refused),
# so the event stays i3dmtn.event/1; a clip of another version is left alone by this code (event_clip: None).
CLIP_SCHEMA = "i3dmtn.clip/1"
# clip fields -> types; "exists": false carries only schema, exists and error
CLIP_FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "exists": (bool,),
    "file": (str,),
    "codec": (str,),
    "started_at": (float, int),
    "duration_s": (float, int),
    "frames": (int,),
    "width": (int,),
    "height": (int,),
    "size_bytes": (int,),
    "sha256": (str,),
}
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
CLIP_FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.(?:mp4|webm)")
# A person's review of an event, retained at {prefix}/{device_id}/reviews/{event_id} so that every watcher
# (and one started later) agrees on it; the latest ``reviewed_at`` wins.
REVIEW_SCHEMA = "i3dmtn.review/1"
REVIEW_VERDICTS = ("fight", "false_alarm")
MAX_REVIEW_NOTE = 500  # characters
EVENT_TYPES = ("start", "update", "end")
# the retained /status payloads: degraded = running, but the outbox cannot store (events come without it)
DEVICE_STATUSES = ("online", "offline", "degraded")
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
# The number fields must also be finite: NaN and Infinity are not JSON (see is_finite_number).
_NUMBER_FIELDS = tuple(k for k, types in EVENT_FIELDS.items() if float in types)

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
    for key in _NUMBER_FIELDS:
        value = message[key]
        if value is not None and not is_finite_number(value):
            raise SchemaError(f"event field {key!r} must be a finite number, got {str(value)[:40]}")
    if _holds_non_finite(message["model"]):
        raise SchemaError("event field 'model' must hold only finite numbers (no NaN or Infinity)")
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
    if "clip" in message:
        _validate_clip(message["clip"])
    return message


def _validate_clip(clip: Any) -> None:
    if not isinstance(clip, dict) or not isinstance(clip.get("schema"), str):
        raise SchemaError("event field 'clip' must be an object with a 'schema'")
    if clip["schema"] != CLIP_SCHEMA:
        return  # a newer clip version: this consumer ignores it (event_clip gives None)
    if not isinstance(clip.get("exists"), bool):
        raise SchemaError("event field 'clip' must say whether it exists (true/false)")
    if not clip["exists"]:
        return
    for key, types in CLIP_FIELDS.items():
        value = clip.get(key)
        if isinstance(value, bool) is not (bool in types) or not isinstance(value, types):
            names = "/".join(t.__name__ for t in types)
            raise SchemaError(f"clip field {key!r} must be {names}, got {type(value).__name__}")
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and not (is_finite_number(value) and value >= 0)
        ):
            raise SchemaError(f"clip field {key!r} must be a finite number >= 0, got {value}")
    if not CLIP_FILE_RE.fullmatch(clip["file"]):
        raise SchemaError(f"clip file {clip['file'][:80]!r} is not a clip name (<event_id>.mp4|webm)")
    if not _SHA256_RE.fullmatch(clip["sha256"]):
        raise SchemaError("clip sha256 must be 64 lower-case hex digits")


def validate_review(message: Any) -> dict[str, Any]:
    """Check a review against ``i3dmtn.review/1``: ``{"schema", "event_id", "device_id", "camera", "verdict"
    ("fight" | "false_alarm"), "note" (str, may be empty), "reviewer" (an id), "reviewed_at" (epoch s)}``;
    return it or raise :class:`SchemaError`. Unknown fields are kept, as for events."""
    if not isinstance(message, dict):
        raise SchemaError(f"a review must be a JSON object, got {type(message).__name__}")
    if message.get("schema") != REVIEW_SCHEMA:
        raise SchemaError(
            f"unknown review schema {str(message.get('schema'))[:40]!r}; expected {REVIEW_SCHEMA!r}"
        )
    for key in ("event_id", "device_id", "camera", "reviewer"):
        validate_id(message.get(key), f"review {key}")
    if message.get("verdict") not in REVIEW_VERDICTS:
        raise SchemaError(
            f"review verdict must be one of {REVIEW_VERDICTS}, got {str(message.get('verdict'))[:40]!r}"
        )
    note = message.get("note")
    if not isinstance(note, str) or len(note) > MAX_REVIEW_NOTE:
        raise SchemaError(f"review note must be a string of at most {MAX_REVIEW_NOTE} characters")
    if not is_finite_number(message.get("reviewed_at")):
        raise SchemaError("review reviewed_at must be a finite number (epoch seconds)")
    return message


def event_clip(message: dict[str, Any]) -> dict[str, Any] | None:
    """The existing ``i3dmtn.clip/1`` clip of a validated event, else None (none, not written, or a version
    this code does not know)."""
    clip = message.get("clip")
    if isinstance(clip, dict) and clip.get("schema") == CLIP_SCHEMA and clip.get("exists") is True:
        return clip
    return None


def is_finite_number(value: Any) -> bool:
    """An int or float that is a real number: not a bool, NaN, +-Infinity (Python's json reads ``NaN``,
    ``Infinity`` and ``1e999``; a browser's JSON.parse rejects the first two) or an int beyond a float's range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _holds_non_finite(value: Any) -> bool:
    """NaN or +-Infinity anywhere in a JSON value (walked without recursion: the sender picks the depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


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


def reviews_topic(prefix: str, device_id: str, event_id: str) -> str:
    return _topic(prefix, device_id, f"reviews/{validate_id(event_id, 'event_id')}")
