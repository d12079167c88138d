"""Validation during training, scored as the device scores: each item's video score is the max over its snippets
of the streaming rule (:func:`edge_runtime.scoring.streaming_scores`: the head's newest score over the last ``K``
features). The MTN is causal, so the rule needs one head call per batch (``causal=True``). (A run with a motion
forest chooses its fused threshold on whole validation videos afterwards: :mod:`training.motion_forest`.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from edge_runtime.scoring import streaming_scores
from training.distributed import all_gather_objects
from training.evaluate import torch_head
from training.metrics import video_metrics
from training.train_step import outputs_from_head

__all__ = ["gathered_video_metrics", "streaming_batch"]


def streaming_batch(
    model: nn.Module, inputs: torch.Tensor, *, head_only: bool, num_snippets: int
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The detector's outputs on a batch (for the loss) and its streaming scores ``(B, K)``. ``inputs`` are
    features ``(B, K, D)`` when ``head_only``, else clips ``(B, C, K*S, H, W)``."""
    if head_only:
        feats = inputs  # (B, K, D)
    else:
        b, k = inputs.shape[0], inputs.shape[2] // model.clip_length
        feats = model.backbone(model.snippets(inputs)).reshape(b, k, -1)  # (B, K, D)
    out = outputs_from_head(model.head(feats), model.clip_length)  # for the loss
    rows = feats.float().cpu().numpy()  # (B, K, D)
    head = torch_head(model.head, feats.device)
    return out, streaming_scores(head, rows, num_snippets, causal=True)  # (B, K)


def gathered_video_metrics(labels: list[int], scores: list[float], loss_sum: float) -> dict[str, Any]:
    """Video metrics over every rank's items, and their mean loss (``loss``); every rank gets the same."""
    gathered = all_gather_objects((labels, scores, loss_sum))
    labels = [v for g in gathered for v in g[0]]
    scores = [v for g in gathered for v in g[1]]
    metrics = video_metrics(np.asarray(labels, np.int64), np.asarray(scores))
    metrics["loss"] = sum(g[2] for g in gathered) / max(len(labels), 1)
    return metrics
