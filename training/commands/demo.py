"""``i3dmtn demo``: the whole chain end to end on generated videos (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runtime.usage import UsageError
from training.commands.common import add_set_argument

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the whole chain on generated videos: synth a small fight data set, train the debug model on the "
        "CPU, evaluate it (plots, annotated video), export an INT8 bundle with its FP32-vs-INT8 report, start a "
        "local MQTT broker (Mosquitto if installed, else the embedded amqtt broker), play the held-out videos "
        "through edge-runtime as cameras while `i3dmtn alerts` prints the events, then summarise events per "
        "video against the ground truth. With --feedback, the loop from a person's review to a better model "
        "follows: calm gym scenes the model takes for fights, their clips reviewed 'false alarm' on the watcher, "
        "harvested, a fine-tune (train --init), the new bundle against the old (export --baseline), and the same "
        "scenes again. Every stage prints its wall and CPU seconds. About 4 minutes on 2 CPU cores, 5 on shared ones "
        "(--feedback: about 8 on shared ones); leaves nothing running."
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="output folder (default demo_output)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated videos (default 0)")
    parser.add_argument("--frames", type=int, default=96, help="frames per generated video (default 96)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=12,
        help="training epochs of the debug model (default 12, ~15 s each on one thread)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        metavar="N",
        help="torch threads for training, evaluation and export (default 1: on 2 cores shared with other jobs, "
        "2 threads measured over 6x slower than 1; on idle cores more may be faster; 0: torch's default)",
    )
    parser.add_argument(
        "--feedback",
        action="store_true",
        help="after the demo, show the loop: gym scenes raising false alarms, reviews, harvest, fine-tune, "
        "the new bundle, the same scenes again",
    )
    parser.add_argument(
        "--gym", type=int, metavar="N", help="gym scenes of --feedback (default 32; only with --feedback)"
    )
    parser.add_argument(
        "--target",
        choices=("openvino", "onnx", "jetson"),
        default="openvino",
        help="export target (default openvino; jetson's Q/DQ model runs in ONNX Runtime here)",
    )
    add_set_argument(parser, "override a debug-config key for training (repeatable)")


def run(args: argparse.Namespace) -> int:
    from training.demo import DemoOptions, run_demo

    if args.frames < 32:
        raise UsageError(
            f"--frames must be >= 32 (a fight interval needs calm frames around it), got {args.frames}"
        )
    if args.epochs is not None and args.epochs <= 0:
        raise UsageError(f"--epochs must be positive, got {args.epochs}")
    if args.torch_threads < 0:
        raise UsageError(f"--torch-threads must be >= 0 (0: torch's default), got {args.torch_threads}")
    if args.gym is not None and not args.feedback:
        raise UsageError("--gym sets the scenes of --feedback; add --feedback or leave out --gym")
    if args.gym is not None and args.gym < 1:
        raise UsageError(f"--gym must be >= 1, got {args.gym}")
    summary = run_demo(
        DemoOptions(
            out=args.out,
            seed=args.seed,
            frames=args.frames,
            epochs=args.epochs,
            overrides=args.overrides,
            target=args.target,
            torch_threads=args.torch_threads or None,
            feedback=args.feedback,
            **({"gym": args.gym} if args.gym is not None else {}),
        )
    )
    return 0 if summary["rows"] else 1
