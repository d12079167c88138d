"""Mixup (Zhang et al., ICLR 2018) of a training batch: ``lam * a + (1 - lam) * b`` for inputs and labels alike.

A batch's videos are mixed with a shuffled copy of the same batch, one ``lam ~ Beta(alpha, alpha)`` per batch
(as the paper's reference code). The labels become soft (the loss's BCE takes them as they are); frame labels
are mixed the same way, and a mixed video has frame labels only where both of its videos had them. The
config key ``augment_mixup`` is ``alpha``; 0 turns it off.

>>> batch = {"label": torch.tensor([0.0, 1.0]), "frame_labels": torch.zeros(2, 4),
...          "has_frame_labels": torch.tensor([True, False])}
>>> inputs, mixed = mix_batch(torch.stack([torch.zeros(3), torch.ones(3)]), batch, alpha=0.4)
>>> bool(torch.allclose(inputs[:, 0], mixed["label"]))  # each input mixed in the same share as its label
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["mix_batch"]


def mix_batch(
    inputs: torch.Tensor, batch: Mapping[str, Any], *, alpha: float
) -> tuple[torch.Tensor, dict[str, Any]]:
    """``(mixed inputs, the batch with mixed label, frame_labels and has_frame_labels)``; the global torch
    generator draws ``lam`` and the partner of each video (the trainer seeds it and checkpoints its state)."""
    if alpha <= 0 or len(inputs) < 2:
        return inputs, dict(batch)
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    partner = torch.randperm(len(inputs))
    mixed = dict(batch)
    mixed["label"] = lam * batch["label"].float() + (1 - lam) * batch["label"].float()[partner]
    mixed["frame_labels"] = (
        lam * batch["frame_labels"].float() + (1 - lam) * batch["frame_labels"].float()[partner]
    )
    mixed["has_frame_labels"] = batch["has_frame_labels"] & batch["has_frame_labels"][partner]
    return lam * inputs + (1 - lam) * inputs[partner.to(inputs.device)], mixed
