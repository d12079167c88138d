"""MQTT load benchmark: the durable outbox + publisher against a bare paho QoS 1 loop, same broker, same run.

Every run publishes the same ``i3dmtn.event/1`` payloads to a local Mosquitto (amqtt if Mosquitto is
missing) and the clock stops only when every message is PUBACKed (for the outbox: when its last row is
deleted). The bare loop keeps nothing on disk. The outbox makes every event durable before sending it (WAL,
``synchronous=FULL``: one fsync per transaction) and deletes it on PUBACK (in batches, without an fsync).
It is measured twice or more: one event per ``publish_event`` call (one fsync per event, so bounded by the
disk's fsync rate, which is measured and printed too), and in batches through ``publish_events`` as the
runtime hands them over (every message of one loop pass, all cameras, in one transaction).

Goal: >= 1000 events/s through the outbox and >= 0.5x the bare loop, while keeping durability.

    python -m benchmarks.mqtt                  # 2000 events, outbox in the system temp folder
    python -m benchmarks.mqtt --events 5000 --dir /var/lib/i3dmtn   # the device's own disk
    python -m benchmarks.mqtt --batches 4,16,64   # other batch sizes
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["main", "make_events", "bare_paho_rate", "outbox_rate", "fsync_rate"]

logger = logging.getLogger(__name__)

DEVICE = "bench-dev"
WINDOW = 100  # in-flight QoS 1 messages, as MqttPublisher's window


def make_events(n: int) -> list[dict[str, Any]]:
    """``n`` valid events of one long fight: a start, updates, an end (realistic payload sizes)."""
    event_id, t0 = str(uuid.uuid4()), time.time()
    out = []
    for seq in range(n):
        kind = "start" if seq == 0 else "end" if seq == n - 1 else "update"
        out.append(
            {
                "schema": "i3dmtn.event/1", "event_id": event_id, "seq": seq, "type": kind,
                "device_id": DEVICE, "camera": "cam-1", "timestamp": t0 + seq * 0.1, "started_at": t0,
                "ended_at": t0 + seq * 0.1 if kind == "end" else None, "score": 0.8, "peak_score": 0.95,
                "threshold": 0.6,
                "model": {"name": "i3d-mtn", "version": "0.1.0", "target": "onnx", "precision": "int8"},
            }
        )  # fmt: skip
    return out


def bare_paho_rate(host: str, port: int, payloads: list[bytes]) -> float:
    """Events/s of a plain paho QoS 1 publish loop (no outbox), until the last PUBACK."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv311
    )
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    acked = 0
    done = threading.Event()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    try:
        start = time.perf_counter()
        for payload in tqdm(payloads, desc="bare paho", unit="ev", disable=None, leave=False):
            client.publish(f"i3dmtn/{DEVICE}/events", payload, qos=1)
        if not done.wait(300):
            raise RuntimeError(f"bare paho: only {acked} of {len(payloads)} PUBACKs in 300 s")
        return len(payloads) / (time.perf_counter() - start)
    finally:
        client.disconnect()
        client.loop_stop()


def outbox_rate(host: str, port: int, events: list[dict[str, Any]], folder: Path, batch: int = 1) -> float:
    """Events/s through ``Outbox`` + ``MqttPublisher`` (fsync'd put, publish, delete on PUBACK): one
    ``publish_event`` per event when ``batch`` is 1, else ``publish_events`` of ``batch`` events at a time.
    A fresh outbox file; the first 200 events go through once unmeasured (as the bare loop's warm-up)."""
    from edge_runtime.mqtt import MqttPublisher
    from edge_runtime.mqtt_settings import MqttSettings
    from edge_runtime.outbox import Outbox

    with Outbox(folder / f"bench-{uuid.uuid4().hex[:8]}.sqlite", max_messages=len(events) + 1) as box:
        publisher = MqttPublisher(MqttSettings(host=host, port=port), DEVICE, box).start()
        if not publisher.wait_connected(30):
            raise RuntimeError(f"outbox publisher could not connect to {host}:{port}")
        try:
            _send_all(publisher, events[: min(200, len(events))], batch, "warm-up")
            return len(events) / _send_all(publisher, events, batch, f"outbox x{batch}")
        finally:
            publisher.stop(flush_timeout=1.0)


