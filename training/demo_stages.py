"""The demo's stages: numbered banners, each stage's wall and CPU seconds, and the commands it runs.

Each stage runs an ``i3dmtn`` command in this process (:func:`cli`) or a program of this environment
(:func:`console_script`); its CPU seconds are this process's plus those of the children it waited for
(edge-runtime, ``i3dmtn alerts``), so a stage's figure is what the whole chain cost, not just the Python here.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["StageTime", "Stages", "cli", "console_script", "cpu_seconds"]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class StageTime:
    name: str
    wall_s: float
    cpu_s: float


class Stages:
    """Numbered stage banners (``=== [i/n] name ===``) with each stage's wall and CPU seconds in ``times``."""

    def __init__(self, total: int):
        self.total, self.n = total, 0
        self.times: list[StageTime] = []

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        self.n += 1
        print(f"\n=== [{self.n}/{self.total}] {name} ===", flush=True)
        wall, cpu = time.monotonic(), cpu_seconds()
        result = fn()
        took = StageTime(name, time.monotonic() - wall, cpu_seconds() - cpu)
        self.times.append(took)
        print(f"--- {name}: done in {took.wall_s:.1f} s wall, {took.cpu_s:.1f} s CPU", flush=True)
        return result


def cli(argv: list[str]) -> None:
    """``i3dmtn ARGV`` in this process; a non-zero exit status is a RuntimeError naming the command."""
    from training.cli import main

    code = main(argv)
    if code != 0:
        raise RuntimeError(f"`i3dmtn {' '.join(argv)}` failed with exit status {code}")


def console_script(name: str) -> str:
    """A console script of this environment (the venv's), so the demo never picks up another install."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
