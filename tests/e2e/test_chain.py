"""The whole chain on generated videos, as `make demo` runs it: synth -> train -> evaluate -> export (OpenVINO
INT8) -> broker -> edge-runtime on held-out videos -> events over MQTT -> summary. The run is the one of
``demo --feedback`` (tests/e2e/conftest.py), whose first six stages are the plain demo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1560)]  # the shared run's limit (conftest), not 600 s


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def test_fight_videos_raise_events_and_normal_ones_do_not(demo):
    # Every held-out fight alerts (at least once: the hysteresis may split one fight) and no calm scene does.
    out, _ = demo
    summary = json.loads((out / "summary.json").read_text())
    fights = [r for r in summary["rows"] if r["truth"] == "fight"]
    normals = [r for r in summary["rows"] if r["truth"] == "normal"]
    assert fights and normals
    assert all(r["events"] >= 1 for r in fights), summary["rows"]
    assert all(r["events"] == 0 for r in normals), summary["rows"]


def test_events_arrived_over_mqtt_and_follow_the_schema(demo):
    from edge_runtime.schema import validate_event

    out, stdout = demo
    audit = [json.loads(line) for line in (out / "device-events.jsonl").read_text().splitlines() if line]
    starts = [a for a in audit if a["type"] == "start"]
    ends = [a for a in audit if a["type"] == "end"]
    assert starts and len(starts) == len(ends)  # every event the device opened it also closed
    # the messages the demo's subscriber received on the broker, each checked against the event schema
    received = [json.loads(line) for line in (out / "mqtt-events.jsonl").read_text().splitlines() if line]
    assert received and all(
        m["topic"].startswith("i3dmtn/") and m["topic"].endswith("/events") for m in received
    )
    events = [validate_event(json.loads(m["payload"])) for m in received]
    assert all(e["schema"] == "i3dmtn.event/1" for e in events)
    # every event the device wrote in its audit log arrived over MQTT (at least once: QoS 1)
    assert {(a["event_id"], a["type"]) for a in audit} <= {(e["event_id"], e["type"]) for e in events}
    assert "START" in stdout  # `i3dmtn alerts` printed them as they arrived


def test_bundle_has_its_report_and_passed_the_gate(demo):
    out, _ = demo
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    report = json.loads((out / "bundle" / "report.json").read_text())
    assert manifest["precision"] == "int8" and manifest["target"] == "openvino"
    assert manifest["accuracy"]["gate"] == "passed" and manifest["accuracy"]["event_gate"] == "passed"
    assert report  # FP32-vs-INT8 comparison written beside the models
    assert (out / "evaluation" / "report.json").is_file()


def test_the_event_policy_chosen_on_validation_alerts_every_held_out_fight_and_no_calm_scene(demo):
    # the device above ran with the bundle's policy (the demo sets no threshold or minimum duration);
    # here the export's replay of the same videos through the same rules, with FP32 and with INT8
    out, stdout = demo
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    report = json.loads((out / "bundle" / "report.json").read_text())
    assert manifest["event_policy"]["schema"] == "i3dmtn.event_policy/1"
    assert report["event_policy"]["source"] == "chosen on the validation videos"
    assert report["event_policy"]["validation"]["false_alarms"] == 0
    events = report["comparison"]["events"]
    assert events["policy"]["min_duration_s"] == manifest["event_policy"]["min_duration_s"]
    assert (
        events["fights_alerted"] == {"fp32": events["fights"], "int8": events["fights"]} and events["fights"]
    )
    assert events["false_alarms"] == {"fp32": 0, "int8": 0}
    assert "fp32_video_auc" in stdout and "int8_video_auc" in stdout  # the closing summary gives both AUCs


def test_nothing_is_left_running(demo):
    out, _ = demo
    assert _processes_mentioning(str(out)) == []  # edge-runtime (its outbox lives under out)
    assert _processes_mentioning(str(out.parent / "tmp")) == []  # the demo's broker (its config lives there)
    assert _processes_mentioning("i3dmtn alerts") == []
