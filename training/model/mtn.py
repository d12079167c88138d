"""MTN: the multi-scale temporal network of RTFM, mixing each snippet's feature with its neighbours'.

Tian et al., "Weakly-supervised Video Anomaly Detection with Robust Temporal Feature Magnitude Learning"
(ICCV 2021, https://arxiv.org/abs/2101.10030), section 3.2: a pyramid of dilated temporal convolutions
(dilations 1, 2, 4) sees local context at several scales; a 1x1 convolution feeds a non-local block
(Wang et al., "Non-local Neural Networks", CVPR 2018) that sees the whole window; the branches are
concatenated, fused by a temporal convolution and added to the input.

**Causal.** RTFM's MTN pads its convolutions on both sides and lets the non-local block attend to the whole
window, so in training a snippet's output depends on snippets *after* it. The device scores the **newest**
snippet of its ring (nothing after it), so here every part only looks back: the dilated convolutions and the
fusion convolution pad on the left only (``2 * dilation`` zeros), and the non-local attention is masked to
``j <= i`` and normalised by the number of snippets attended (``i + 1``, RTFM's ``1 / K`` for a full row).
Output ``i`` then depends on inputs ``0..i`` only, whatever follows and whatever ``K`` is: the score of a
snippet in a whole-window forward equals its streaming score whenever the device's ring holds the same
history, so training and deployment compute the same function.

Input and output ``(N, K, D)``: ``K`` snippet features of dimension ``D``. Works for any ``K >= 1`` (the
device runs it over a ring buffer of the last ``K`` features) and exports to ONNX with a dynamic ``K``: no
Python branch depends on a tensor's value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["CausalConv1d", "MultiScaleTemporalNetwork", "NonLocalBlock1d", "causal_mask", "dilations_for"]

NormLayer = Callable[[int], nn.Module]


def dilations_for(num_scales: int) -> tuple[int, ...]:
    """Dilations of the pyramid: ``(1, 2, 4)`` for 3 scales, doubling for more."""
    if not isinstance(num_scales, int) or num_scales < 1:
        raise ValueError(f"mtn_num_scales must be an integer >= 1, got {num_scales!r}")
    return tuple(2**i for i in range(num_scales))


def causal_mask(k: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    """``(K, K)`` float mask, 1 where ``j <= i``: built from ``arange`` so ONNX keeps ``K`` dynamic."""
    pos = torch.arange(k, device=like.device)
    return (pos[:, None] >= pos[None, :]).to(like.dtype)


class NonLocalBlock1d(nn.Module):
    """Causal non-local (self-attention) block over time, dot-product form as in RTFM, with a residual.

    ``y_i = (1/(i+1)) sum_{j<=i} (theta(x_i) . phi(x_j)) g(x_j)``, ``z = W(y) + x`` (RTFM: the sum over all
    ``j`` divided by ``K``; causal here, see the module docstring). ``W`` ends in a norm whose scale
    starts at zero, so the block starts as the identity (Wang et al. 2018, section 4.1).
    Input and output ``(N, C, K)``.
    """

    def __init__(self, channels: int, inter_channels: int | None = None, *, norm_layer: NormLayer) -> None:
        super().__init__()
        inter = inter_channels or max(1, channels // 2)
        self.theta = nn.Conv1d(channels, inter, kernel_size=1)
        self.phi = nn.Conv1d(channels, inter, kernel_size=1)
        self.g = nn.Conv1d(channels, inter, kernel_size=1)
        self.W = nn.Sequential(nn.Conv1d(inter, channels, kernel_size=1), norm_layer(channels))
        norm = self.W[1]
        if isinstance(getattr(norm, "weight", None), torch.Tensor):
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x).transpose(1, 2)  # (N, K, C')
        phi = self.phi(x)  # (N, C', K)
        g = self.g(x).transpose(1, 2)  # (N, K, C')
        mask = causal_mask(x.shape[-1], x)  # (K, K), 1 where j <= i
        affinity = torch.matmul(theta, phi) * (mask / mask.sum(dim=1, keepdim=True))  # (N, K, K)
        y = torch.matmul(affinity, g).transpose(1, 2)  # (N, C', K)
        return self.W(y) + x  # (N, C, K)


class CausalConv1d(nn.Conv1d):
    """Conv1d over time (kernel 3) padded on the left only: output ``i`` sees inputs ``i - 2d .. i``."""

    def __init__(self, in_channels: int, out_channels: int, *, dilation: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, dilation=dilation, bias=bias)
        self.left = 2 * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


def _temporal_conv(
    in_channels: int, out_channels: int, dilation: int, norm_layer: NormLayer
) -> nn.Sequential:
    """Causal Conv1d (kernel 3, same length for any K) -> ReLU -> norm, RTFM's order."""
    return nn.Sequential(
        CausalConv1d(in_channels, out_channels, dilation=dilation),
        nn.ReLU(inplace=True),
        norm_layer(out_channels),
    )


class MultiScaleTemporalNetwork(nn.Module):
    """RTFM's MTN, causal: ``(N, K, D)`` -> ``(N, K, D)``; output ``i`` depends on inputs ``0..i`` only.

    Args:
        feature_dim: ``D``, the backbone's feature size.
        hidden_dim: channels of each branch (512 in RTFM).
        num_scales: dilated branches, dilations ``1, 2, 4, ...`` (3 in RTFM).
        norm_layer: ``f(channels) -> nn.Module`` for ``(N, C, K)`` tensors; default ``nn.BatchNorm1d``.

    Example:
        >>> mtn = MultiScaleTemporalNetwork(64, hidden_dim=32).eval()
        >>> mtn(torch.zeros(2, 5, 64)).shape
        torch.Size([2, 5, 64])
    """

    def __init__(
        self,
        feature_dim: int,
        *,
        hidden_dim: int = 512,
        num_scales: int = 3,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        if hidden_dim < 1:
            raise ValueError(f"mtn_hidden_dim must be >= 1, got {hidden_dim}")
        norm = norm_layer or nn.BatchNorm1d
        self.dilations = dilations_for(num_scales)
        self.feature_dim = feature_dim
        self.hidden_dim = hidden_dim
        self.dilated = nn.ModuleList(_temporal_conv(feature_dim, hidden_dim, d, norm) for d in self.dilations)
        self.reduce = nn.Sequential(
            nn.Conv1d(feature_dim, hidden_dim, kernel_size=1, bias=False), nn.ReLU(inplace=True)
        )
        self.non_local = NonLocalBlock1d(hidden_dim, norm_layer=norm)
        self.fuse = nn.Sequential(
            CausalConv1d(hidden_dim * (num_scales + 1), feature_dim, bias=False),
            nn.ReLU(inplace=True),
            norm(feature_dim),
        )

    @property
    def num_scales(self) -> int:
        return len(self.dilations)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.transpose(1, 2)  # (N, D, K)
        scales = [branch(x) for branch in self.dilated]  # num_scales x (N, H, K)
        context = self.non_local(self.reduce(x))  # (N, H, K)
        fused = self.fuse(torch.cat([*scales, context], dim=1))  # (N, D, K)
        return (fused + x).transpose(1, 2)  # (N, K, D)
