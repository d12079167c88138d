"""The training loss: ``a1 * anomaly + a2 * smoothness + a3 * sparsity`` (the seed's total).

Terms, for a batch of ``B`` videos with ``K`` snippet scores each (probabilities in [0, 1]):

- **anomaly** = ``video_loss_weight`` x BCE(video score, label)
  + ``mil_loss_weight`` x BCE(mean of the top-k snippet scores, label), k = ``max(1, round(K * topk_ratio))``
  (the top-k multiple-instance term of RTFM, Tian et al., ICCV 2021, generalising Sultani et al., CVPR 2018,
  who use the single top snippet)
  + ``snippet_loss_weight`` x the mean BCE of every snippet score against the video's label (trimmed clips,
  where the label holds for every snippet: each snippet gets its own gradient, where the top-k term averages
  the scores first)
  + ``frame_loss_weight`` x frame-level BCE, only over videos that have frame annotations (``frame_mask``).
- **smoothness** = sum over k of (s[k+1] - s[k])^2: neighbouring snippets of a video should score alike
  (Sultani's temporal smoothness).
- **sparsity** = sum over k of s[k]: an anomaly fills a small part of a video (Sultani's sparsity).

As in Sultani et al. and RTFM, smoothness and sparsity are applied to the **anomalous videos only** (label
>= 0.5) and averaged over them: on a normal video every snippet is already pushed to 0 by the BCE terms, and a
sparsity push on normal videos would only add a second copy of that. A batch without anomalous videos gives
zero for both. They are sums over snippets (not means), so their scale grows with ``K``; the weights 8e-4 and
8e-3 are RTFM's for ``K = 32``.

BCE is computed in float32 with autocast disabled and probabilities clamped to [1e-6, 1 - 1e-6], so a
saturated score gives a large but finite loss, also under mixed precision; the clamp is straight-through (its
gradient is 1), so a saturated wrong score still gets a finite, non-zero gradient.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.configs import topk_count

__all__ = ["AnomalyLoss", "LossParts", "safe_bce"]

logger = logging.getLogger(__name__)

EPS = 1e-6  # probability clamp before the log: BCE is at most -log(1e-6) ~ 13.8 per element


@dataclass(frozen=True)
class LossParts:
    """The total loss (to back-propagate) and each part (for logging); every field a scalar tensor.

    ``anomaly`` already includes the weighted ``topk_mil``, ``snippet_bce`` and ``frame_bce``; ``total`` is
    ``a1 * anomaly + a2 * smoothness + a3 * sparsity``.
    """

    total: Tensor
    anomaly: Tensor
    video_bce: Tensor
    topk_mil: Tensor
    snippet_bce: Tensor
    frame_bce: Tensor
    smoothness: Tensor
    sparsity: Tensor

    def as_dict(self) -> dict[str, float]:
        """Plain floats, detached: ready for a log line or a history row."""
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


def safe_bce(probs: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities, in float32, clamped, autocast off (safe under AMP)."""
    with torch.autocast(device_type=probs.device.type, enabled=False):
        p = probs.float()
        p = p + (p.clamp(EPS, 1.0 - EPS) - p).detach()  # clamped value, gradient kept where saturated
        return F.binary_cross_entropy(p, targets.float(), reduction=reduction)


def _check_shape(name: str, tensor: Tensor, shape: tuple[int, ...]) -> None:
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")


