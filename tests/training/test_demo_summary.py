"""The demo's closing summary reads the export's report as the export writes it (the whole demo: tests/e2e)."""

from __future__ import annotations

import json

from edge_runtime.events import EventPolicy
from export.report import compare, event_gate, gate
from tests.export.test_event_replay import CALM, FIGHT, _scores
from training.demo_summary import format_summary, gate_lines
from training.metrics import json_safe


def _report(policy: EventPolicy) -> dict:
    comparison = compare(_scores([FIGHT, CALM]), _scores([FIGHT, CALM]), 0.5, snippet_frames=8, policy=policy)
    accuracy = {**gate(comparison, 0.01, False), **event_gate(comparison, False)}
    return json.loads(json.dumps(json_safe({"comparison": comparison, "accuracy": accuracy})))


def test_the_gate_lines_give_both_video_aucs_and_the_fights_each_alerts():
    lines = gate_lines(_report(EventPolicy(on_threshold=0.5, off_threshold=0.3, min_duration_s=0.5)))
    assert lines[0] == (
        "INT8 vs FP32: fp32_video_auc 1.0000, int8_video_auc 1.0000, auc_drop 0.0000, accuracy gate passed"
    )
    assert "(on 0.500, off 0.300, min duration 0.5 s)" in lines[1]
    assert "fights alerted FP32 1/1, INT8 1/1; false alarms FP32 0, INT8 0; event gate passed" in lines[1]


def test_the_verdict_line_names_the_bundles_event_policy():
    rows = [{"video": "anomaly/f.mp4", "truth": "fight", "events": 1, "peak": 0.9, "verdict": "detected"}]
    counts = {"detected": 1, "missed": 0, "quiet": 0, "false_alarm": 0}
    policy = {"on_threshold": 0.45, "off_threshold": 0.36, "min_duration_s": 0.5}
    assert "with the bundle's event policy (on 0.450, off 0.360, min duration 0.5 s" in format_summary(
        rows, counts, 0.49, policy
    )
    assert "at threshold 0.490" in format_summary(rows, counts, 0.49, None)  # a bundle from before it


def test_the_demos_subscriber_keeps_every_message_as_it_arrived_and_only_valid_events(broker):
    import time

    import paho.mqtt.client as mqtt

    from tests.alert_consumer.helpers import make_event
    from training.demo_device import EventCollector

    collector = EventCollector(broker.host, broker.port)
    try:
        good = make_event(device_id="demo")
        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        sender.connect(broker.host, broker.port)
        sender.loop_start()
        for payload in (json.dumps(good), json.dumps(good), '{"schema": "other"}'):  # a duplicate, a bad one
            sender.publish("i3dmtn/demo/events", payload, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while len(collector.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        sender.loop_stop()
        sender.disconnect()
    finally:
        collector.stop()
    assert [m["topic"] for m in collector.received] == ["i3dmtn/demo/events"] * 3
    assert json.loads(collector.received[2]["payload"]) == {"schema": "other"}
    assert [e["event_id"] for e in collector.events] == [good["event_id"]]  # de-duplicated, invalid left out
