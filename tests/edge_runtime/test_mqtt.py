"""The MQTT publisher against a real broker: order, retained status and last will, outages, restarts, secrets."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.broker import LocalBroker, find_mosquitto
from edge_runtime.events import EventPolicy, EventStateMachine
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import ENV_PASSWORD, ENV_USERNAME, MqttSettings
from edge_runtime.outbox import Outbox
from edge_runtime.schema import SchemaError, validate_event

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "dev-1"
needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="needs Mosquitto (persistence, auth)")
# Mosquitto started as root drops to the "mosquitto" user, which cannot read pytest's private tmp folders;
# "user root" keeps the current user (and has no effect when the tests do not run as root).
KEEP_USER = "user root"


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


class Subscriber:
    """A paho subscriber that records (topic, payload, retain) and reconnects on its own."""

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        *,
        client_id: str = "",
        clean: bool = True,
        auth: tuple[str, str] | None = None,
    ):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"sub-{uuid.uuid4().hex[:8]}",
            clean_session=clean,
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        if auth:
            self.client.username_pw_set(*auth)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscriber got no SUBACK"

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def payloads(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def events(self) -> list[dict]:
        return [validate_event(json.loads(p)) for p in self.payloads("/events")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _settings(broker) -> MqttSettings:
    return MqttSettings(host=broker.host, port=broker.port)


def _scripted_events(n_events: int = 2) -> list[dict]:
    machine = EventStateMachine(
        DEVICE,
        "cam-1",
        EventPolicy(0.6, 0.4, min_duration_s=0.0, cooldown_s=0.0, update_interval_s=1.0),
        {"name": "t"},
    )
    out: list[dict] = []
    t = 0.0
    for _ in range(n_events):
        for score in (0.9, 0.8, 0.95, 0.7, 0.1):
            out += machine.observe(score, t)
            t += 1.0
    return out


def _assert_complete_and_ordered(received: list[dict], sent: list[dict]) -> None:
    first_seen: dict[tuple[str, int], int] = {}
    for i, event in enumerate(received):
        first_seen.setdefault((event["event_id"], event["seq"]), i)
    assert set(first_seen) == {(e["event_id"], e["seq"]) for e in sent}
    for event_id in {e["event_id"] for e in sent}:
        seqs = sorted((pos, seq) for (eid, seq), pos in first_seen.items() if eid == event_id)
        assert [seq for _, seq in seqs] == sorted(seq for _, seq in seqs)


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


def _make_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl command."""
    ca_key, ca, key, csr, crt = (
        folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            crt,
            "-days",
            "2",
        ]
        + ["-extfile", ext],
    ]
    for step in steps:
        subprocess.run(["openssl", *map(str, step)], check=True, capture_output=True)
    return ca, crt, key


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