class AnomalyLoss(nn.Module):
    """The weighted loss of the config keys ``loss_anomaly_weight`` (a1), ``loss_smoothness_weight`` (a2),
    ``loss_sparsity_weight`` (a3), ``topk_ratio``, ``mil_loss_weight``, ``snippet_loss_weight`` and
    ``frame_loss_weight``.

    >>> from training.configs import get_config
    >>> loss = AnomalyLoss(get_config("debug"))
    >>> out = {"snippet_scores": torch.full((2, 8), 0.5), "video_anomaly_score": torch.full((2,), 0.5)}
    >>> round(float(loss(out, torch.tensor([0.0, 1.0])).video_bce), 4)
    0.6931
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.anomaly_weight = float(config["loss_anomaly_weight"])
        self.smoothness_weight = float(config["loss_smoothness_weight"])
        self.sparsity_weight = float(config["loss_sparsity_weight"])
        self.topk_ratio = float(config["topk_ratio"])
        self.video_weight = float(config["video_loss_weight"])
        self.mil_weight = float(config["mil_loss_weight"])
        self.snippet_weight = float(config["snippet_loss_weight"])
        self.frame_weight = float(config["frame_loss_weight"])

    def extra_repr(self) -> str:
        return (
            f"a1={self.anomaly_weight}, a2={self.smoothness_weight}, a3={self.sparsity_weight}, "
            f"topk_ratio={self.topk_ratio}, video={self.video_weight}, mil={self.mil_weight}, "
            f"snippet={self.snippet_weight}, frame={self.frame_weight}"
        )

    def forward(
        self,
        output: Mapping[str, Tensor],
        labels: Tensor,
        frame_labels: Tensor | None = None,
        frame_mask: Tensor | None = None,
    ) -> LossParts:
        """Loss of one batch.

        ``output``: the model's dict with ``snippet_scores (B, K)`` and ``video_anomaly_score (B,)`` and, for
        the frame term, ``frame_anomaly_scores (B, T)``; ``labels (B,)`` in {0, 1}; ``frame_labels (B, T)`` or
        None; ``frame_mask (B,)`` bool, True where a video's frame labels are real annotations (None: all).
        """
        snippets = output["snippet_scores"]  # (B, K)
        video = output["video_anomaly_score"]  # (B,)
        if snippets.ndim != 2:
            raise ValueError(f"snippet_scores must have shape (B, K), got {tuple(snippets.shape)}")
        b, k = snippets.shape
        _check_shape("video_anomaly_score", video, (b,))
        _check_shape("labels", labels, (b,))
        labels = labels.to(device=snippets.device, dtype=torch.float32)

        video_bce = safe_bce(video, labels)
        top = snippets.float().topk(topk_count(k, self.topk_ratio), dim=1).values  # (B, k)
        topk_mil = safe_bce(top.mean(dim=1), labels)
        snippet_bce = safe_bce(snippets, labels[:, None].expand(b, k))
        frame_bce = self._frame_bce(output, frame_labels, frame_mask, b)
        anomaly = (
            self.video_weight * video_bce
            + self.mil_weight * topk_mil
            + self.snippet_weight * snippet_bce
            + self.frame_weight * frame_bce
        )

        anomalous = labels >= 0.5  # (B,)
        abn = snippets.float()[anomalous]  # (A, K)
        if abn.shape[0] > 0:
            smoothness = (abn[:, 1:] - abn[:, :-1]).pow(2).sum(dim=1).mean()
            sparsity = abn.sum(dim=1).mean()
        else:
            smoothness = sparsity = snippets.float().sum() * 0.0  # zero that keeps the graph

        total = (
            self.anomaly_weight * anomaly
            + self.smoothness_weight * smoothness
            + self.sparsity_weight * sparsity
        )
        return LossParts(
            total=total,
            anomaly=anomaly,
            video_bce=video_bce,
            topk_mil=topk_mil,
            snippet_bce=snippet_bce,
            frame_bce=frame_bce,
            smoothness=smoothness,
            sparsity=sparsity,
        )

    def _frame_bce(
        self, output: Mapping[str, Tensor], frame_labels: Tensor | None, frame_mask: Tensor | None, b: int
    ) -> Tensor:
        """Frame-level BCE averaged per video, then over the annotated videos; 0 when there are none."""
        zero = output["video_anomaly_score"].float().sum() * 0.0
        if frame_labels is None:
            return zero
        if "frame_anomaly_scores" not in output:
            raise ValueError("frame_labels were given but the model output has no 'frame_anomaly_scores'")
        scores = output["frame_anomaly_scores"]  # (B, T)
        if scores.ndim != 2 or scores.shape[0] != b:
            raise ValueError(f"frame_anomaly_scores must have shape ({b}, T), got {tuple(scores.shape)}")
        _check_shape("frame_labels", frame_labels, tuple(scores.shape))
        if frame_mask is None:
            mask = torch.ones(b, dtype=torch.bool, device=scores.device)
        else:
            _check_shape("frame_mask", frame_mask, (b,))
            mask = frame_mask.to(device=scores.device, dtype=torch.bool)
        if not bool(mask.any()):
            return zero
        per_frame = safe_bce(scores[mask], frame_labels.to(scores.device)[mask], reduction="none")  # (M, T)
        return per_frame.mean(dim=1).mean()
