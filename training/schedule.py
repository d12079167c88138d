"""The learning-rate schedule: linear warmup, cosine decay, then a floor (as nanoGPT's ``get_lr``).

Counted in optimizer updates (after gradient accumulation), so the schedule does not depend on the batch size.

>>> [round(lr_at(s, total_steps=10, warmup_steps=2, base_lr=1.0, min_lr_ratio=0.1), 3) for s in (0, 1, 2, 6, 10, 99)]
[0.5, 1.0, 1.0, 0.55, 0.1, 0.1]
"""

from __future__ import annotations

import math

__all__ = ["lr_at"]


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
