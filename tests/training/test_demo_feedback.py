"""The demo's feedback loop, piece by piece (the whole loop: tests/e2e/test_feedback.py): the reviews go through
the review page's desk into the watcher's database and retained onto the broker; alarming scenes are counted
per video."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from alert_consumer.review_store import ReviewStore
from tests.alert_consumer.helpers import make_event
from training.demo_feedback import alarming, review_events


def _ended(camera: str, event_id: str) -> list[dict]:
    start = make_event("start", device_id="demo-edge", camera=camera, event_id=event_id)
    return [start, {**make_event("end", device_id="demo-edge", camera=camera, event_id=event_id, seq=1),
                    "started_at": start["started_at"]}]  # fmt: skip


def _retained_reviews(broker) -> list[dict]:
    got: list[dict] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    client.connect(broker.host, broker.port)
    client.subscribe("i3dmtn/+/reviews/#", qos=1)
    client.loop_start()
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    return got


def test_gym_events_are_reviewed_false_alarm_and_fights_fight_in_the_database_and_on_the_broker(
    tmp_path, broker
):
    store = ReviewStore(tmp_path / "watcher.sqlite")
    events = _ended("normal-gym_0000", "gym0") + _ended("anomaly-fight_0001", "fight1")
    for event in events:
        store.on_event(event)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    try:
        assert review_events(store, publisher, events) == {"fight": 1, "false_alarm": 1}
        retained = _retained_reviews(broker)  # a watcher that subscribes later gets them
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    assert {r["event_id"]: r["verdict"] for r in store.reviews()} == {
        "gym0": "false_alarm",
        "fight1": "fight",
    }
    store.close()
    assert {r["event_id"]: r["verdict"] for r in retained} == {"gym0": "false_alarm", "fight1": "fight"}


def test_a_scene_alarms_once_however_many_events_it_raised():
    videos = [
        Path("gym/normal/gym_0000.mp4"),
        Path("gym/normal/gym_0001.mp4"),
        Path("gym/normal/gym_0002.mp4"),
    ]
    events = _ended("normal-gym_0000", "a") + _ended("normal-gym_0000", "b") + _ended("normal-gym_0002", "c")
    assert alarming(videos, events) == 2
    assert alarming(videos, [e for e in events if e["type"] == "end"]) == 0  # an event counts from its start
