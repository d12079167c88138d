"""The event state machine on scripted score sequences: every message is checked against i3dmtn.event/1."""

from __future__ import annotations

import uuid

import cv2
import numpy as np
import pytest

from edge_runtime.events import EventPolicy, EventStateMachine
from edge_runtime.schema import SchemaError, validate_event

MODEL = {"name": "i3d-mtn", "version": "test"}


def _machine(**policy) -> EventStateMachine:
    defaults = dict(
        on_threshold=0.6, off_threshold=0.4, min_duration_s=1.0, cooldown_s=5.0, update_interval_s=2.0
    )
    defaults.update(policy)
    return EventStateMachine("dev-1", "cam-1", EventPolicy(**defaults), MODEL, clock=lambda: 1000.0)


def _run(machine: EventStateMachine, script: list[tuple[float, float]]) -> list[dict]:
    out: list[dict] = []
    for ts, score in script:
        for message in machine.observe(score, ts):
            out.append(validate_event(message))
    return out


def _steady(t0: float, t1: float, score: float, step: float = 0.5) -> list[tuple[float, float]]:
    return [(t0 + i * step, score) for i in range(int(round((t1 - t0) / step)))]


def test_policy_defaults_off_to_eighty_percent_of_on():
    assert EventPolicy(on_threshold=0.5).off_threshold == pytest.approx(0.4)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(on_threshold=0.5, off_threshold=0.6),
        dict(on_threshold=0.5, min_duration_s=-1),
        dict(on_threshold=0.5, cooldown_s=float("nan")),
        dict(on_threshold=0.5, update_interval_s=0),
    ],
)
def test_policy_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="event policy"):
        EventPolicy(**kwargs)


def test_bad_camera_id_is_refused():
    with pytest.raises(SchemaError, match="camera"):
        EventStateMachine("dev", "cam/#", EventPolicy(on_threshold=0.5), MODEL)


def test_event_is_start_then_updates_then_end_with_increasing_seq():
    m = _machine()
    messages = _run(m, _steady(0, 2, 0.1) + _steady(2, 10, 0.9) + _steady(10, 12, 0.1))
    types = [msg["type"] for msg in messages]
    assert types[0] == "start" and types[-1] == "end" and set(types[1:-1]) == {"update"}
    assert [msg["seq"] for msg in messages] == list(range(len(messages)))
    assert len({msg["event_id"] for msg in messages}) == 1
    assert uuid.UUID(messages[0]["event_id"]).version == 4
    assert messages[0]["started_at"] == 2.0 and messages[0]["timestamp"] == 3.0  # crossed at 2, held 1 s
    assert messages[-1]["ended_at"] == 10.0 and messages[-1]["peak_score"] == 0.9
    assert all(msg["threshold"] == 0.6 and msg["model"] == MODEL for msg in messages)


def test_updates_are_rate_limited_by_the_interval():
    m = _machine(update_interval_s=2.0)
    messages = _run(m, _steady(0, 20, 0.9, step=0.1))
    stamps = [msg["timestamp"] for msg in messages if msg["type"] == "update"]
    assert stamps and all(b - a >= 2.0 - 1e-9 for a, b in zip(stamps, stamps[1:], strict=False))


def test_rising_peak_sends_an_update_sooner_than_the_interval():
    m = _machine(update_interval_s=4.0)
    messages = _run(m, [(0, 0.7), (1, 0.7), (2, 0.95), (2.5, 0.7)])
    assert [msg["type"] for msg in messages] == ["start", "update"]
    assert messages[1]["timestamp"] == 2 and messages[1]["peak_score"] == 0.95


def test_a_blip_shorter_than_min_duration_sends_nothing():
    m = _machine(min_duration_s=1.0)
    assert _run(m, [(0, 0.1), (0.5, 0.9), (1.0, 0.2), (1.5, 0.1)]) == []
    assert not m.active


def test_score_between_off_and_on_keeps_the_event_open():
    m = _machine()
    messages = _run(m, _steady(0, 2, 0.9) + _steady(2, 8, 0.5))
    assert [msg["type"] for msg in messages if msg["type"] != "update"] == ["start"]
    assert m.active
    assert _run(m, [(8, 0.39)])[0]["type"] == "end"
    assert not m.active


def test_score_between_off_and_on_does_not_start_an_event():
    m = _machine()
    assert _run(m, _steady(0, 5, 0.5)) == []


def test_recrossing_during_cooldown_is_ignored_then_a_new_event_starts():
    m = _machine(cooldown_s=5.0, min_duration_s=0.0)
    first = _run(m, [(0, 0.9), (1, 0.1)])
    during = _run(m, [(2, 0.9), (3, 0.9), (4, 0.9), (5, 0.1)])
    after = _run(m, [(6.5, 0.9)])
    assert [msg["type"] for msg in first] == ["start", "end"]
    assert during == []
    assert [msg["type"] for msg in after] == ["start"]
    assert after[0]["event_id"] != first[0]["event_id"] and after[0]["seq"] == 0
    assert after[0]["started_at"] == 6.5


def test_close_ends_an_open_event_with_the_clock_time():
    m = _machine(min_duration_s=0.0)
    _run(m, [(0, 0.9)])
    (end,) = m.close()
    validate_event(end)
    assert end["type"] == "end" and end["ended_at"] == 1000.0 and end["seq"] == 1
    assert m.close() == []


def test_close_without_an_event_sends_nothing():
    m = _machine()
    _run(m, [(0, 0.9)])  # pending, not started
    assert m.close(5.0) == []


def test_peak_frame_is_kept_and_encoded_as_jpeg():
    m = _machine(min_duration_s=0.0)
    frames = {score: np.full((24, 32, 3), int(score * 255), np.uint8) for score in (0.7, 0.95, 0.8)}
    for ts, score in enumerate((0.7, 0.95, 0.8)):
        buffer = frames[score].copy()
        m.observe(score, float(ts), buffer)
        buffer[:] = 0  # the caller reuses its buffer: the machine must have copied it
    jpeg = m.snapshot_jpeg()
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8"
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (24, 32, 3)
    assert abs(int(decoded.mean()) - int(0.95 * 255)) <= 3


def test_no_snapshot_before_any_event():
    m = _machine()
    m.observe(0.9, 0.0, np.zeros((8, 8, 3), np.uint8))  # pending only
    assert m.snapshot_jpeg() is None


def test_non_finite_score_is_refused():
    with pytest.raises(ValueError, match="score"):
        _machine().observe(float("nan"), 0.0)
