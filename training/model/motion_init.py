"""Motion-sensitive initialisation of the I3D stem: some filters start as temporal derivatives.

A backbone trained from scratch (no Kinetics weights) has to discover that *change over time* matters before
it can tell a fight from a walk; with random 7x7x7 stem filters that discovery starts at a random epoch, and
until it does the head fits the scenes instead (docs/quality.md). Starting part of the stem as temporal
derivative filters of blurred luminance gives the network motion energy from the first step, the way I3D
itself starts from inflated ImageNet filters rather than noise. The filters stay trainable.

Filter ``i`` of the first ``round(C * fraction)`` output channels is ``profile(t) * gaussian(y, x)``, the same on
every input channel, with ``profile`` cycling through +first, -first, +second and -second differences (both
signs, because a ReLU follows) and the Gaussian's width alternating every four filters; each is scaled to
the norm He initialisation gives its neighbours.
"""

from __future__ import annotations

import math

import torch

__all__ = ["init_motion_filters_"]


def _profiles(kt: int) -> list[torch.Tensor]:
    mid = kt // 2
    first = torch.zeros(kt)
    first[mid - 1], first[mid] = -1.0, 1.0
    second = torch.zeros(kt)
    second[mid - 1], second[mid], second[mid + 1] = 1.0, -2.0, 1.0
    return [first, -first, second, -second]


@torch.no_grad()
def init_motion_filters_(weight: torch.Tensor, fraction: float) -> int:
    """Turn the first ``round(C * fraction)`` filters of a conv weight ``(C, C_in, kt, kh, kw)`` into
    temporal derivative filters, in place; returns how many. Kernels shorter than 3 frames are left alone."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if weight.dim() != 5:
        raise ValueError(f"expected a Conv3d weight (C, C_in, kt, kh, kw), got shape {tuple(weight.shape)}")
    c, c_in, kt, kh, kw = weight.shape
    count = int(round(c * fraction))
    if count == 0 or kt < 3:
        return 0
    profiles = _profiles(kt)
    yy = torch.arange(kh, dtype=torch.float32) - (kh - 1) / 2
    xx = torch.arange(kw, dtype=torch.float32) - (kw - 1) / 2
    # a He filter has fan_in = c_in * kt * kh * kw weights of std sqrt(2 / fan_in): an L2 norm of about sqrt(2)
    he_norm = math.sqrt(2.0)
    for i in range(count):
        sigma = (1.0, 2.0)[(i // len(profiles)) % 2] * max(kh, kw) / 7
        blur = torch.exp(-(yy[:, None] ** 2 + xx[None] ** 2) / (2 * sigma**2))
        kernel = profiles[i % len(profiles)][:, None, None] * (blur / blur.sum())  # (kt, kh, kw)
        kernel = kernel.expand(c_in, kt, kh, kw)
        weight[i] = (kernel * (he_norm / kernel.norm())).to(weight.dtype)
    return count
