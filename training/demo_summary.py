"""The demo's closing summary: events per held-out video against the ground truth, the export's gates in
words, the feedback loop's before/after, and each stage's wall and CPU seconds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from training.demo_device import camera_name

__all__ = ["summarize", "format_summary", "gate_lines", "stage_table", "print_closing"]

_MARK = {"detected": "ok", "quiet": "ok", "missed": "MISSED", "false_alarm": "FALSE ALARM"}


def summarize(
    videos: list[Path], events: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per video (``anomaly/`` ones are fights): ground truth vs the events the device published; and the
    confusion counts."""
    rows = []
    counts = {"detected": 0, "missed": 0, "quiet": 0, "false_alarm": 0}
    for video in videos:
        camera = camera_name(video)
        mine = [e for e in events if e["camera"] == camera]
        starts = [e for e in mine if e["type"] == "start"]
        fight = video.parent.name == "anomaly"
        if fight:
            verdict = "detected" if starts else "missed"
        else:
            verdict = "false_alarm" if starts else "quiet"
        counts[verdict] += 1
        rows.append(
            {
                "video": f"{video.parent.name}/{video.name}",
                "truth": "fight" if fight else "normal",
                "events": len(starts),
                "messages": len(mine),
                "peak": max((e["peak_score"] for e in mine), default=None),
                "verdict": verdict,
            }
        )
    return rows, counts


def _policy_text(threshold: float | None, policy: dict[str, Any] | None) -> str:
    if policy:
        return (
            f" with the bundle's event policy (on {policy['on_threshold']:.3f}, off {policy['off_threshold']:.3f}, "
            f"min duration {policy['min_duration_s']:g} s, chosen on the validation videos)"
        )
    return f" at threshold {threshold:.3f}" if threshold is not None else ""


def format_summary(
    rows: list[dict[str, Any]],
    counts: dict[str, int],
    threshold: float | None,
    policy: dict[str, Any] | None = None,
) -> str:
    lines = [f"{'video':<28} {'truth':<7} {'events':>6} {'peak':>6}  result"]
    for r in rows:
        peak = f"{r['peak']:.2f}" if r["peak"] is not None else "-"
        lines.append(f"{r['video']:<28} {r['truth']:<7} {r['events']:>6} {peak:>6}  {_MARK[r['verdict']]}")
    right = counts["detected"] + counts["quiet"]
    lines.append(
        f"{right}/{len(rows)} videos right{_policy_text(threshold, policy)}: {counts['detected']} fights alerted, "
        f"{counts['missed']} missed, {counts['quiet']} normal quiet, {counts['false_alarm']} false alarms"
    )
    return "\n".join(lines)


def gate_lines(report: dict[str, Any]) -> list[str]:
    """The export's gates in words: video AUC of both, and the held-out fights each alerts when its scores
    are replayed through the device's event rules (``report.json``'s ``accuracy`` and ``comparison``)."""
    lines = []
    acc = report.get("accuracy") or {}
    if acc:
        auc = ", ".join(
            f"{k} {acc[k]:.4f}"
            for k in ("fp32_video_auc", "int8_video_auc", "auc_drop")
            if isinstance(acc.get(k), (int, float))
        )
        lines.append(f"INT8 vs FP32: {auc}{', ' if auc else ''}accuracy gate {acc.get('gate')}")
    events = (report.get("comparison") or {}).get("events")
    if events:
        alerted, alarms, n = events["fights_alerted"], events["false_alarms"], events["fights"]
        p = events["policy"]
        lines.append(
            f"device events replayed on the same videos (on {p['on_threshold']:.3f}, off {p['off_threshold']:.3f}, "
            f"min duration {p['min_duration_s']:g} s): fights alerted FP32 {alerted['fp32']}/{n}, INT8 "
            f"{alerted['int8']}/{n}; false alarms FP32 {alarms['fp32']}, INT8 {alarms['int8']}; event gate "
            f"{acc.get('event_gate', 'not_checked')}"
        )
    return lines


def stage_table(times: list[dict[str, Any]]) -> str:
    """Each stage's wall and CPU seconds (``{"name", "wall_s", "cpu_s"}``; CPU: this process and the programs
    it ran), with the total."""
    names = [re.split(r"[;:(]", t["name"])[0].strip()[:48] for t in times]  # the banner's first clause
    width = max(map(len, names), default=5)
    lines = [f"{'stage':<{width}} {'wall s':>7} {'CPU s':>7}"]
    lines += [
        f"{n:<{width}} {t['wall_s']:>7.1f} {t['cpu_s']:>7.1f}" for n, t in zip(names, times, strict=True)
    ]
    wall, cpu = sum(t["wall_s"] for t in times), sum(t["cpu_s"] for t in times)
    lines.append(f"{'total':<{width}} {wall:>7.1f} {cpu:>7.1f}")
    return "\n".join(lines)


def print_closing(summary: dict[str, Any], out: Path, report: dict[str, Any], feedback: list[str]) -> None:
    """The closing summary of a demo run: per video, the gates, the feedback loop's lines, outputs, times."""
    eval_dir, bundle = out / "evaluation", out / "bundle"
    print("\n=== summary: events per held-out video vs ground truth ===")
    print(format_summary(summary["rows"], summary["counts"], summary["threshold"], summary["event_policy"]))
    for line in gate_lines(report) + feedback:
        print(line)
    annotated = sorted(eval_dir.rglob("*.mp4"))
    print("\noutputs:")
    print(f"  data set        {out / 'data'}")
    print(f"  checkpoint      {out / 'run' / 'best.pt'}  (curves: {out / 'run' / 'training_curves.png'})")
    print(f"  evaluation      {eval_dir / 'report.json'} + plots in {eval_dir}")
    if annotated:
        print(f"  annotated video {annotated[0]}")
    print(f"  bundle          {bundle}  (report: {bundle / 'report.json'})")
    print(f"  device log      {out / 'edge-runtime.log'}, events {out / 'device-events.jsonl'}")
    print("\n" + stage_table(summary["stage_times"]))
    print(f"\nwall time {summary['wall_seconds']:.0f} s; nothing left running.")
