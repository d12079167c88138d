"""The ``clip`` field of an ``end`` event: versioned on its own (``i3dmtn.clip/1``), optional, and ignored
by a consumer that does not know it or its version."""

from __future__ import annotations

import copy
import json

import pytest

from alert_consumer.consumer import parse_event
from edge_runtime.schema import CLIP_SCHEMA, EVENT_SCHEMA, SchemaError, event_clip, validate_event

_END = {
    "schema": EVENT_SCHEMA, "event_id": "e1", "seq": 3, "type": "end", "device_id": "dev1", "camera": "door",
    "timestamp": 10.0, "started_at": 5.0, "ended_at": 10.0, "score": 0.1, "peak_score": 0.9, "threshold": 0.5,
    "model": {"name": "m"},
}  # fmt: skip
_CLIP = {
    "schema": CLIP_SCHEMA, "exists": True, "file": "e1.mp4", "codec": "h264", "started_at": 2.0,
    "duration_s": 10.0, "frames": 250, "width": 398, "height": 224, "size_bytes": 120000, "sha256": "a" * 64,
}  # fmt: skip


def _with(clip):
    return {**copy.deepcopy(_END), "clip": clip}


def test_an_end_with_a_clip_validates_and_event_clip_returns_it():
    assert event_clip(validate_event(_with(_CLIP))) == _CLIP


def test_an_event_without_a_clip_is_still_valid_and_has_none():
    assert event_clip(validate_event(copy.deepcopy(_END))) is None


def test_a_clip_that_could_not_be_written_says_so():
    assert (
        event_clip(validate_event(_with({"schema": CLIP_SCHEMA, "exists": False, "error": "disk full"})))
        is None
    )


def test_a_newer_clip_version_is_ignored_not_refused():
    event = validate_event(_with({"schema": "i3dmtn.clip/2", "anything": [1, 2]}))
    assert event_clip(event) is None


def test_an_unknown_field_is_ignored_as_old_consumers_ignore_clip():
    # the rule that lets a consumer of i3dmtn.event/1 from before clips read an end that carries one
    assert validate_event({**copy.deepcopy(_END), "some_future_field": {"x": 1}})["event_id"] == "e1"
    assert parse_event(json.dumps(_with(_CLIP)).encode())["clip"]["sha256"] == "a" * 64


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"file": "../etc/passwd.mp4"}, "clip file"),
        ({"file": "/abs/e1.mp4"}, "clip file"),
        ({"file": "e1.exe"}, "clip file"),
        ({"sha256": "A" * 64}, "sha256"),
        ({"sha256": "abc"}, "sha256"),
        ({"size_bytes": -1}, "size_bytes"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"frames": True}, "frames"),
        ({"exists": "yes"}, "exists"),
    ],
)
def test_a_bad_clip_of_a_known_version_is_refused_with_the_field_named(change, needle):
    with pytest.raises(SchemaError, match=needle):
        validate_event(_with({**_CLIP, **change}))


def test_a_clip_that_is_not_an_object_is_refused():
    with pytest.raises(SchemaError, match="clip"):
        validate_event(_with("e1.mp4"))
