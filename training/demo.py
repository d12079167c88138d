"""The whole chain on generated videos, for a newcomer: ``make demo`` / ``i3dmtn demo``.

synth -> train (debug model) -> evaluate (plots, annotated video) -> export (OpenVINO INT8 bundle with its
FP32-vs-INT8 report) -> a local MQTT broker -> ``edge-runtime`` playing the held-out videos as cameras ->
``i3dmtn alerts`` printing the events as they arrive -> a summary of events per video against the ground truth.
Every process it starts is stopped before it returns.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alert_consumer.connection import ConsumerConnection
from alert_consumer.consumer import AlertConsumer, AlertSink
from edge_runtime.broker import LocalBroker
from edge_runtime.mqtt_settings import MqttSettings

__all__ = ["DemoOptions", "run_demo", "EventCollector", "summarize"]

DEVICE_ID = "demo-edge"


@dataclass
class DemoOptions:
    out: Path = Path("demo_output")
    seed: int = 0
    # train n/a, val n/a, test n/a: 48 training videos memorise their backgrounds, ~200 generalise
    videos: tuple[int, ...] = (96, 96, 16, 16, 3, 3)
    frames: int = 96  # ~4 s at 25 fps: room for a fight interval and calm frames around it
    # square: the debug crop (short side resized to 64, centre 64x64) then keeps the whole frame in view
    size: tuple[int, int] = (128, 128)
    epochs: int | None = 20  # None: the debug config's (3, for tests); ~7 s each on 2 cores
    overrides: list[str] = field(default_factory=list)  # extra `key=value` for the config
    target: str = "openvino"
    runtime_timeout_s: float = 300.0
    progress: bool = True


def _bin(name: str) -> str:
    """A console script of this environment (the venv's), so the demo never picks up another install."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


class EventCollector(AlertSink):
    """The demo's subscriber, through the alert consumer: the events of every device, checked against the
    event schema and de-duplicated by event_id + seq, in ``events``. ``received`` keeps every message as it
    arrived (topic, payload text), valid or not, for the record the demo writes."""

    def __init__(self, host: str, port: int, prefix: str = "i3dmtn"):
        self.events: list[dict[str, Any]] = []
        self.received: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._consumer = AlertConsumer(prefix, [self])
        # the record is of the events (mqtt-events.jsonl): status, stats and snapshots are not asked for
        events_only = [s for s in self._consumer.subscriptions() if s[0].endswith("/events")]
        settings = MqttSettings(host=host, port=port, topic_prefix=prefix)
        self._connection = ConsumerConnection(settings, events_only, self._handle, "i3dmtn-demo-collector")
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


def _camera_name(video: Path) -> str:
    return f"{video.parent.name}-{video.stem}"  # e.g. anomaly-fight_0001: unique and a valid id


def summarize(
    test_videos: list[Path], events: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per video: ground truth vs the events the device published; and the confusion counts."""
    rows = []
    counts = {"detected": 0, "missed": 0, "quiet": 0, "false_alarm": 0}
    for video in test_videos:
        camera = _camera_name(video)
        mine = [e for e in events if e["camera"] == camera]
        starts = [e for e in mine if e["type"] == "start"]
        fight = video.parent.name == "anomaly"
        peak = max((e["peak_score"] for e in mine), default=None)
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
                "peak": peak,
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


def _format_summary(
    rows: list[dict[str, Any]],
    counts: dict[str, int],
    threshold: float | None,
    policy: dict[str, Any] | None = None,
) -> str:
    mark = {"detected": "ok", "quiet": "ok", "missed": "MISSED", "false_alarm": "FALSE ALARM"}
    lines = [f"{'video':<28} {'truth':<7} {'events':>6} {'peak':>6}  result"]
    for r in rows:
        peak = f"{r['peak']:.2f}" if r["peak"] is not None else "-"
        lines.append(f"{r['video']:<28} {r['truth']:<7} {r['events']:>6} {peak:>6}  {mark[r['verdict']]}")
    n = len(rows)
    right = counts["detected"] + counts["quiet"]
    lines.append(
        f"{right}/{n} videos right{_policy_text(threshold, policy)}: {counts['detected']} fights alerted, "
        f"{counts['missed']} missed, "
        f"{counts['quiet']} normal quiet, {counts['false_alarm']} false alarms"
    )
    return "\n".join(lines)


class _Stages:
    """Numbered stage banners with their wall times."""

    def __init__(self, total: int):
        self.total, self.n, self.times = total, 0, {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        self.n += 1
        print(f"\n=== [{self.n}/{self.total}] {name} ===", flush=True)
        t0 = time.monotonic()
        result = fn()
        self.times[name] = time.monotonic() - t0
        print(f"--- {name}: done in {self.times[name]:.1f} s", flush=True)
        return result


def _cli(argv: list[str]) -> None:
    from training.cli import main

    code = main(argv)
    if code != 0:
        raise RuntimeError(f"`i3dmtn {' '.join(argv)}` failed with exit status {code}")


def _stream_device(
    broker: LocalBroker, opts: DemoOptions, bundle: Path, test_videos: list[Path]
) -> list[dict]:
    """Run edge-runtime over the held-out videos (one camera each) with `i3dmtn alerts` printing events."""
    out = opts.out.resolve()
    collector = EventCollector(broker.host, broker.port)
    alerts = subprocess.Popen(
        [_bin("i3dmtn"), "alerts", "--broker", f"{broker.host}:{broker.port}"],
        stdout=sys.stdout,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    cmd = [
        _bin("edge-runtime"),
        "--bundle",
        str(bundle),
        "--device-id",
        DEVICE_ID,
        "--broker",
        f"{broker.host}:{broker.port}",
        "--outbox",
        str(out / "outbox.sqlite"),
        # thresholds and minimum duration: the bundle's event policy, chosen on the validation videos at export
        # (the synthetic fights last 1-2 s, only 3-6 snippets of 0.32 s); the short clips want a short
        # cool-down and frequent updates
        "--cooldown",
        "2",
        "--update-interval",
        "1",
        "--stats-interval",
        "2",
        "--audit-log",
        str(out / "device-events.jsonl"),
    ]
    for video in test_videos:
        cmd += ["--source", f"{_camera_name(video)}={video}"]
    log_path = out / "edge-runtime.log"
    try:
        time.sleep(1.0)  # let `i3dmtn alerts` subscribe before the first event
        print(
            f"edge-runtime: {len(test_videos)} videos as cameras, device {DEVICE_ID}; log in {log_path}",
            flush=True,
        )
        with open(log_path, "w") as log_file:
            runtime = subprocess.run(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, timeout=opts.runtime_timeout_s
            )
        if runtime.returncode != 0:
            tail = log_path.read_text().strip().splitlines()[-3:]
            raise RuntimeError(f"edge-runtime exited with {runtime.returncode}: {' | '.join(tail)}")
        time.sleep(1.0)  # the last PUBACKed messages reach the subscribers
    finally:
        for proc in (alerts,):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        collector.stop()
        # what arrived over MQTT, as it arrived: one {"topic", "payload"} per line
        with open(out / "mqtt-events.jsonl", "w", encoding="utf-8") as record:
            record.writelines(json.dumps(message) + "\n" for message in collector.received)
    return collector.events


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run every stage; returns the summary (also printed)."""
    t_start = time.monotonic()
    out = opts.out
    data, run_dir, bundle = out / "data", out / "run", out / "bundle"
    eval_dir = out / "evaluation"
    stages = _Stages(6)
    out.mkdir(parents=True, exist_ok=True)

    stages.run(
        "synthesize a small fight data set",
        lambda: _cli(
            [
                "synth",
                "--out",
                str(data),
                "--seed",
                str(opts.seed),
                "--frames",
                str(opts.frames),
                "--videos",
                ",".join(map(str, opts.videos)),
                "--size",
                f"{opts.size[0]}x{opts.size[1]}",
                "--force",
            ]
        ),
    )
    train_argv = ["train", "--config", "debug", "--data_path", str(data), "--output", str(run_dir)]
    if opts.epochs:
        train_argv += ["--epochs", str(opts.epochs)]
    for item in opts.overrides:
        train_argv += ["--set", item]
    stages.run("train the debug model (CPU)", lambda: _cli(train_argv))
    checkpoint = run_dir / "best.pt"
    stages.run(
        "evaluate on held-out videos (plots, annotated videos)",
        lambda: _cli(
            [
                "evaluate",
                "--model_path",
                str(checkpoint),
                "--test_path",
                str(data / "test"),
                "--output",
                str(eval_dir),
                "--visualize",
                "--annotate",
                "2",
            ]
        ),
    )
    stages.run(
        f"export an {opts.target} INT8 bundle (FP32-vs-INT8 report)",
        lambda: _cli(
            [
                "export",
                "--checkpoint",
                str(checkpoint),
                "--target",
                opts.target,
                "--calib-data",
                str(data),
                "--out",
                str(bundle),
                "--overwrite",
            ]
        ),
    )
    broker = LocalBroker()
    stages.run("start a local MQTT broker", broker.start)
    if broker.kind == "mosquitto":
        print(f"broker: Mosquitto on {broker.host}:{broker.port}")
    else:
        print(
            f"broker: Mosquitto is not installed; using the embedded Python broker (amqtt) on {broker.host}:{broker.port}"
        )
    test_videos = sorted((data / "test").glob("*/*.mp4"))
    try:
        events = stages.run(
            "edge-runtime on the held-out videos as cameras; i3dmtn alerts prints the events",
            lambda: _stream_device(broker, opts, bundle, test_videos),
        )
    finally:
        broker.stop()
    manifest = json.loads((bundle / "manifest.json").read_text())
    rows, counts = summarize(test_videos, events)
    report = json.loads((bundle / "report.json").read_text()) if (bundle / "report.json").exists() else {}
    summary = {
        "rows": rows,
        "counts": counts,
        "threshold": manifest.get("threshold"),
        "event_policy": manifest.get("event_policy"),
        "stage_seconds": stages.times,
        "wall_seconds": time.monotonic() - t_start,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_closing(summary, out, eval_dir, bundle, report)
    return summary


def _gate_lines(report: dict[str, Any]) -> list[str]:
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


def _print_closing(summary: dict, out: Path, eval_dir: Path, bundle: Path, report: dict) -> None:
    print("\n=== summary: events per held-out video vs ground truth ===")
    print(_format_summary(summary["rows"], summary["counts"], summary["threshold"], summary["event_policy"]))
    for line in _gate_lines(report):
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
    times = ", ".join(f"{k.split(' ')[0]} {v:.0f}s" for k, v in summary["stage_seconds"].items())
    print(f"\nwall time {summary['wall_seconds']:.0f} s ({times}); nothing left running.")
