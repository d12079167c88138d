"""``i3dmtn demo --feedback``: gym scenes the demo's model alarms on are reviewed "false alarm" on the watcher,
harvested, fine-tuned on, exported against the old bundle, and played again: the false alarms drop and every
held-out fight is still alerted. The run is shared with the chain tests (tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from edge_runtime.bundle import load_bundle, sha256_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1560)]  # the shared run's limit (conftest), not 600 s


def _feedback(out) -> dict:
    return json.loads((out / "summary.json").read_text())["feedback"]


def test_the_reviewed_false_alarms_drop_and_every_fight_is_still_alerted(demo):
    out, stdout = demo
    loop = _feedback(out)
    gym, fights = loop["gym"], loop["fights"]
    assert gym["before"] > 0, loop  # the gym scenes do fool the demo's model: there is something to review
    assert gym["after"] * 4 <= gym["before"], loop  # most reviewed scenes quiet (measured: 19 -> 0 of 32)
    assert fights["n"] > 0 and fights["before"] == fights["n"] and fights["after"] == fights["n"], loop
    assert (
        f"gym scenes alarming: before {gym['before']}/{gym['n']} -> after {gym['after']}/{gym['n']}" in stdout
    )


def test_every_event_was_reviewed_in_the_watchers_database_and_its_clip_harvested(demo):
    out, _ = demo
    loop = _feedback(out)
    with sqlite3.connect(out / "feedback" / "clips" / "watcher.sqlite") as db:
        verdicts = [v for (v,) in db.execute("SELECT verdict FROM reviews")]
        events = db.execute("SELECT COUNT(*) FROM events WHERE ended_at IS NOT NULL").fetchone()[0]
    assert len(verdicts) == events == sum(loop["reviews"].values())
    assert verdicts.count("false_alarm") == loop["reviews"]["false_alarm"] >= loop["gym"]["before"]
    harvested = json.loads((out / "feedback" / "data" / "train" / "harvest.json").read_text())
    assert len(harvested) == len(verdicts)  # every reviewed clip, its hash checked against its event's
    for entry in harvested:
        assert sha256_file(out / "feedback" / "data" / "train" / entry["file"]) == entry["sha256"]
        assert entry["file"].startswith("normal/" if entry["verdict"] == "false_alarm" else "anomaly/")


def test_the_new_bundle_names_the_checkpoint_it_started_from_and_compares_with_the_old(demo):
    out, _ = demo
    bundle = load_bundle(out / "feedback" / "bundle")  # the runtime reads it, started_from and all
    start = bundle.manifest["model"]["started_from"]
    assert start["sha256"] == sha256_file(out / "run" / "best.pt")
    report = json.loads((out / "feedback" / "bundle" / "report.json").read_text())
    assert report["baseline"]["fights_lost"] == 0, report["baseline"]["changed_videos"]


def test_each_stage_reports_its_wall_and_cpu_seconds(demo):
    out, stdout = demo
    times = json.loads((out / "summary.json").read_text())["stage_times"]
    assert len(times) == 13 and all(t["wall_s"] > 0 and t["cpu_s"] >= 0 for t in times)
    assert "wall s" in stdout and "CPU s" in stdout
