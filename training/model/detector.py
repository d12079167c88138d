"""The detector: I3D backbone per snippet, then the MTN + MIL head over a video's snippets.

The model is split where the device splits it (docs/architecture.md, "The model, split for streaming"):

- ``backbone`` (:class:`~training.model.i3d.InceptionI3d`): snippet ``(N, 3, S, H, W)`` -> feature ``(N, D)``;
- ``head`` (:class:`AnomalyHead`): ``K`` features ``(N, K, D)`` -> :class:`HeadOutput` (snippet scores,
  attention weights, video score).

:class:`I3D_MTN_AnomalyDetector` chains the two over a whole clip, which is exactly ``head(backbone(...))``
applied snippet by snippet; the device does the same with a ring buffer of the last ``K`` features.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import nn

from training.configs import DEFAULTS
from training.model.i3d import InceptionI3d
from training.model.mil import GatedAttention, SnippetScorer, attention_pool
from training.model.mtn import MultiScaleTemporalNetwork

logger = logging.getLogger(__name__)

__all__ = ["HeadOutput", "AnomalyHead", "I3D_MTN_AnomalyDetector"]


class HeadOutput(NamedTuple):
    """The head's outputs (also the ONNX head's output names, in this order)."""

    snippet_scores: torch.Tensor  # (N, K) in (0, 1)
    attention_weights: torch.Tensor  # (N, K), each row sums to 1
    video_score: torch.Tensor  # (N,) in [0, 1]: attention-weighted sum of snippet scores


class AnomalyHead(nn.Module):
    """MTN + attention MIL: snippet features ``(N, K, D)`` -> :class:`HeadOutput`. Any ``K >= 1``.

    Args:
        feature_dim: ``D``, the backbone's feature size.
        hidden_dim: MTN branch width; also the scorer's first hidden layer (RTFM: 512).
        num_scales: MTN dilated branches (dilations 1, 2, 4, ...).
        attention_dim: gated-attention hidden size; also the scorer's second hidden layer (RTFM: 128).
        dropout: drop probability on the MTN output and in the scorer.
        scorer_layers: hidden layers of the snippet scorer, 0 to 2: 2 is RTFM's MLP
            ``D -> hidden_dim -> attention_dim -> 1``, 1 drops the second, 0 is a linear scorer (in controlled
            runs a backbone trained from scratch learned faster through a linear scorer: docs/quality.md).
        standardize: standardise each input feature, ``(x - feature_mean) * feature_scale``, with buffers that
            start as the identity and that :meth:`set_feature_statistics` sets from the training set's features
            (a frozen backbone's: on the Kinetics backbone's features this took the real clips' accuracy from
            0.799 to 0.852 on fold seed 0, docs/real-video.md). The buffers travel in the state dict and the exported head.
    """

    def __init__(
        self,
        feature_dim: int,
        *,
        hidden_dim: int = 512,
        num_scales: int = 3,
        attention_dim: int = 128,
        dropout: float = DEFAULTS["dropout"],
        scorer_layers: int = 2,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        if scorer_layers not in (0, 1, 2):
            raise ValueError(f"scorer_layers must be 0, 1 or 2, got {scorer_layers!r}")
        self.feature_dim = feature_dim
        self.scorer_layers = scorer_layers
        self.standardize = bool(standardize)
        if self.standardize:
            self.register_buffer("feature_mean", torch.zeros(feature_dim))
            self.register_buffer("feature_scale", torch.ones(feature_dim))
        self.mtn = MultiScaleTemporalNetwork(feature_dim, hidden_dim=hidden_dim, num_scales=num_scales)
        self.dropout = nn.Dropout(dropout)
        hidden = (hidden_dim, attention_dim)[:scorer_layers]
        self.scorer = SnippetScorer(feature_dim, hidden, dropout=dropout)
        self.attention = GatedAttention(feature_dim, attention_dim)

    @torch.no_grad()
    def set_feature_statistics(self, features: torch.Tensor) -> None:
        """Standardise with the mean and standard deviation of ``features`` ``(n, D)`` (every training snippet's);
        a feature that does not vary there keeps a scale of 1, as scikit-learn's ``StandardScaler`` does."""
        if not self.standardize:
            raise ValueError("this head does not standardise its features (standardize_features is off)")
        if features.dim() != 2 or features.shape[1] != self.feature_dim or len(features) < 2:
            raise ValueError(
                f"feature statistics need (n >= 2, {self.feature_dim}) features, got {tuple(features.shape)}"
            )
        features = features.double()
        std = features.std(dim=0, unbiased=False)
        self.feature_mean.copy_(features.mean(dim=0))
        self.feature_scale.copy_(torch.where(std > 1e-6, 1.0 / std.clamp_min(1e-6), torch.ones_like(std)))

    def forward(self, features: torch.Tensor) -> HeadOutput:
        if self.standardize:
            features = (features - self.feature_mean) * self.feature_scale  # (N, K, D)
        mixed = self.dropout(self.mtn(features))  # (N, K, D)
        scores = self.scorer(mixed)  # (N, K)
        weights = self.attention(mixed)  # (N, K)
        return HeadOutput(scores, weights, attention_pool(scores, weights))  # (N, K), (N, K), (N,)


class I3D_MTN_AnomalyDetector(nn.Module):
    """I3D + MTN + attention-MIL anomaly detector over clips ``(batch, 3, time, height, width)``.

    ``time`` must be a multiple of ``clip_length`` (the snippet length ``S``); the clip is cut into
    ``K = time / S`` consecutive snippets.

    Args:
        clip_length: ``S``, frames per snippet.
        i3d_backbone: a pre-built backbone (e.g. with loaded Kinetics weights); else one is built.
        width_multiplier: width of the backbone built here (default 1.0); when ``i3d_backbone`` is given it
            may be left out, or must equal the backbone's.
        mtn_hidden_dim, mtn_num_scales, mil_attention_dim, dropout, scorer_layers: see :class:`AnomalyHead`;
            standardize_features is its ``standardize``.
        frame_stride: the stride with which the frames given to ``forward`` were sampled from the video;
            the model does not resample, it records the stride for the data pipeline and the bundle.

    Example:
        >>> model = I3D_MTN_AnomalyDetector(8, width_multiplier=1 / 16, mtn_hidden_dim=16).eval()
        >>> out = model(torch.zeros(1, 3, 16, 32, 32))
        >>> out["frame_anomaly_scores"].shape, out["attention_weights"].shape
        (torch.Size([1, 16]), torch.Size([1, 2]))
    """

    def __init__(
        self,
        clip_length: int = 16,
        i3d_backbone: nn.Module | None = None,
        *,
        width_multiplier: float | None = None,
        mtn_hidden_dim: int = 512,
        mtn_num_scales: int = 3,
        mil_attention_dim: int = 128,
        dropout: float = DEFAULTS["dropout"],
        frame_stride: int = 1,
        scorer_layers: int = 2,
        standardize_features: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(clip_length, int) or clip_length < 1:
            raise ValueError(f"clip_length must be an integer >= 1, got {clip_length!r}")
        if not isinstance(frame_stride, int) or frame_stride < 1:
            raise ValueError(f"frame_stride must be an integer >= 1, got {frame_stride!r}")
        if i3d_backbone is None:
            i3d_backbone = InceptionI3d(
                width_multiplier=1.0 if width_multiplier is None else width_multiplier
            )
        elif not isinstance(getattr(i3d_backbone, "feature_dim", None), int):
            raise TypeError(
                f"i3d_backbone must have an integer feature_dim (an InceptionI3d), got {i3d_backbone}"
            )
        backbone_width = getattr(i3d_backbone, "width_multiplier", width_multiplier)
        if width_multiplier is not None and backbone_width != width_multiplier:
            raise ValueError(
                f"width_multiplier={width_multiplier} but the given i3d_backbone has width {backbone_width}"
            )
        self.clip_length = clip_length
        self.frame_stride = frame_stride
        self.width_multiplier = float(backbone_width if backbone_width is not None else 1.0)
        self.backbone = i3d_backbone
        self.head = AnomalyHead(
            i3d_backbone.feature_dim,
            hidden_dim=mtn_hidden_dim,
            num_scales=mtn_num_scales,
            attention_dim=mil_attention_dim,
            dropout=dropout,
            scorer_layers=scorer_layers,
            standardize=standardize_features,
        )

    @property
    def feature_dim(self) -> int:
        return self.head.feature_dim

    def snippets(self, clips: torch.Tensor) -> torch.Tensor:
        """Cut clips ``(B, 3, T, H, W)`` into snippets ``(B * K, 3, S, H, W)``, video-major."""
        if clips.dim() != 5:
            raise ValueError(f"expected clips of shape (B, 3, T, H, W), got {tuple(clips.shape)}")
        b, c, t, h, w = clips.shape
        s = self.clip_length
        if t == 0 or t % s:
            raise ValueError(f"cannot score {t} frames: the snippet length is {s}")
        k = t // s
        x = clips.reshape(b, c, k, s, h, w)  # (B, 3, K, S, H, W)
        return x.transpose(1, 2).reshape(b * k, c, s, h, w)  # (B*K, 3, S, H, W)

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """Score clips ``(B, 3, T, H, W)``; returns a dict of named tensors.

        ``video_anomaly_score`` (B,), ``frame_anomaly_scores`` (B, T) (each snippet's score over its S frames),
        ``attention_weights`` (B, K), ``snippet_scores`` (B, K).
        """
        snippets = self.snippets(clips)  # (B*K, 3, S, H, W)
        b, k = clips.shape[0], clips.shape[2] // self.clip_length
        features = self.backbone(snippets).reshape(b, k, -1)  # (B, K, D)
        out = self.head(features)
        frame_scores = out.snippet_scores.repeat_interleave(self.clip_length, dim=1)  # (B, T)
        return {
            "video_anomaly_score": out.video_score,  # (B,)
            "frame_anomaly_scores": frame_scores,  # (B, T)
            "attention_weights": out.attention_weights,  # (B, K)
            "snippet_scores": out.snippet_scores,  # (B, K)
        }
