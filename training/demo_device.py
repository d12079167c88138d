"""The demo's device passes: ``edge-runtime`` playing videos as cameras into a local broker, while ``i3dmtn
alerts`` prints the events and :class:`EventCollector` (the alert consumer's code) records them.

A pass writes its record into one folder: ``edge-runtime.log``, ``device-events.jsonl`` (the device's audit log),
``mqtt-events.jsonl`` (what arrived over MQTT, as it arrived) and the device's ``outbox.sqlite``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from alert_consumer.connection import ConsumerConnection
from alert_consumer.consumer import AlertConsumer, AlertSink
from edge_runtime.broker import LocalBroker
from edge_runtime.mqtt_settings import MqttSettings
from training.demo_stages import console_script

__all__ = ["DEVICE_ID", "PREFIX", "EventCollector", "camera_name", "stream_device"]

DEVICE_ID = "demo-edge"
PREFIX = "i3dmtn"


class EventCollector(AlertSink):
    """The demo's subscriber, through the alert consumer: the events of every device, checked against the
    event schema and de-duplicated by event_id + seq, in ``events`` (and passed on to ``sinks``, such as a
    watcher's :class:`~alert_consumer.review_store.ReviewStore`). ``received`` keeps every message as it
    arrived (topic, payload text), valid or not, for the record the demo writes. ``client`` publishes (the
    review desk). A context manager: leaving it stops the connection."""

    def __init__(self, host: str, port: int, prefix: str = PREFIX, sinks: tuple[AlertSink, ...] = ()):
        self.events: list[dict[str, Any]] = []
        self.received: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._consumer = AlertConsumer(prefix, [self, *sinks])
        # the record is of the events (mqtt-events.jsonl): status, stats and snapshots are not asked for
        events_only = [s for s in self._consumer.subscriptions() if s[0].endswith("/events")]
        settings = MqttSettings(host=host, port=port, topic_prefix=prefix)
        self._connection = ConsumerConnection(settings, events_only, self._handle, "i3dmtn-demo-collector")
        self.client = self._connection.client
        self._connection.start()
        if not self._connection.subscribed.wait(10):
            self._connection.stop()
            reason = self._connection.failure or "no answer in 10 s"
            raise RuntimeError(f"cannot subscribe to the demo broker at {host}:{port}: {reason}")

    def _handle(self, topic: str, payload: bytes, retained: bool) -> None:
        with self._lock:
            self.received.append({"topic": topic, "payload": payload.decode("utf-8", "replace")})
        self._consumer.handle(topic, payload, retained)

    def on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def stop(self) -> None:
        self._connection.stop()

    def __enter__(self) -> EventCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def camera_name(video: Path) -> str:
    return f"{video.parent.name}-{video.stem}"  # e.g. anomaly-fight_0001: unique and a valid id


def _runtime_argv(
    broker: LocalBroker, bundle: Path, record: Path, videos: list[Path], clips: Path | None
) -> list[str]:
    cmd = [
        console_script("edge-runtime"), "--bundle", str(bundle), "--device-id", DEVICE_ID,
        "--broker", f"{broker.host}:{broker.port}", "--outbox", str(record / "outbox.sqlite"),
        # thresholds and minimum duration: the bundle's event policy, chosen on the validation videos at export
        # (the synthetic fights last 1-2 s, only 3-6 snippets of 0.32 s); the short clips want a short
        # cool-down and frequent updates
        "--cooldown", "2", "--update-interval", "1", "--stats-interval", "2",
        "--audit-log", str(record / "device-events.jsonl"),
    ]  # fmt: skip
    if clips is not None:
        cmd += ["--clips-dir", str(clips)]
    for video in videos:
        cmd += ["--source", f"{camera_name(video)}={video}"]
    return cmd


def stream_device(
    broker: LocalBroker,
    collector: EventCollector,
    bundle: Path,
    videos: list[Path],
    record: Path,
    *,
    clips: Path | None = None,
    timeout_s: float = 300.0,
) -> list[dict[str, Any]]:
    """Run edge-runtime over ``videos`` (one camera each; a clip of each event into ``clips`` when given) with
    `i3dmtn alerts` printing the events; returns the events ``collector`` received during the pass."""
    record = record.resolve()
    record.mkdir(parents=True, exist_ok=True)
    seen = len(collector.received)
    alerts = subprocess.Popen(
        [console_script("i3dmtn"), "alerts", "--broker", f"{broker.host}:{broker.port}"],
        stdout=sys.stdout,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log_path = record / "edge-runtime.log"
    first = len(collector.events)
    try:
        time.sleep(1.0)  # let `i3dmtn alerts` subscribe before the first event
        print(
            f"edge-runtime: {len(videos)} videos as cameras, device {DEVICE_ID}; log in {log_path}",
            flush=True,
        )
        with open(log_path, "w") as log_file:
            runtime = subprocess.run(
                _runtime_argv(broker, bundle, record, videos, clips),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
            )
        if runtime.returncode != 0:
            tail = log_path.read_text().strip().splitlines()[-3:]
            raise RuntimeError(f"edge-runtime exited with {runtime.returncode}: {' | '.join(tail)}")
        time.sleep(1.0)  # the last PUBACKed messages reach the subscribers
    finally:
        if alerts.poll() is None:
            alerts.terminate()
            try:
                alerts.wait(timeout=5)
            except subprocess.TimeoutExpired:
                alerts.kill()
                alerts.wait()
        # what arrived over MQTT during the pass, as it arrived: one {"topic", "payload"} per line
        with open(record / "mqtt-events.jsonl", "w", encoding="utf-8") as out:
            out.writelines(json.dumps(message) + "\n" for message in collector.received[seen:])
    return collector.events[first:]
