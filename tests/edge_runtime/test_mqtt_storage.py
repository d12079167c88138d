"""The publisher on a full disk, against a real broker: events still go out (QoS 1) while the outbox cannot store
them, the device says ``degraded`` on /status and in /stats, and durable storage resumes when space returns."""

from __future__ import annotations

import json

from edge_runtime.broker import LocalBroker
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.outbox_fallback import FallbackOutbox
from tests.edge_runtime.mqtt_helpers import (
    DEVICE,
    KEEP_USER,
    Subscriber,
    _assert_complete_and_ordered,
    _scripted_events,
    _settings,
    needs_mosquitto,
    wait_for,
)


def _events(n: int, offset: int = 0) -> list[dict]:
    """``n`` scripted events (start / updates / end each) with ids unique to this call."""
    out = []
    for e in _scripted_events(n):
        out.append({**e, "event_id": f"{e['event_id']}-{offset}"})
    return out


def _publish_until_failing(pub: MqttPublisher, limit: int = 5000) -> list[dict]:
    sent: list[dict] = []
    for n in range(limit):
        batch = _events(1, offset=n)
        pub.publish_events(batch)
        sent += batch
        if pub.outbox.failing:
            return sent
    raise AssertionError("the disk never refused a write")


def test_a_full_disk_with_the_broker_up_loses_nothing_and_says_degraded(broker, full_disk):
    sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/#")
    with FallbackOutbox.open(full_disk.folder / "o.sqlite", retry_s=0.2) as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        assert pub.wait_connected(10)
        full_disk.fill(box)
        sent = _publish_until_failing(pub)
        during = _events(5, offset=10_000)
        for event in during:  # one message per call, as a runtime loop pass with one camera
            pub.publish_events([event])
        sent += during
        wait_for(
            lambda: len({(e["event_id"], e["seq"]) for e in sub.events()}) == len(sent), what="all events"
        )
        wait_for(lambda: sub.payloads("/status")[-1:] == [b"degraded"], what="status degraded")
        pub.publish_stats({})
        wait_for(lambda: sub.payloads("/stats"), what="stats")
        storage = json.loads(sub.payloads("/stats")[-1])["storage"]
        assert storage["ok"] is False and "disk is full" in storage["error"]
        assert storage["kept_in_memory"] >= len(during) and storage["lost"] == 0
        wait_for(lambda: box.memory_queue == 0, what="kept messages acknowledged")
        full_disk.free(box)
        wait_for(lambda: pub.publish_stats({}) and box.failing is None, what="storage back")
        after = _events(2, offset=20_000)
        pub.publish_events(after)
        sent += after
        wait_for(lambda: sub.payloads("/status")[-1:] == [b"online"], what="status online again")
        wait_for(lambda: len({(e["event_id"], e["seq"]) for e in sub.events()}) == len(sent), what="the rest")
        pub.stop(flush_timeout=10)
    sub.close()
    _assert_complete_and_ordered(sub.events(), sent)


@needs_mosquitto
def test_a_full_disk_with_the_broker_down_keeps_events_in_memory_until_it_is_back(full_disk, tmp_path):
    state = tmp_path / "broker"
    state.mkdir()
    lines = [KEEP_USER, "persistence true", f"persistence_location {state}/"]
    with LocalBroker(config_lines=lines) as broker, FallbackOutbox.open(full_disk.folder / "o.sqlite") as box:
        # a persistent subscriber session: the broker keeps its queue across the restart
        sub = Subscriber(
            broker.host, broker.port, f"i3dmtn/{DEVICE}/events", client_id="sub-disk", clean=False
        )
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        sent = _events(2)
        pub.publish_events(sent)
        wait_for(lambda: pub.backlog == 0, what="the first events acknowledged")
        broker.stop()
        wait_for(lambda: not pub.connected, what="the publisher to notice the outage")
        full_disk.fill(box)
        sent += _publish_until_failing(pub)
        during = _events(4, offset=30_000)
        pub.publish_events(during)
        sent += during
        assert box.memory_queue >= len(during)
        broker.start()
        wait_for(lambda: box.memory_queue == 0, timeout=60, what="the kept messages acknowledged")
        wait_for(
            lambda: len({(e["event_id"], e["seq"]) for e in sub.events()}) == len(sent), what="all events"
        )
        pub.stop(flush_timeout=5)
        full_disk.free(box)
        sub.close()
    _assert_complete_and_ordered(sub.events(), sent)
