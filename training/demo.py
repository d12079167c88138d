"""The whole chain on generated videos, for a newcomer: ``make demo`` / ``i3dmtn demo``.

synth -> train (debug model) -> evaluate (plots, annotated video) -> export (OpenVINO INT8 bundle with its
FP32-vs-INT8 report) -> a local MQTT broker -> ``edge-runtime`` playing the held-out videos as cameras ->
``i3dmtn alerts`` printing the events as they arrive -> a summary of events per video against the ground truth.
With ``feedback`` the loop from a person's review back to a better model follows (:mod:`training.demo_feedback`).
Every stage prints its wall and CPU seconds; every process the demo starts is stopped before it returns.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_runtime.broker import LocalBroker
from training.demo_device import EventCollector, stream_device
from training.demo_feedback import FEEDBACK_STAGES, FeedbackPlan, feedback_lines, run_feedback
from training.demo_stages import Stages, cli
from training.demo_summary import print_closing, summarize

__all__ = ["DemoOptions", "run_demo"]


@dataclass
class DemoOptions:
    out: Path = Path("demo_output")
    seed: int = 0
    # train n/a, val n/a, test n/a: 48 training videos memorise their backgrounds, ~200 generalise
    videos: tuple[int, ...] = (96, 96, 16, 16, 3, 3)
    frames: int = 96  # ~4 s at 25 fps: room for a fight interval and calm frames around it
    # square: the debug crop (short side resized to 64, centre 64x64) then keeps the whole frame in view
    size: tuple[int, int] = (128, 128)
    # validation AUC reaches 1.0 by epoch 4 of 20 and stays (measured); 12 leave room. None: the debug
    # config's (3, for tests)
    epochs: int | None = 12
    overrides: list[str] = field(default_factory=list)  # extra `key=value` for the config
    target: str = "openvino"
    runtime_timeout_s: float = 300.0
    # on 2 cores shared with other jobs, 2 threads trained >6x slower than 1 (threads waiting on each other)
    torch_threads: int | None = 1  # None: torch's default
    feedback: bool = False  # the review -> harvest -> fine-tune loop after the demo (training.demo_feedback)
    gym: int = 32  # gym scenes of the feedback loop
    feedback_epochs: int = 8  # epochs of the feedback loop's fine-tune


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run every stage; returns the summary (also printed, and written to ``OUT/summary.json``)."""
    t_start, out = time.monotonic(), opts.out
    if opts.torch_threads:
        import torch

        torch.set_num_threads(opts.torch_threads)
    stages = Stages(6 + (FEEDBACK_STAGES if opts.feedback else 0))
    out.mkdir(parents=True, exist_ok=True)
    _train_and_export(opts, stages)
    broker = LocalBroker()
    stages.run("start a local MQTT broker", broker.start)
    if broker.kind != "mosquitto":
        print("broker: Mosquitto is not installed; using the embedded Python broker (amqtt)")
    print(f"broker: {broker.kind} on {broker.host}:{broker.port}")
    test_videos = sorted((out / "data" / "test").glob("*/*.mp4"))
    try:
        with EventCollector(broker.host, broker.port) as collector:
            events = stages.run(
                "edge-runtime on the held-out videos as cameras; i3dmtn alerts prints the events",
                lambda: stream_device(broker, collector, out / "bundle", test_videos, out,
                                      timeout_s=opts.runtime_timeout_s),
            )  # fmt: skip
        rows, counts = summarize(test_videos, events)
        loop = run_feedback(_plan(opts), stages, broker, counts["detected"]) if opts.feedback else None
    finally:
        broker.stop()
    manifest = json.loads((out / "bundle" / "manifest.json").read_text())
    report_path = out / "bundle" / "report.json"
    summary = {
        "rows": rows, "counts": counts, "threshold": manifest.get("threshold"),
        "event_policy": manifest.get("event_policy"), "feedback": loop,
        "stage_times": [dataclasses.asdict(t) for t in stages.times], "wall_seconds": time.monotonic() - t_start,
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    print_closing(summary, out, report, feedback_lines(loop) if loop else [])
    return summary


def _plan(opts: DemoOptions) -> FeedbackPlan:
    out = opts.out
    return FeedbackPlan(root=out / "feedback", data=out / "data", checkpoint=out / "run" / "best.pt",
                        bundle=out / "bundle", gym=opts.gym, seed=opts.seed, frames=opts.frames, size=opts.size,
                        epochs=opts.feedback_epochs, target=opts.target, timeout_s=opts.runtime_timeout_s)  # fmt: skip


def _train_and_export(opts: DemoOptions, stages: Stages) -> None:
    """Stages 1-4: synth, train, evaluate, export."""
    data, run, size = opts.out / "data", opts.out / "run", f"{opts.size[0]}x{opts.size[1]}"
    stages.run(
        "synthesize a small fight data set",
        lambda: cli(["synth", "--out", str(data), "--seed", str(opts.seed), "--frames", str(opts.frames),
                     "--videos", ",".join(map(str, opts.videos)), "--size", size, "--force"]),
    )  # fmt: skip
    train = ["train", "--config", "debug", "--data_path", str(data), "--output", str(run)]
    train += ["--epochs", str(opts.epochs)] if opts.epochs else []
    for item in opts.overrides:
        train += ["--set", item]
    stages.run("train the debug model (CPU)", lambda: cli(train))
    stages.run(
        "evaluate on held-out videos (plots, annotated videos)",
        lambda: cli(["evaluate", "--model_path", str(run / "best.pt"), "--test_path", str(data / "test"),
                     "--output", str(opts.out / "evaluation"), "--visualize", "--annotate", "2"]),
    )  # fmt: skip
    stages.run(
        f"export an {opts.target} INT8 bundle (FP32-vs-INT8 report)",
        lambda: cli(["export", "--checkpoint", str(run / "best.pt"), "--target", opts.target, "--calib-data",
                     str(data), "--out", str(opts.out / "bundle"), "--overwrite"]),
    )  # fmt: skip
