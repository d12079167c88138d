"""The MQTT publisher against a real broker: order, retained status and last will, outages, restarts, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from edge_runtime.broker import LocalBroker
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import ENV_PASSWORD, ENV_USERNAME, MqttSettings
from edge_runtime.outbox import Outbox
from edge_runtime.schema import SchemaError
from tests.edge_runtime.mqtt_helpers import (
    DEVICE,
    KEEP_USER,
    ROOT,
    Subscriber,
    _assert_complete_and_ordered,
    _scripted_events,
    _settings,
    needs_mosquitto,
    wait_for,
)


def test_events_arrive_in_order_and_valid(broker, tmp_path):
    sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/#")
    sent = _scripted_events()
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        for event in sent:
            pub.publish_event(event)
        wait_for(lambda: len(sub.events()) >= len(sent), what="all events")
        wait_for(lambda: box.backlog == 0, what="the outbox to drain")
        pub.stop()
    sub.close()
    assert [(e["event_id"], e["seq"]) for e in sub.events()] == [(e["event_id"], e["seq"]) for e in sent]
    assert pub.acked == len(sent)


def test_status_is_retained_online_then_offline_after_stop(broker, tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        assert pub.wait_connected(10)
        late = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/status")
        wait_for(lambda: late.messages, what="retained online")
        assert late.messages[0] == (f"i3dmtn/{DEVICE}/status", b"online", True)
        pub.stop()
        late.close()
    after = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/status")
    wait_for(lambda: after.messages, what="retained offline")
    assert after.messages[-1][1:] == (b"offline", True)
    after.close()


_CHILD = """
import argparse, json, logging, sys, uuid
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import MqttSettings, add_mqtt_arguments
from edge_runtime.outbox import Outbox
p = argparse.ArgumentParser()
add_mqtt_arguments(p)
p.add_argument("--outbox"); p.add_argument("--device"); p.add_argument("--events", type=int, default=0)
p.add_argument("--wait-connected", action="store_true")
a = p.parse_args()
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
pub = MqttPublisher(MqttSettings.from_args(a), a.device, Outbox(a.outbox)).start()
for i in range(a.events):
    event = json.loads(sys.stdin.readline())
    print(pub.publish_event(event), flush=True)
if a.wait_connected and not pub.wait_connected(20):
    sys.exit("not connected")
