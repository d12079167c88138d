"""Fuzzing what ``i3dmtn alerts`` receives: no MQTT payload or topic may raise out of ``AlertConsumer.handle``.

The payloads are untrusted (anyone allowed to publish on the broker): an exception out of ``handle`` would
end paho's network loop and so the consumer. Every sink is a real one (terminal printer, JSON printer,
snapshot saver, the web page's state); a sink that fails is logged by the consumer, so the test also
fails on any ERROR record.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alert_consumer.actions import EventCounter, SnapshotSaver, TerminalPrinter
from alert_consumer.consumer import AlertConsumer
from alert_consumer.state import AlertState
from edge_runtime.events import EventPolicy, EventStateMachine

from .fuzzing import FUZZ, deeply_nested, json_values, mutate

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


def _valid_events() -> list[dict]:
    machine = EventStateMachine("dev1", "cam1", EventPolicy(0.6, 0.4, 0.0, 0.0, 1.0), {"name": "m"})
    out: list[dict] = []
    for t, score in enumerate((0.9, 0.95, 0.7, 0.99, 0.1)):
        out += machine.observe(score, float(t))
    return out


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture
def consumer(tmp_path):
    sinks = [
        TerminalPrinter(io.StringIO()),
        TerminalPrinter(io.StringIO(), as_json=True),
        SnapshotSaver(tmp_path / "snapshots"),
        AlertState(),
        EventCounter(),
    ]
    errors = _Errors()
    logging.getLogger("alert_consumer").addHandler(errors)
    yield AlertConsumer("i3dmtn", sinks), errors
    logging.getLogger("alert_consumer").removeHandler(errors)


topics = st.sampled_from(
    ["i3dmtn/dev1/events", "i3dmtn/dev1/status", "i3dmtn/dev1/stats", "i3dmtn/dev1/snapshot/cam1",
     "i3dmtn/dev1/snapshot/../x", "i3dmtn/../events", "i3dmtn/dev#/events", "other/dev1/events",
     "i3dmtn/dev1/events/extra", "i3dmtn", "i3dmtn/dev1/snapshot"]
) | st.text(max_size=40)  # fmt: skip


def _run(consumer, counts, topic: str, payload: bytes, retained: bool = False) -> None:
    counts["examples"] += 1
    handler, errors = consumer
    handler.handle(topic, payload, retained)
    assert errors.records == [], errors.records


def test_random_bytes_on_any_topic_never_raise(consumer):
    counts = {"examples": 0}
    given(topics, st.binary(max_size=300), st.booleans())(
        FUZZ(lambda t, p, r: _run(consumer, counts, t, p, r))
    )()
    print(f"\n[fuzz alerts random bytes] examples={counts['examples']}")
    assert counts["examples"] >= 1000


def test_random_json_on_any_topic_never_raises(consumer):
    counts = {"examples": 0}
    given(topics, json_values)(FUZZ(lambda t, v: _run(consumer, counts, t, json.dumps(v).encode())))()
    print(f"\n[fuzz alerts random json] examples={counts['examples']}")
    assert counts["examples"] >= 1000


def test_mutated_valid_events_never_raise(consumer):
    counts = {"examples": 0}
    events = _valid_events()

    @FUZZ
    @given(st.data())
    def check(data):
        event = mutate(data, data.draw(st.sampled_from(events)))
        _run(consumer, counts, "i3dmtn/dev1/events", json.dumps(event).encode())
        if data.draw(st.booleans()):
            _run(consumer, counts, "i3dmtn/dev1/snapshot/cam1", JPEG)

    check()
    print(f"\n[fuzz alerts mutated events] examples={counts['examples']}")
    assert counts["examples"] >= 1000


@pytest.mark.parametrize("topic", ["i3dmtn/dev1/events", "i3dmtn/dev1/stats"])
def test_deeply_nested_json_payload_never_raises(consumer, topic):
    _run(consumer, {"examples": 0}, topic, deeply_nested())
