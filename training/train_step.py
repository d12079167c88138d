"""One training forward pass, as a module (so DistributedDataParallel can wrap it), with a streaming term.

The device scores each new snippet with the head over the last ``K`` features, and before its ring is full over
fewer (:mod:`edge_runtime.scoring`): the score it uses is always the **newest** snippet's, seen without any
future context. A head trained only on full windows scores such prefix windows poorly. So every training
step also runs the head over a few random prefixes ``feats[:, :L]`` (``L < K``) and returns the newest score
of each (``prefix_scores``) with, as its target, that snippet's score in the full window (``prefix_targets``,
detached): a label-free consistency term that works with video-level labels only.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TrainStep", "amp_dtype", "outputs_from_head"]


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of config key ``amp`` on ``device`` (None: full precision)."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16  # amp "on" on CPU


def outputs_from_head(head_out: object, clip_length: int) -> dict[str, torch.Tensor]:
    """The detector's output dict from a :class:`~training.model.HeadOutput`."""
    return {
        "video_anomaly_score": head_out.video_score,  # (B,)
        "frame_anomaly_scores": head_out.snippet_scores.repeat_interleave(clip_length, dim=1),  # (B, K*S)
        "attention_weights": head_out.attention_weights,  # (B, K)
        "snippet_scores": head_out.snippet_scores,  # (B, K)
    }


class TrainStep(nn.Module):
    """``forward(inputs)``: clips ``(B, 3, K*S, H, W)`` (end to end) or features ``(B, K, D)`` (head only) ->
    the detector's output dict plus ``prefix_scores`` / ``prefix_targets`` ``(B, R)`` for ``R`` prefixes."""

    def __init__(self, model: nn.Module, *, head_only: bool, num_prefixes: int = 4) -> None:
        super().__init__()
        self.model = model
        self.head_only = head_only
        self.num_prefixes = num_prefixes

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        model = self.model
        if self.head_only:
            feats = inputs  # (B, K, D)
        else:
            b, k = inputs.shape[0], inputs.shape[2] // model.clip_length
            feats = model.backbone(model.snippets(inputs)).reshape(b, k, -1)  # (B, K, D)
        out = model.head(feats)
        result = outputs_from_head(out, model.clip_length)
        b, k = feats.shape[:2]
        lengths = [int(v) + 1 for v in torch.randperm(k - 1)[: self.num_prefixes]] if k > 1 else []
        lengths = [n for n in lengths if b * n > 1]  # BatchNorm needs two values per channel
        if lengths:
            scores = [model.head(feats[:, :n]).snippet_scores[:, -1] for n in lengths]  # R x (B,)
            result["prefix_scores"] = torch.stack(scores, dim=1)  # (B, R)
            result["prefix_targets"] = out.snippet_scores[:, [n - 1 for n in lengths]].detach()  # (B, R)
        return result
