"""Shared pieces of the reliability tests: a recording subscriber, the producer process, delivery checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_runtime.broker import find_mosquitto
from edge_runtime.schema import validate_event

__all__ = [
    "ROOT",
    "DEVICE",
    "needs_mosquitto",
    "persistent_broker_lines",
    "wait_for",
    "RecordingSubscriber",
    "Delivery",
    "check_delivery",
    "read_produced",
    "start_producer",
]

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "soak-dev"
needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="needs Mosquitto (persistence)")


def persistent_broker_lines(state_dir: Path) -> list[str]:
    """Mosquitto options that keep persistent sessions (and their queued QoS 1 messages) across restarts.

    ``user root`` keeps the current user so Mosquitto can write pytest's private tmp folder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return ["user root", "persistence true", f"persistence_location {state_dir}/", "max_queued_messages 0"]


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` s (a hang guard, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class RecordingSubscriber:
    """A QoS 1 subscriber recording every event payload in arrival order; reconnects on its own.

    With ``persistent=True`` it uses a fixed client id and ``clean_session=False``, so a broker with persistence
    keeps its queue while it (or the broker) is away."""

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        *,
        persistent: bool = True,
        auth: tuple[str, str] | None = None,
    ):
        self.topic = topic
        self.payloads: list[bytes] = []
        self.live: list[bytes] = []  # payloads published while subscribed (not a retained copy)
        self.connects = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"reliability-sub-{uuid.uuid4().hex[:8]}",
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
        )
        self.client.reconnect_delay_set(0.1, 1.0)
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the subscriber got no SUBACK"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            self.connects += 1
        client.subscribe(self.topic, qos=1)  # harmless on a resumed session, needed on a new one

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.payloads.append(bytes(message.payload))
            if not message.retain:
                self.live.append(bytes(message.payload))

    def live_count(self, payload: bytes) -> int:
        """How many times ``payload`` was published while subscribed (e.g. the device's ``online``)."""
        with self._lock:
            return self.live.count(payload)

    def events(self) -> list[dict]:
        with self._lock:
            payloads = list(self.payloads)
        return [validate_event(json.loads(p)) for p in payloads]

    def keys(self) -> set[tuple[str, int]]:
        return {(e["event_id"], e["seq"]) for e in self.events()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Delivery:
    """What reached the subscriber, compared with what the producer logged as durably put."""

    produced: int  # messages the producer logged after Outbox.put returned
    received: int  # messages the subscriber got, duplicates included
    delivered: int  # distinct (event_id, seq) received
    duplicates: int  # received - delivered: removed by de-duplication
    lost: list[tuple[str, int]]  # logged but never received
    out_of_order: list[str]  # event ids whose seqs first arrived out of order
    unlogged: int  # delivered but not in the log (put, then killed before the log line)

    def line(self, **extra: object) -> str:
        parts = [
            f"produced={self.produced}",
            f"delivered={self.delivered}",
            f"received={self.received}",
            f"duplicates_removed={self.duplicates}",
            f"lost={len(self.lost)}",
            f"out_of_order_events={len(self.out_of_order)}",
        ]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)


def check_delivery(produced: list[dict], received: list[dict]) -> Delivery:
    """De-duplicate ``received`` by event_id + seq and compare with ``produced`` (the producer's log)."""
    first: dict[tuple[str, int], int] = {}
    for position, event in enumerate(received):
        first.setdefault((event["event_id"], event["seq"]), position)
    logged = {(p["event_id"], p["seq"]) for p in produced}
    out_of_order = []
    for event_id in sorted({eid for eid, _ in first}):
        seqs = [seq for (eid, seq), _ in sorted(first.items(), key=lambda kv: kv[1]) if eid == event_id]
        if seqs != sorted(seqs):
            out_of_order.append(event_id)
    return Delivery(
        produced=len(produced),
        received=len(received),
        delivered=len(first),
        duplicates=len(received) - len(first),
        lost=sorted(logged - set(first)),
        out_of_order=out_of_order,
        unlogged=len(set(first) - logged),
    )


def read_produced(log_path: Path) -> list[dict]:
    """The producer's JSONL log; a last line cut by a kill is ignored (its put may or may not have happened)."""
    if not log_path.exists():
        return []
    out = []
    for line in log_path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def start_producer(
    port: int,
    outbox: Path,
    log: Path,
    *,
    messages: int,
    seed: int,
    interval: float = 0.0,
    flush_timeout: float = 60.0,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> subprocess.Popen:
    """Start ``tests.reliability.producer`` (``messages=0``: forever, until killed; ``-1``: only drain)."""
    cmd = [sys.executable, "-m", "tests.reliability.producer", "--broker", f"127.0.0.1:{port}"]
    cmd += ["--outbox", str(outbox), "--log", str(log), "--device", DEVICE, "--messages", str(messages)]
    cmd += ["--seed", str(seed), "--interval", str(interval), "--flush-timeout", str(flush_timeout)]
    cmd += extra_args or []
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
