"""The learning-rate schedule: linear warmup, cosine decay, then a floor (as nanoGPT's ``get_lr``).

Counted in optimizer updates (after gradient accumulation), so the schedule does not depend on the batch size.

>>> [round(lr_at(s, total_steps=10, warmup_steps=2, base_lr=1.0, min_lr_ratio=0.1), 3) for s in (0, 1, 2, 6, 10, 99)]
[0.5, 1.0, 1.0, 0.55, 0.1, 0.1]

:func:`run_lr` is that schedule for a run's config, held still through its weight-averaging epochs
(``swa_epochs``, :mod:`training.weight_average`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["lr_at", "run_lr", "swa_start_step"]


def lr_at(step: int, *, total_steps: int, warmup_steps: int, base_lr: float, min_lr_ratio: float) -> float:
    """Learning rate of update ``step`` (0-based)."""
    min_lr = base_lr * min_lr_ratio
    # 1. linear warmup: base_lr * (step + 1) / warmup_steps, reaching base_lr at the last warmup step
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    # 2. after the last step: stay at the floor
    if step >= total_steps:
        return min_lr
    # 3. in between: cosine from base_lr (at the end of warmup) down to min_lr (at total_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # 0 -> 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr + coeff * (base_lr - min_lr)


def swa_start_step(config: Mapping[str, Any], updates_per_epoch: int) -> int | None:
    """The update from which the learning rate holds still (the averaging phase), or None without one."""
    epochs = int(config["swa_epochs"])
    return (int(config["epochs"]) - epochs) * updates_per_epoch if epochs else None


def run_lr(step: int, config: Mapping[str, Any], updates_per_epoch: int) -> float:
    """The learning rate of update ``step`` of a run of ``config``; the averaging phase keeps its first."""
    hold = swa_start_step(config, updates_per_epoch)
    return lr_at(
        step if hold is None else min(step, hold),
        total_steps=config["epochs"] * updates_per_epoch,
        warmup_steps=round(config["warmup_epochs"] * updates_per_epoch),
        base_lr=config["learning_rate"],
        min_lr_ratio=config["min_lr_ratio"],
    )
