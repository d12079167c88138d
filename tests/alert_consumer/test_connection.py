"""ConsumerConnection on a real broker: it subscribes, hands every message over, subscribes again after the
broker restarts, and an unreachable broker is an error at start."""

from __future__ import annotations

import time

import pytest

from alert_consumer.connection import ConsumerConnection
from edge_runtime.broker import free_port
from edge_runtime.mqtt_settings import MqttSettings
from tests.alert_consumer.helpers import Publisher


def _until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.fixture
def connected(broker):
    received: list[tuple[str, bytes, bool]] = []
    settings = MqttSettings(host="127.0.0.1", port=broker.port)
    connection = ConsumerConnection(
        settings, [("i3dmtn/+/events", 1)], lambda *message: received.append(message), "test-consumer"
    )
    connection.start()
    assert connection.subscribed.wait(10) and connection.failure is None
    yield connection, received
    connection.stop()


def test_every_message_on_the_subscriptions_reaches_the_handler(connected, publisher):
    connection, received = connected
    publisher.publish("i3dmtn/cam-1/status", "online")  # not subscribed
    publisher.publish("i3dmtn/cam-1/events", b"\xff not json")  # the handler judges what it gets
    assert _until(lambda: received)
    assert received == [("i3dmtn/cam-1/events", b"\xff not json", False)]


def test_a_retained_message_comes_marked_retained(broker, publisher):
    publisher.publish("i3dmtn/cam-2/events", "{}", retain=True)
    received: list[tuple[str, bytes, bool]] = []
    settings = MqttSettings(host="127.0.0.1", port=broker.port)
    connection = ConsumerConnection(settings, [("i3dmtn/+/events", 1)], lambda *m: received.append(m))
    connection.start()
    try:
        assert _until(lambda: received)
    finally:
        connection.stop()
    assert received == [("i3dmtn/cam-2/events", b"{}", True)]
    assert connection.client_id.startswith("i3dmtn-alerts-")  # a random id when none is given


def test_it_subscribes_again_after_the_broker_restarts(connected, broker):
    connection, received = connected
    connection.subscribed.clear()
    broker.restart()  # a clean session: the new broker knows no subscription of ours
    assert connection.subscribed.wait(20), "no new subscription after the restart"
    publisher = Publisher(broker.port)
    try:
        publisher.publish("i3dmtn/cam-3/events", "{}")
        assert _until(lambda: received)
    finally:
        publisher.close()
    assert received == [("i3dmtn/cam-3/events", b"{}", False)]
    assert connection.failure is None


def test_an_unreachable_broker_fails_at_start():
    settings = MqttSettings(host="127.0.0.1", port=free_port())
    connection = ConsumerConnection(settings, [("i3dmtn/+/events", 1)], lambda *m: None)
    with pytest.raises(OSError):
        connection.start()
    connection.stop()
    assert not connection.subscribed.is_set()
