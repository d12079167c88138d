"""Shared helpers of the MQTT publisher tests: a recording subscriber, settings, scripted events."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.broker import find_mosquitto
from edge_runtime.events import EventPolicy, EventStateMachine
from edge_runtime.mqtt_settings import MqttSettings
from edge_runtime.schema import validate_event

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
