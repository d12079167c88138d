"""Broker outage soak: a real Mosquitto is stopped and started at random moments while events stream.

The producer process publishes a synthetic fight-score stream through the runtime's publishing path
(``EventStateMachine`` -> ``MqttPublisher`` -> SQLite ``Outbox``) and logs every message it durably put. A
persistent-session QoS 1 subscriber records what arrives. Every logged message must arrive at least once,
exactly once after de-duplication by ``event_id`` + ``seq``, and the seqs of each event in order.

Default: ~400 messages, 4 restarts. ``--long`` / ``I3DMTN_LONG=1``: ~3000 messages, 15 restarts.
"""

from __future__ import annotations

import json
import random
import subprocess

from edge_runtime.broker import LocalBroker

from .helpers import (
    DEVICE,
    RecordingSubscriber,
    check_delivery,
    needs_mosquitto,
    persistent_broker_lines,
    read_produced,
    start_producer,
    wait_for,
)

SEED = 20261125


@needs_mosquitto
def test_random_broker_restarts_lose_no_event_and_keep_each_event_in_order(tmp_path, long_run):
    messages, restarts = (3000, 15) if long_run else (400, 4)
    rng = random.Random(SEED)
    log_path = tmp_path / "produced.jsonl"
    with LocalBroker(config_lines=persistent_broker_lines(tmp_path / "mosquitto")) as broker:
        sub = RecordingSubscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/events", persistent=True)
        # The device announces "online" on every connect: each outage starts only once it is back. Persistent,
        # so an "online" sent while this subscriber is still reconnecting is queued, not missed.
        status = RecordingSubscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/status", persistent=True)
        proc = start_producer(
            broker.port, tmp_path / "outbox.sqlite", log_path, messages=messages, seed=SEED, interval=0.004
        )
        done = 0
        try:
            while done < restarts and proc.poll() is None:
                wait_for(
                    lambda n=done: proc.poll() is not None or status.live_count(b"online") > n,
                    60,
                    f"the publisher to connect ({done} restarts so far)",
                )
                up = rng.uniform(0.3, 2.0)
                down = rng.uniform(0.2, 1.5)
                if proc.poll() is not None:
                    break
                _sleep_unless_exited(proc, up)
                broker.stop()
                _sleep_unless_exited(proc, down)
                broker.start()
                done += 1
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            if not broker.running:
                broker.start()
        assert proc.returncode == 0, f"producer failed ({proc.returncode}): {stderr[-2000:]}"
        summary = json.loads(stdout.strip().splitlines()[-1])
        produced = read_produced(log_path)
        wait_for(
            lambda: {(p["event_id"], p["seq"]) for p in produced} <= sub.keys(),
            60,
            "every produced message at the subscriber",
        )
        sub.close()
        status.close()
    report = check_delivery(produced, sub.events())
    print(
        "\n[broker outage soak] "
        + report.line(
            broker_restarts=done,
            publisher_reconnects=summary["reconnects"],
            subscriber_connects=sub.connects,
            events=len({p["event_id"] for p in produced}),
        )
    )
    assert done == restarts, f"only {done} of {restarts} restarts happened before the producer finished"
    assert summary["reconnects"] >= done  # each restart was seen and survived by the publisher
    assert report.produced >= messages
    assert report.lost == []
    assert report.out_of_order == []
    assert report.unlogged == 0  # nothing arrived that was not produced
    assert {p["type"] for p in produced} == {"start", "update", "end"}


def _sleep_unless_exited(proc, seconds: float) -> None:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:  # still running, as expected
        pass
