"""Credentials never reach argv, logs or the bundle manifest; TLS connects with the right CA only."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from edge_runtime.broker import LocalBroker, find_mosquitto
from edge_runtime.bundle import BundleError, parse_manifest
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import ENV_PASSWORD, ENV_USERNAME, MqttSettings, make_client
from edge_runtime.outbox import Outbox
from tests.edge_runtime.mqtt_helpers import _make_tls_files
from tests.edge_runtime.test_bundle import _manifest
from tests.reliability.helpers import RecordingSubscriber, read_produced, start_producer, wait_for

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="needs Mosquitto (auth, TLS)")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
KEEP_USER = "user root"  # Mosquitto as root would switch to "mosquitto", which cannot read pytest's tmp


@needs_mosquitto
def test_password_is_used_but_never_in_argv_or_debug_logs(tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwd), "edge", secret], check=True, capture_output=True
    )
    lines = [KEEP_USER, "allow_anonymous false", f"password_file {passwd}"]
    with LocalBroker(config_lines=lines) as broker:
        sub = RecordingSubscriber(
            broker.host, broker.port, "i3dmtn/soak-dev/events", persistent=False, auth=("edge", secret)
        )
        log = tmp_path / "produced.jsonl"
        env = {ENV_USERNAME: "edge", ENV_PASSWORD: secret}
        proc = start_producer(
            broker.port, tmp_path / "o.sqlite", log, messages=20, seed=1, extra_env=env, extra_args=["-v"]
        )
        cmdline_file = Path(f"/proc/{proc.pid}/cmdline")
        wait_for(
            lambda: b"--broker" in cmdline_file.read_bytes(), 20, "the producer's exec"
        )  # empty before exec
        cmdline = cmdline_file.read_bytes()
        stdout, stderr = proc.communicate(timeout=120)
        wait_for(lambda: {(p["event_id"], p["seq"]) for p in read_produced(log)} <= sub.keys(), 30, "events")
        sub.close()
    assert proc.returncode == 0, stderr[-2000:]
    assert b"--broker" in cmdline and secret.encode() not in cmdline
    assert "Sending CONNECT" in stderr and "DEBUG" in stderr  # paho's DEBUG log was on
    assert secret not in stderr and secret not in stdout
    settings = MqttSettings(username="edge", password=secret)
    assert secret not in repr(settings) and secret not in str(settings)


@pytest.mark.parametrize("key", ["mqtt", "password", "credentials"])
def test_a_manifest_cannot_carry_credentials(tmp_path, key):
    manifest = _manifest(tmp_path)
    manifest[key] = {"username": "edge", "password": "secret"}
    with pytest.raises(BundleError, match=key):
        parse_manifest(manifest, tmp_path)


def test_the_command_lines_have_no_password_option():
    from edge_runtime.cli_options import build_parser

    options = {o for a in build_parser()._actions for o in a.option_strings}
    assert not {o for o in options if "pass" in o or "secret" in o}
    assert "--username" in options


def _connect(settings: MqttSettings) -> threading.Event:
    client = make_client(settings, f"tls-{uuid.uuid4().hex[:6]}")
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    try:
        client.connect(settings.host, settings.port, settings.keepalive)
        client.loop_start()
        connected.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return connected


@needs_mosquitto
@needs_openssl
def test_tls_connects_with_the_right_ca_and_is_refused_with_a_wrong_one(tmp_path):
    (tmp_path / "right").mkdir()
    (tmp_path / "wrong").mkdir()
    ca, crt, key = _make_tls_files(tmp_path / "right")
    wrong_ca, _, _ = _make_tls_files(tmp_path / "wrong")
    lines = [KEEP_USER, f"cafile {ca}", f"certfile {crt}", f"keyfile {key}"]
    with LocalBroker(config_lines=lines) as broker:
        good = MqttSettings(host=broker.host, port=broker.port, tls=True, ca_file=ca)
        assert _connect(good).is_set()
        bad = MqttSettings(host=broker.host, port=broker.port, tls=True, ca_file=wrong_ca)
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            _connect(bad)
        # The publisher with the wrong CA never connects, and keeps its events in the outbox.
        with Outbox(tmp_path / "o.sqlite") as box:
            pub = MqttPublisher(bad, "dev1", box).start()
            pub.publish_event(
                {
                    "schema": "i3dmtn.event/1",
                    "event_id": "e1",
                    "seq": 0,
                    "type": "start",
                    "device_id": "dev1",
                    "camera": "cam1",
                    "timestamp": 1.0,
                    "started_at": 1.0,
                    "ended_at": None,
                    "score": 0.9,
                    "peak_score": 0.9,
                    "threshold": 0.5,
                    "model": {},
                }  # fmt: skip
            )
            assert not pub.wait_connected(2.0)
            pub.stop(flush_timeout=0)
            assert box.backlog == 1


@needs_mosquitto
@needs_openssl
def test_plain_client_cannot_talk_to_a_tls_listener(tmp_path):
    ca, crt, key = _make_tls_files(tmp_path)
    lines = [KEEP_USER, f"cafile {ca}", f"certfile {crt}", f"keyfile {key}"]
    with LocalBroker(config_lines=lines) as broker:
        assert not _connect_plain(broker)


def _connect_plain(broker) -> bool:
    settings = MqttSettings(host=broker.host, port=broker.port)
    client = make_client(settings, "plain")
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    try:
        client.connect(settings.host, settings.port, 5)
        client.loop_start()
        connected.wait(2)
    except OSError:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return connected.is_set()


def test_settings_json_dump_never_holds_the_password():
    settings = MqttSettings(username="edge", password="s3cret-value")
    assert "s3cret-value" not in json.dumps({"url": settings.url, "repr": repr(settings)})
