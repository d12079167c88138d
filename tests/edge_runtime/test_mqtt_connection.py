"""Reconnect waits (jittered, capped at ~5 s) and the connection log (one ERROR when two clients share an id)."""

from __future__ import annotations

import logging
import time

from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_connection import ConnectionLog, ReconnectBackoff
from edge_runtime.mqtt_settings import RECONNECT_MAX_DELAY_S
from edge_runtime.outbox import Outbox
from tests.edge_runtime.mqtt_helpers import DEVICE, _settings, wait_for


class _Client:
    """Records what ``reconnect_delay_set`` was given (the paho call the backoff makes)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def reconnect_delay_set(self, min_delay: float, max_delay: float) -> None:
        assert max_delay >= min_delay
        self.delays.append(min_delay)


def test_reconnect_waits_double_up_to_about_five_seconds_with_jitter():
    client = _Client()
    backoff = ReconnectBackoff(client)
    for _ in range(40):  # a long outage
        backoff.failed()
    assert client.delays[0] < 1.0 and client.delays[:4] == sorted(client.delays[:4])
    late = client.delays[10:]
    assert max(late) <= RECONNECT_MAX_DELAY_S * 1.2 and min(late) >= RECONNECT_MAX_DELAY_S * 0.8
    assert len({round(d, 6) for d in late}) > 1  # jittered, so devices that lost one broker drift apart
    backoff.connected()
    backoff.failed()
    assert client.delays[-1] < 1.0  # quick again after a connection


def _connections(caplog, lasting: float) -> list[str]:
    """Five connections that each last ``lasting`` s before the broker closes them; the ERROR lines logged."""
    now = [100.0]
    watch = ConnectionLog("mqtt://b:1883", "i3dmtn-dev1", clock=lambda: now[0])
    with caplog.at_level(logging.DEBUG, logger="edge_runtime.mqtt"):
        for _ in range(5):
            watch.connected()
            now[0] += lasting
            watch.disconnected("unspecified error", was_connected=True, stopping=False)
            now[0] += 0.5
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


def test_a_connection_closed_right_after_its_connack_three_times_says_another_client_has_the_id(caplog):
    errors = _connections(caplog, lasting=1.0)
    assert len(errors) == 1 and "'i3dmtn-dev1'" in errors[0] and "--device-id" in errors[0]


def test_a_connection_that_lasted_is_not_a_takeover(caplog):
    assert _connections(caplog, lasting=30.0) == []


def test_two_publishers_with_one_device_id_are_flagged_by_an_error(broker, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="edge_runtime.mqtt")
    with Outbox(tmp_path / "a.sqlite") as a, Outbox(tmp_path / "b.sqlite") as b:
        first = MqttPublisher(_settings(broker), DEVICE, a).start()
        assert first.wait_connected(10)
        second = MqttPublisher(_settings(broker), DEVICE, b).start()  # the same client id: i3dmtn-dev-1
        try:
            wait_for(
                lambda: any(r.levelno == logging.ERROR and "another client" in r.getMessage()
                            for r in caplog.records),
                timeout=30, what="the error about two clients with one id",
            )  # fmt: skip
        finally:
            second.stop(flush_timeout=0)
            first.stop(flush_timeout=0)


def test_after_a_long_outage_a_broker_that_is_back_is_reached_within_six_seconds(broker, tmp_path):
    broker.stop()
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        time.sleep(20.0)  # the waits reach their cap (with a 30 s cap the next attempt came at 31.5 s)
        broker.start()
        back = time.monotonic()
        assert pub.wait_connected(15.0)
        took = time.monotonic() - back
        pub.stop(flush_timeout=0)
    assert took <= RECONNECT_MAX_DELAY_S * 1.2 + 0.5, f"reconnected {took:.1f} s after the broker came back"


def test_stop_makes_one_last_attempt_before_its_flush_time_ends(broker, tmp_path):
    from tests.edge_runtime.mqtt_helpers import _scripted_events

    broker.stop()
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        pub.publish_events(_scripted_events(1))
        time.sleep(16.0)  # paho's waits are at their cap (a 30 s cap: the next attempt at 31.5 s)
        broker.start()
        pub.stop(flush_timeout=3.0)
        assert box.backlog == 0
