"""AlertConsumer's routing, de-duplication and snapshot matching, driven through ``handle`` (no network)."""

from __future__ import annotations

import json
import logging

import pytest

from alert_consumer.actions import SnapshotSaver, snapshot_path
from alert_consumer.consumer import AlertConsumer, AlertSink, SeenKeys
from edge_runtime.schema import SchemaError, validate_event
from tests.alert_consumer.helpers import make_event, tiny_jpeg


class Recorder(AlertSink):
    def __init__(self):
        self.events, self.statuses, self.event_snapshots = [], [], []

    def on_event(self, event):
        self.events.append(event)

    def on_status(self, device_id, status):
        self.statuses.append((device_id, status))

    def on_event_snapshot(self, event, jpeg):
        self.event_snapshots.append((event["event_id"], jpeg))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _consumer(**kwargs):
    recorder, clock = Recorder(), Clock()
    return AlertConsumer("i3dmtn", [recorder], clock=clock, **kwargs), recorder, clock


def _send(consumer, event):
    consumer.handle(f"i3dmtn/{event['device_id']}/events", json.dumps(event).encode())


def test_seen_keys_forgets_the_oldest_beyond_its_size():
    seen = SeenKeys(maxsize=2)
    assert seen.add("a") and seen.add("b") and not seen.add("a")
    assert seen.add("c")  # evicts "b", the least recently seen
    assert seen.add("b") and len(seen) == 2


def test_same_event_id_with_a_new_seq_is_not_a_duplicate():
    consumer, recorder, _ = _consumer()
    _send(consumer, make_event("start", event_id="e1"))
    _send(consumer, make_event("update", event_id="e1", seq=1))
    _send(consumer, make_event("update", event_id="e1", seq=1))
    assert [e["seq"] for e in recorder.events] == [0, 1]


def test_subscriptions_use_share_group_for_events_only():
    consumer, _, _ = _consumer(group="pagers", device="cam-1")
    topics = [t for t, _ in consumer.subscriptions()]
    assert topics[0] == "$share/pagers/i3dmtn/cam-1/events"
    assert all(not t.startswith("$share") for t in topics[1:])


def test_status_other_than_online_offline_degraded_is_skipped(caplog):
    consumer, recorder, _ = _consumer()
    with caplog.at_level(logging.WARNING):
        consumer.handle("i3dmtn/cam-1/status", b"online")
        consumer.handle("i3dmtn/cam-1/status", b"<script>")
        consumer.handle("i3dmtn/cam-1/status", b"degraded")
    assert recorder.statuses == [("cam-1", "online"), ("cam-1", "degraded")]
    assert "status must be" in caplog.text


def test_wildcard_or_traversal_in_topic_device_is_skipped():
    consumer, recorder, _ = _consumer()
    consumer.handle("i3dmtn/../events", json.dumps(make_event()).encode())
    consumer.handle("i3dmtn/cam door/status", b"online")
    assert recorder.events == [] and recorder.statuses == []


def test_live_snapshot_just_before_a_start_belongs_to_it():
    consumer, recorder, clock = _consumer()
    jpeg = tiny_jpeg()
    consumer.handle("i3dmtn/cam-door/snapshot/front", jpeg)
    clock.now += 2
    event = make_event("start")
    _send(consumer, event)
    assert recorder.event_snapshots == [(event["event_id"], jpeg)]


def test_retained_or_stale_snapshot_does_not_belong_to_a_later_start():
    consumer, recorder, clock = _consumer()
    consumer.handle("i3dmtn/cam-door/snapshot/front", tiny_jpeg(10), retained=True)
    consumer.handle("i3dmtn/cam-other/snapshot/front", tiny_jpeg(20))
    clock.now += 2
    event = make_event("start")
    _send(consumer, event)
    assert recorder.event_snapshots == []
    fresh = tiny_jpeg(200)
    consumer.handle("i3dmtn/cam-door/snapshot/front", fresh)
    assert recorder.event_snapshots == [(event["event_id"], fresh)]


def test_snapshot_that_is_not_a_jpeg_is_skipped(caplog):
    consumer, recorder, _ = _consumer()
    _send(consumer, make_event("start"))
    with caplog.at_level(logging.WARNING):
        consumer.handle("i3dmtn/cam-door/snapshot/front", b"GIF89a....")
    assert recorder.event_snapshots == [] and "not a JPEG" in caplog.text


def test_snapshot_path_refuses_traversal_in_event_id(tmp_path):
    with pytest.raises(SchemaError, match="event_id"):
        snapshot_path(tmp_path, make_event(event_id="../../etc/cron.d/x"))


def test_snapshot_saver_skips_an_unsafe_event_id_and_writes_nothing(tmp_path, caplog):
    saver = SnapshotSaver(tmp_path / "out")
    with caplog.at_level(logging.WARNING):
        saver.on_event_snapshot(make_event(event_id="../evil"), tiny_jpeg())
    assert list(tmp_path.rglob("*.jpg")) == [] and "not saved" in caplog.text


def test_a_failing_sink_does_not_stop_the_others(caplog):
    class Broken(AlertSink):
        def on_event(self, event):
            raise RuntimeError("boom")

    recorder = Recorder()
    consumer = AlertConsumer("i3dmtn", [Broken(), recorder])
    with caplog.at_level(logging.ERROR):
        _send(consumer, make_event())
    assert len(recorder.events) == 1 and "Broken.on_event failed" in caplog.text


@pytest.mark.parametrize("field", ["score", "peak_score", "threshold", "timestamp", "started_at", "ended_at"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_event_with_a_non_finite_number_is_skipped_with_a_warning(field, value, caplog):
    consumer, recorder, _ = _consumer()
    with caplog.at_level(logging.WARNING):
        _send(consumer, {**make_event("end"), field: value})  # json.dumps writes NaN / Infinity
    assert recorder.events == [] and f"{field!r} must be a finite number" in caplog.text


def test_event_with_nan_nested_in_model_is_refused():
    with pytest.raises(SchemaError, match="model"):
        validate_event({**make_event(), "model": {"calibration": [{"bias": float("nan")}]}})


def test_event_with_an_int_beyond_float_range_is_refused():
    with pytest.raises(SchemaError, match="'score' must be a finite number"):
        validate_event({**make_event(), "score": 10**400})


def test_json_integer_of_too_many_digits_is_skipped_with_a_warning(caplog):
    consumer, recorder, _ = _consumer()
    with caplog.at_level(logging.WARNING):
        consumer.handle("i3dmtn/cam-door/events", b'{"seq": ' + b"9" * 5000 + b"}")
        consumer.handle("i3dmtn/cam-door/stats", b'{"fps": ' + b"9" * 5000 + b"}")
    assert recorder.events == [] and caplog.text.count("skipped invalid message") == 2


@pytest.mark.parametrize("type_", ["update", "end"])
def test_an_event_whose_duration_overflows_is_printed_without_an_error(type_, caplog):
    import io

    from alert_consumer.actions import TerminalPrinter

    stream = io.StringIO()
    consumer = AlertConsumer("i3dmtn", [TerminalPrinter(stream)], clock=Clock())
    event = make_event(type_, seq=1)
    event.update(started_at=-1.7e308, timestamp=1.7e308, ended_at=1.7e308 if type_ == "end" else None)
    with caplog.at_level(logging.WARNING):
        _send(consumer, event)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert type_.upper() in stream.getvalue() and "unknown" in stream.getvalue()
