"""``i3dmtn bench``: run the speed and accuracy benchmarks, each printing ratios against its own baseline."""

from __future__ import annotations

import argparse
import importlib

__all__ = ["add_arguments", "run", "BENCHMARKS"]

# name -> (module, what it measures)
BENCHMARKS = {
    "quality": (
        "benchmarks.quality",
        "debug model on synthetic fights: video/frame AUC, AP, EER, training time; head-only speed-up per epoch "
        "(debug model, and full size on a few videos)",
    ),
    "export": (
        "benchmarks.export",
        "full-width I3D backbone latency and size: eager, ORT, OpenVINO, FP32 vs INT8",
    ),
    "runtime": ("benchmarks.runtime", "edge-runtime fps, cameras per process, CPU share, alert latency"),
    "mqtt": ("benchmarks.mqtt", "durable outbox + publisher throughput against bare paho"),
    "clips": ("benchmarks.clips", "event clips: pre-capture ring and encoder CPU per camera, clip size"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run benchmarks (all by default): " + "; ".join(
        f"{name}: {text}" for name, (_, text) in BENCHMARKS.items()
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"which to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs (quality, export, runtime)")


def run(args: argparse.Namespace) -> int:
    from training.cli import UsageError

    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        raise UsageError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    status = 0
    for name in args.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name][0])
        print(f"\n##### benchmark: {name} #####", flush=True)
        argv = ["--quick"] if args.quick and name != "mqtt" else []
        status = max(status, int(module.main(argv) or 0))
    return status
