"""Fixtures for the alerts tests: a plain paho publisher and ``i3dmtn alerts`` subprocesses that are always ended."""

from __future__ import annotations

import json
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from tests.edge_runtime.alerts.helpers import AlertsProcess


class Publisher:
    """A plain paho client on the test broker; every publish waits for the broker's PUBACK."""

    def __init__(self, port: int):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: Any, *, qos: int = 1, retain: bool = False) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def event(self, event: dict[str, Any], prefix: str = "i3dmtn") -> None:
        self.publish(f"{prefix}/{event['device_id']}/events", event)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker):
    pub = Publisher(broker.port)
    yield pub
    pub.close()


@pytest.fixture
def alerts(broker):
    """``alerts(*args)`` starts ``i3dmtn alerts --broker <test broker> *args``; all are killed at teardown."""
    started: list[AlertsProcess] = []

    def start(*args: str, wait: bool = True) -> AlertsProcess:
        proc = AlertsProcess("--broker", f"127.0.0.1:{broker.port}", *args)
        started.append(proc)
        return proc.wait_subscribed() if wait else proc

    yield start
    for proc in started:
        proc.kill()
