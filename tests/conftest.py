"""Shared fixtures: a real MQTT broker on a free loopback port."""

from __future__ import annotations

import pytest

from edge_runtime.broker import LocalBroker


@pytest.fixture
def broker():
    """A real broker (Mosquitto if installed, else amqtt) on 127.0.0.1; ``broker.port``, ``broker.restart()``."""
    with LocalBroker() as b:
        yield b
