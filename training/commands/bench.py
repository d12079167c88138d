"""``i3dmtn bench``: run the speed and accuracy benchmarks, each printing ratios against its own baseline.

The benchmarks live in the repository's ``benchmarks/`` folder, which is not installed (a top-level package
named ``benchmarks`` would collide with other projects'): each runs as ``python -m benchmarks.NAME`` from the
root of the clone this package was installed from (``pip install -e .``), in its own process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

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


def repository_root() -> Path | None:
    """The clone this package runs from, if it has the benchmarks (an editable install); else None."""
    root = Path(__file__).resolve().parents[2]
    has_all = all((root / (module.replace(".", "/") + ".py")).is_file() for module, _ in BENCHMARKS.values())
    return root if has_all and (root / "pyproject.toml").is_file() else None


def run(args: argparse.Namespace) -> int:
    from edge_runtime.usage import UsageError

    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        raise UsageError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    root = repository_root()
    if root is None:
        raise UsageError(
            "the benchmarks are not installed: run `i3dmtn bench` from an editable install of a clone "
            "(pip install -e .), or `python -m benchmarks.NAME` from the clone's root"
        )
    status = 0
    for name in args.names or list(BENCHMARKS):
        print(f"\n##### benchmark: {name} #####", flush=True)
        argv = ["--quick"] if args.quick and name != "mqtt" else []
        done = subprocess.run([sys.executable, "-m", BENCHMARKS[name][0], *argv], cwd=root, check=False)
        status = max(status, done.returncode)
    return status