def _send_all(publisher: Any, events: list[dict[str, Any]], batch: int, desc: str) -> float:
    """Seconds from the first publish until the outbox is empty (every row deleted on its PUBACK)."""
    start = time.perf_counter()
    with tqdm(total=len(events), desc=desc, unit="ev", disable=None, leave=False) as bar:
        for i in range(0, len(events), batch):
            if batch == 1:
                publisher.publish_event(events[i])
            else:
                publisher.publish_events(events[i : i + batch])
            bar.update(min(batch, len(events) - i))
    deadline = time.monotonic() + 300
    while publisher.backlog and time.monotonic() < deadline:
        time.sleep(0.002)
    if publisher.backlog:
        raise RuntimeError(f"outbox: {publisher.backlog} events still unacknowledged after 300 s")
    return time.perf_counter() - start


def fsync_rate(folder: Path, n: int = 200) -> float:
    """fsyncs/s of a small file in ``folder``: the ceiling of any durable one-write-per-event log there."""
    path = folder / f"fsync-probe-{uuid.uuid4().hex[:8]}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for i in range(n):
            os.pwrite(fd, b"x" * 64, i * 64)
            os.fsync(fd)
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batches: expected sizes like 10,50, got {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"--batches: expected sizes >= 2 like 10,50, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mqtt", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per run (default 2000)")
    parser.add_argument(
        "--batches",
        type=_batch_sizes,
        default=[10, 50],
        help="comma-separated publish_events batch sizes to measure besides one event per call (default 10,50)",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder of the outbox file (default: the system temp folder)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line as well")
    args = parser.parse_args(argv)
    if args.events < 2:
        parser.error(f"--events must be >= 2, got {args.events}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from edge_runtime.broker import LocalBroker

    events = make_events(args.events)
    payloads = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="i3dmtn-bench-") as tmp, LocalBroker() as broker:
        folder = Path(tmp)
        fsyncs = fsync_rate(folder)
        bare_paho_rate(broker.host, broker.port, payloads[: min(200, len(payloads))])  # warm-up
        bare = bare_paho_rate(broker.host, broker.port, payloads)
        durable = {
            size: outbox_rate(broker.host, broker.port, events, folder, size) for size in [1, *args.batches]
        }
        kind = broker.kind
    print(f"MQTT load, {args.events} QoS 1 events to a local {kind}, timed until the last PUBACK")
    print(f"  outbox folder             {folder} (disk: {fsyncs:,.0f} fsync/s)")
    print(f"  bare paho QoS 1           {bare:10,.0f} events/s   1.00 x   (baseline, nothing kept on disk)")
    for size, rate in durable.items():
        label = "1 event per call" if size == 1 else f"batches of {size}"
        how = "one fsync per event" if size == 1 else f"one fsync per {size} events"
        print(
            f"  outbox, {label:<17} {rate:10,.0f} events/s {rate / bare:6.2f} x   ({how}, deleted on PUBACK)"
        )
    print("  goal: >= 1000 events/s and >= 0.50 x bare, durable")
    for size, rate in durable.items():
        met = rate >= 1000 and rate / bare >= 0.5
        print(
            f"    batch {size:<4} {'met' if met else 'NOT met'} ({rate:,.0f} events/s, {rate / bare:.2f} x)"
        )
    if args.json:
        result = {"events": args.events, "broker": kind, "fsync_per_s": fsyncs, "bare_per_s": bare,
                  "outbox_per_s": {str(k): v for k, v in durable.items()},
                  "ratio": {str(k): v / bare for k, v in durable.items()}}  # fmt: skip
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
