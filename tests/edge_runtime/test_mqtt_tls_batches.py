"""The MQTT publisher over TLS, batched publishing, and connection failure reasons."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.broker import LocalBroker
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import MqttSettings
from edge_runtime.outbox import Outbox
from edge_runtime.schema import SchemaError
from tests.edge_runtime.mqtt_helpers import (
    DEVICE,
    KEEP_USER,
    Subscriber,
    _make_tls_files,
    _scripted_events,
    _settings,
    needs_mosquitto,
    wait_for,
)


@needs_mosquitto
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_events_arrive_over_tls(tmp_path):
    ca, crt, key = _make_tls_files(tmp_path)
    with LocalBroker(config_lines=[KEEP_USER, f"cafile {ca}", f"certfile {crt}", f"keyfile {key}"]) as broker:
        sub = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="sub-tls")
        sub.tls_set(ca_certs=str(ca))
        received: list[bytes] = []
        subscribed = threading.Event()
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.on_message = lambda c, u, m: received.append(m.payload)
        sub.connect(broker.host, broker.port)
        sub.subscribe(f"i3dmtn/{DEVICE}/events", qos=1)
        sub.loop_start()
        assert subscribed.wait(10)
        sent = _scripted_events(1)
        settings = MqttSettings(host=broker.host, port=broker.port, tls=True, ca_file=ca)
        with Outbox(tmp_path / "o.sqlite") as box:
            pub = MqttPublisher(settings, DEVICE, box).start()
            for event in sent:
                pub.publish_event(event)
            wait_for(lambda: len(received) >= len(sent), what="events over TLS")
            pub.stop()
        sub.disconnect()
        sub.loop_stop()
    assert [json.loads(p)["seq"] for p in received] == [e["seq"] for e in sent]


def test_publish_events_delivers_a_batch_in_order(broker, tmp_path):
    sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/events")
    sent = _scripted_events(3)
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        rows = pub.publish_events(sent[:4]) + pub.publish_events(sent[4:])
        wait_for(lambda: len(sub.events()) >= len(sent), what="all events")
        wait_for(lambda: box.backlog == 0, what="the outbox to drain")
        pub.stop()
    sub.close()
    assert rows == sorted(rows) and len(set(rows)) == len(sent)
    assert [(e["event_id"], e["seq"]) for e in sub.events()] == [(e["event_id"], e["seq"]) for e in sent]
    assert pub.acked == len(sent)


def test_publish_events_with_one_invalid_event_stores_none(tmp_path):
    events = _scripted_events(1)
    bad = {**events[1], "seq": -1}
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(MqttSettings(), DEVICE, box)
        with pytest.raises(SchemaError):
            pub.publish_events([events[0], bad])
        with pytest.raises(ValueError, match="device_id"):
            pub.publish_events([events[0], {**events[1], "device_id": "other-dev"}])
        assert box.backlog == 0


def test_stop_leaves_no_acknowledged_row_in_the_file(broker, tmp_path):
    path = tmp_path / "o.sqlite"
    sent = _scripted_events(2)
    with Outbox(path) as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        pub.publish_events(sent)
        pub.stop(flush_timeout=20.0)
        assert pub.backlog == 0
        with Outbox(path) as other:  # a second connection sees what a restart would
            assert other.backlog == 0


def _connect_failures(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "edge_runtime.mqtt" and "cannot connect" in r.getMessage()]


@needs_mosquitto
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_failure_is_one_warning_naming_the_broker_and_the_reason(tmp_path, caplog):
    (tmp_path / "right").mkdir()
    (tmp_path / "wrong").mkdir()
    ca, crt, key = _make_tls_files(tmp_path / "right")
    wrong_ca, _, _ = _make_tls_files(tmp_path / "wrong")
    secret = f"pw-{uuid.uuid4().hex}"
    lines = [KEEP_USER, f"cafile {ca}", f"certfile {crt}", f"keyfile {key}"]
    with LocalBroker(config_lines=lines) as broker, Outbox(tmp_path / "o.sqlite") as box:
        settings = MqttSettings(
            host=broker.host, port=broker.port, tls=True, ca_file=wrong_ca, username="edge", password=secret
        )
        caplog.set_level(logging.DEBUG, logger="edge_runtime.mqtt")
        pub = MqttPublisher(settings, DEVICE, box).start()
        wait_for(lambda: len(_connect_failures(caplog)) >= 3, what="three failed attempts (retries go on)")
        pub.stop(flush_timeout=0)
    failures = _connect_failures(caplog)
    warnings = [r for r in failures if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and failures[0] is warnings[0]
    message = warnings[0].getMessage()
    assert settings.url in message
    assert "ssl.SSLCertVerificationError" in message and "certificate verify failed" in message
    assert secret not in caplog.text