print("ready", flush=True)
sys.stdin.read()
pub.stop(flush_timeout=5.0)
"""


def _child(
    broker,
    outbox: Path,
    events: list[dict],
    env: dict[str, str] | None = None,
    *,
    wait_connected: bool = False,
) -> subprocess.Popen:
    """A publisher process; returns once its events are in its outbox (and it is connected, if asked)."""
    cmd = [sys.executable, "-c", _CHILD, "--broker", f"{broker.host}:{broker.port}", "--outbox", str(outbox)]
    cmd += ["--device", DEVICE, "--events", str(len(events))] + (
        ["--wait-connected"] if wait_connected else []
    )
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    for event in events:
        proc.stdin.write(json.dumps(event) + "\n")
    proc.stdin.flush()
    for _ in events:
        assert proc.stdout.readline().strip().isdigit()  # publish_event returned: the row is on disk
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_last_will_marks_a_killed_publisher_offline(broker, tmp_path):
    sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/status")
    proc = _child(broker, tmp_path / "o.sqlite", [], wait_connected=True)
    wait_for(lambda: b"online" in sub.payloads("/status"), what="online")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: sub.payloads("/status")[-1] == b"offline", what="the last will")
    sub.close()


@needs_mosquitto
def test_broker_outage_loses_no_event(tmp_path):
    state = tmp_path / "broker"
    state.mkdir()
    lines = [KEEP_USER, "persistence true", f"persistence_location {state}/"]
    with LocalBroker(config_lines=lines) as broker:
        # A persistent subscriber session, so the broker keeps its queue across the restart.
        sub = Subscriber(
            broker.host, broker.port, f"i3dmtn/{DEVICE}/events", client_id="sub-outage", clean=False
        )
        sent = _scripted_events(3)
        with Outbox(tmp_path / "o.sqlite") as box:
            pub = MqttPublisher(_settings(broker), DEVICE, box).start()
            for event in sent[:3]:
                pub.publish_event(event)
            wait_for(lambda: box.backlog == 0, what="the first events acknowledged")
            broker.stop()
            wait_for(lambda: not pub.connected, what="the publisher to notice the outage")
            for event in sent[3:]:
                pub.publish_event(event)
            assert box.backlog == len(sent) - 3
            broker.start()
            wait_for(lambda: box.backlog == 0, what="the outbox to drain after the restart")
            wait_for(
                lambda: len({(e["event_id"], e["seq"]) for e in sub.events()}) == len(sent), what="all events"
            )
            assert pub.reconnects >= 1
            pub.stop()
        sub.close()
    _assert_complete_and_ordered(sub.events(), sent)


def test_killed_publisher_with_pending_events_delivers_them_after_restart(broker, tmp_path):
    outbox = tmp_path / "o.sqlite"
    sent = _scripted_events()
    broker.stop()
    proc = _child(broker, outbox, sent)  # the broker is down: every event stays in the outbox
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    broker.start()
    sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/events")
    with Outbox(outbox) as box:
        assert box.integrity_ok() and box.backlog == len(sent)
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        wait_for(lambda: box.backlog == 0, what="the pending events to be acknowledged")
        wait_for(lambda: len(sub.events()) >= len(sent), what="the pending events to arrive")
        pub.stop()
    sub.close()
    _assert_complete_and_ordered(sub.events(), sent)


def test_an_event_left_open_by_a_killed_runtime_is_ended_at_the_next_start(broker, tmp_path):
    outbox = tmp_path / "o.sqlite"
    sent = _scripted_events(1)[:3]  # start, update, update: killed before the end
    assert [e["type"] for e in sent] == ["start", "update", "update"]
    sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/events")
    proc = _child(broker, outbox, sent, wait_connected=True)
    wait_for(lambda: len(sub.events()) >= len(sent), what="the open event's messages")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    with Outbox(outbox) as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box)
        assert pub.end_open_events() == 1
        pub.start()
        wait_for(lambda: any(e["type"] == "end" for e in sub.events()), what="the end")
        pub.stop()
        assert pub.end_open_events() == 0  # ended once: a later start sends nothing
    sub.close()
    end = [e for e in sub.events() if e["type"] == "end"]
    last = sent[-1]
    assert len(end) == 1
    assert end[0] == {**last, "type": "end", "seq": last["seq"] + 1, "ended_at": last["timestamp"]}


@pytest.mark.parametrize("device_id", ["dev#", "dev/+", "a/b", ""])
def test_device_id_with_wildcards_is_refused(tmp_path, device_id):
    with Outbox(tmp_path / "o.sqlite") as box, pytest.raises(SchemaError, match="device_id"):
        MqttPublisher(MqttSettings(), device_id, box)


def test_event_of_another_device_is_refused(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(MqttSettings(), "other-dev", box)
        with pytest.raises(ValueError, match="device_id"):
            pub.publish_event(_scripted_events(1)[0])
        assert box.backlog == 0


def test_stats_and_snapshot_are_published(broker, tmp_path):
    sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/#")
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        assert pub.wait_connected(10)
        assert pub.publish_stats({"fps": 12.5})
        assert pub.publish_snapshot("cam-1", b"\xff\xd8jpeg")
        wait_for(
            lambda: sub.payloads("/stats") and sub.payloads("/snapshot/cam-1"), what="stats and snapshot"
        )
        pub.stop()
    sub.close()
    stats = json.loads(sub.payloads("/stats")[0])
    assert stats["fps"] == 12.5 and stats["outbox_backlog"] == 0
    assert sub.payloads("/snapshot/cam-1") == [b"\xff\xd8jpeg"]


def _auth_broker(tmp_path: Path, secret: str) -> LocalBroker:
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwd), "edge", secret], check=True, capture_output=True
    )
    passwd.chmod(0o600)
    return LocalBroker(config_lines=[KEEP_USER, "allow_anonymous false", f"password_file {passwd}"])


@needs_mosquitto
def test_password_from_environment_is_used_but_never_in_argv(tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    with _auth_broker(tmp_path, secret) as broker:
        sub = Subscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/events", auth=("edge", secret))
        sent = _scripted_events(1)
        proc = _child(broker, tmp_path / "o.sqlite", sent, env={ENV_USERNAME: "edge", ENV_PASSWORD: secret})
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        wait_for(lambda: len(sub.events()) >= len(sent), what="events through the authenticated connection")
        proc.communicate(timeout=30)  # closes stdin: a clean stop
        sub.close()
    assert b"--broker" in cmdline and secret.encode() not in cmdline
    assert proc.returncode == 0


@needs_mosquitto
def test_debug_logs_never_contain_the_password(tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    with _auth_broker(tmp_path, secret) as broker:
        env = {ENV_USERNAME: "edge", ENV_PASSWORD: secret}
        proc = _child(broker, tmp_path / "o.sqlite", [], env=env, wait_connected=True)
        _, stderr = proc.communicate(timeout=30)
    assert "Sending CONNECT" in stderr  # paho's own DEBUG log was captured
    assert "connected to" in stderr  # the credentials were accepted
    assert secret not in stderr


def test_home_assistant_discovery_configs_are_retained(broker, tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        pub = MqttPublisher(_settings(broker), DEVICE, box).start()
        assert pub.wait_connected(10)
        assert pub.publish_discovery(["cam-1"]) == 2
        pub.stop()
    sub = Subscriber(broker.host, broker.port, "homeassistant/#")
    wait_for(lambda: len(sub.messages) >= 2, what="retained discovery configs")
    sub.close()
    assert all(retain and json.loads(payload)["device"] for _, payload, retain in sub.messages)
