"""I3D backbone: Inception-v1 inflated to 3D, turning a snippet into one feature vector.

Follows Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset"
(CVPR 2017, https://arxiv.org/abs/1705.07750) on the Inception-v1 of Szegedy et al., "Going deeper with
convolutions" (https://arxiv.org/abs/1409.4842).

Module and parameter names are those of the published Kinetics RGB models as ported to PyTorch by
pytorch-i3d (``rgb_imagenet.pt``): ``Conv3d_1a_7x7.conv3d.weight``, ``Conv3d_1a_7x7.bn.running_mean``,
``Mixed_3b.b0.conv3d.weight``, ``Mixed_3b.b1a`` / ``b1b`` / ``b2a`` / ``b2b`` / ``b3b``, and the classifier
``logits.conv3d.weight`` / ``logits.conv3d.bias`` (the ``Logits`` endpoint lives in the attribute ``logits``,
as there). Such a checkpoint loads with :func:`load_i3d_state_dict`; 2D Inception-v1 weights are inflated
with :func:`inflate_from_2d` (both in :mod:`training.model.i3d_weights`, re-exported here).

Padding is fixed at construction: TensorFlow "SAME" padding for sizes divisible by the stride, so a
224 x 224, 16 / 32 / 64-frame input gives exactly the numbers of the TF / pytorch-i3d model (which pads in
``forward`` for each input size). The only separate Pad op is the stem's (2 before, 3 after); pooling uses
``ceil_mode``. Inputs down to :data:`MIN_INPUT_SIZE` (4 frames of 16 x 16 pixels) keep a non-empty map.

The full-width backbone with its 400-class ``Logits`` layer has :data:`PARAMS_FULL_WIDTH` = 12,697,264
parameters (12.3 M without ``Logits``, the figure usually quoted for I3D: :data:`PARAMS_FULL_WIDTH_FEATURES`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from training.configs import DEFAULTS
from training.model.i3d_weights import LoadReport, inflate_from_2d, load_i3d_file, load_i3d_state_dict
from training.model.motion_init import init_motion_filters_

logger = logging.getLogger(__name__)

__all__ = [
    "ENDPOINTS",
    "PARAMS_FULL_WIDTH",
    "PARAMS_FULL_WIDTH_FEATURES",
    "Unit3D",
    "InceptionModule",
    "MaxPool3dSame",
    "MIN_INPUT_SIZE",
    "InceptionI3d",
    "default_norm_layer",
    "scaled_width",
    # re-exported from training.model.i3d_weights
    "LoadReport",
    "load_i3d_state_dict",
    "load_i3d_file",
    "inflate_from_2d",
]

# The published endpoints, in order. Each one is a submodule of the same name, except ``Logits`` which
# lives in the attribute ``logits`` (pytorch-i3d's checkpoint keys are ``logits.conv3d.*``).
ENDPOINTS: tuple[str, ...] = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
    "Logits",
)

# Parameters of InceptionI3d(width_multiplier=1.0, num_classes=400): with and without the Logits layer
# (1024 * 400 weights + 400 biases). Checked by the tests against the model built here.
PARAMS_FULL_WIDTH = 12_697_264
PARAMS_FULL_WIDTH_FEATURES = PARAMS_FULL_WIDTH - (1024 * 400 + 400)

# Smallest (frames, height, width) whose feature map stays non-empty through every stride.
MIN_INPUT_SIZE = (4, 16, 16)

NormLayer = Callable[[int], nn.Module]
Triple = tuple[int, int, int]


def default_norm_layer(num_features: int) -> nn.Module:
    """BatchNorm3d with the eps of the published I3D (TF's 1e-3) and the config's default ``bn_momentum`` (TF's
    decay 0.99: 0.01)."""
    return nn.BatchNorm3d(num_features, eps=1e-3, momentum=DEFAULTS["bn_momentum"])


def scaled_width(channels: int, width_multiplier: float) -> int:
    """A published width scaled for a thinner model: ``max(1, round(channels * width_multiplier))``."""
    return max(1, round(channels * width_multiplier))


def _triple(value: int | Sequence[int]) -> Triple:
    if isinstance(value, int):
        return (value, value, value)
    t, h, w = value
    return (int(t), int(h), int(w))


def _same_padding(kernel_size: Triple, stride: Triple) -> tuple[int, ...]:
    """TF "SAME" padding for sizes divisible by the stride, as ``F.pad`` wants it (W, H, T; front, back)."""
    pads: list[int] = []
    for k, s in reversed(list(zip(kernel_size, stride, strict=True))):
        total = max(k - s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _symmetric(pads: tuple[int, ...]) -> bool:
    return all(pads[i] == pads[i + 1] for i in range(0, len(pads), 2))


class Unit3D(nn.Module):
    """Conv3d (no bias) + norm + ReLU, with TF "SAME" padding fixed at construction.

    Submodules ``conv3d`` and ``bn`` (the names of the published checkpoints); ``bn`` is an identity when
    ``use_norm`` is false. Input and output ``(batch, channel, time, height, width)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int | Sequence[int] = 1,
        stride: int | Sequence[int] = 1,
        norm_layer: NormLayer | None = None,
        use_norm: bool = True,
        use_bias: bool = False,
        activation: bool = True,
    ) -> None:
        super().__init__()
        kernel, step = _triple(kernel_size), _triple(stride)
        pads = _same_padding(kernel, step)
        # Symmetric padding goes into the conv; asymmetric (stride 2, even kernel - stride) is a fixed pad.
        self.pad = nn.Identity() if _symmetric(pads) else nn.ConstantPad3d(pads, 0.0)
        conv_padding = (pads[4], pads[2], pads[0]) if _symmetric(pads) else 0
        self.conv3d = nn.Conv3d(
            in_channels, out_channels, kernel, stride=step, padding=conv_padding, bias=use_bias
        )
        self.bn = (norm_layer or default_norm_layer)(out_channels) if use_norm else nn.Identity()
        self.act = nn.ReLU(inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(self.pad(x))  # (N, C_out, T', H', W')
        return self.act(self.bn(x))


class MaxPool3dSame(nn.MaxPool3d):
    """Max pooling equal to TF "SAME" pooling for sizes divisible by the stride, with no separate Pad op.

    SAME pads a 3-wide, stride-2 window with 0 in front and 1 behind: that is ``ceil_mode`` without
    padding (the last window is clipped; inputs are post-ReLU, so a zero pad never wins a max). A 3-wide,
    stride-1 window pads 1 on each side: the pool's own padding. Output size ``ceil(size / stride)`` for
    even sizes; never zero for sizes >= 2 (see :data:`MIN_INPUT_SIZE` for the whole network).
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int]) -> None:
        kernel, step = _triple(kernel_size), _triple(stride)
        pads = _same_padding(kernel, step)
        fronts, backs = pads[0::2][::-1], pads[1::2][::-1]  # (T, H, W)
        if not all(f == b or (f == 0 and b <= s - 1) for f, b, s in zip(fronts, backs, step, strict=True)):
            raise ValueError(f"no fixed SAME padding for a {kernel} max pool with stride {step}")
        super().__init__(kernel, step, padding=fronts, ceil_mode=True)


class InceptionModule(nn.Module):
    """Inception block: four branches concatenated on channels.

    ``b0`` 1x1x1; ``b1a`` 1x1x1 -> ``b1b`` 3x3x3; ``b2a`` 1x1x1 -> ``b2b`` 3x3x3; ``b3a`` 3x3x3 max pool ->
    ``b3b`` 1x1x1. Output channels: ``b0_out + b1_out + b2_out + b3_out`` (:attr:`out_channels`).
    """

    def __init__(
        self,
        in_channels: int,
        b0_out: int,
        b1_mid: int,
        b1_out: int,
        b2_mid: int,
        b2_out: int,
        b3_out: int,
        *,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        unit = partial(Unit3D, norm_layer=norm_layer)
        self.b0 = unit(in_channels, b0_out, kernel_size=1)
        self.b1a = unit(in_channels, b1_mid, kernel_size=1)
        self.b1b = unit(b1_mid, b1_out, kernel_size=3)
        self.b2a = unit(in_channels, b2_mid, kernel_size=1)
        self.b2b = unit(b2_mid, b2_out, kernel_size=3)
        self.b3a = MaxPool3dSame(kernel_size=3, stride=1)
        self.b3b = unit(in_channels, b3_out, kernel_size=1)
        self.out_channels = b0_out + b1_out + b2_out + b3_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.b0(x)  # (N, b0_out, T, H, W)
        b1 = self.b1b(self.b1a(x))  # (N, b1_out, T, H, W)
        b2 = self.b2b(self.b2a(x))  # (N, b2_out, T, H, W)
        b3 = self.b3b(self.b3a(x))  # (N, b3_out, T, H, W)
        return torch.cat([b0, b1, b2, b3], dim=1)  # (N, out_channels, T, H, W)


# Published widths of each Inception block: b0_out, b1_mid, b1_out, b2_mid, b2_out, b3_out.
_MIXED_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# Pooling endpoints: (kernel, stride).
_POOLS: dict[str, tuple[Triple, Triple]] = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}


class InceptionI3d(nn.Module):
    """Inception-v1 I3D: snippet ``(batch, 3, time, height, width)`` -> feature ``(batch, feature_dim)``.

    ``forward`` returns the global average of ``Mixed_5c`` (1024 channels at full width). The ``Logits``
    layer (attribute ``logits``) exists so Kinetics checkpoints load; :meth:`classify` uses it.

    Args:
        width_multiplier: scales every published width (``max(1, round(c * w))``); 1/16 gives a tiny model.
        in_channels: input channels (3 for RGB).
        num_classes: outputs of the ``Logits`` layer (400 for Kinetics-400 checkpoints).
        dropout: drop probability before ``Logits`` (only used by :meth:`classify`).
        norm_layer: ``f(num_features) -> nn.Module``; default :func:`default_norm_layer`.
        motion_filters: fraction of the stem's filters initialised as temporal derivatives (see
            :meth:`reset_parameters`); 0 gives plain He initialisation.

    Example:
        >>> model = InceptionI3d(width_multiplier=1 / 16).eval()
        >>> model(torch.zeros(2, 3, 8, 32, 32)).shape
        torch.Size([2, 64])
    """

    def __init__(
        self,
        *,
        width_multiplier: float = 1.0,
        in_channels: int = 3,
        num_classes: int = 400,
        dropout: float = 0.5,
        norm_layer: NormLayer | None = None,
        motion_filters: float = DEFAULTS["motion_filters"],
    ) -> None:
        super().__init__()
        if not 0.0 <= motion_filters <= 1.0:
            raise ValueError(
                f"motion_filters is a fraction of the stem's filters in [0, 1], got {motion_filters}"
            )
        if not width_multiplier > 0:
            raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1), got {dropout}")
        self.width_multiplier = float(width_multiplier)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.motion_filters = float(motion_filters)
        width = partial(scaled_width, width_multiplier=self.width_multiplier)
        unit = partial(Unit3D, norm_layer=norm_layer)

        stem1, stem2, stem3 = width(64), width(64), width(192)
        self.Conv3d_1a_7x7 = unit(in_channels, stem1, kernel_size=7, stride=2)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame(*_POOLS["MaxPool3d_2a_3x3"])
        self.Conv3d_2b_1x1 = unit(stem1, stem2, kernel_size=1)
        self.Conv3d_2c_3x3 = unit(stem2, stem3, kernel_size=3)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame(*_POOLS["MaxPool3d_3a_3x3"])
        channels = stem3
        for name in ENDPOINTS[5:-1]:
            if name in _POOLS:
                block: nn.Module = MaxPool3dSame(*_POOLS[name])
            else:
                block = InceptionModule(
                    channels, *(width(c) for c in _MIXED_WIDTHS[name]), norm_layer=norm_layer
                )
                channels = block.out_channels  # the next block's input is the sum of these branches
            setattr(self, name, block)
        self.feature_dim = channels
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(
            channels, num_classes, kernel_size=1, use_norm=False, use_bias=True, activation=False
        )
        missing = [name for name in ENDPOINTS[:-1] if not hasattr(self, name)]
        if missing:
            raise RuntimeError(f"InceptionI3d is missing endpoints {missing}")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation for the ReLU convs, so features keep their scale through depth even with
        untrained running statistics (PyTorch's default conv init shrinks them ~5x per layer); then the
        first ``motion_filters`` of the stem's filters become temporal derivatives
        (:func:`~training.model.motion_init.init_motion_filters_`: a from-scratch backbone sees motion from
        the first step). Loaded Kinetics weights replace all of it."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.logits.conv3d.weight, std=0.01)
        init_motion_filters_(self.Conv3d_1a_7x7.conv3d.weight, self.motion_filters)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """The ``Mixed_5c`` feature map ``(N, feature_dim, T', H', W')`` of input ``(N, C, T, H, W)``."""
        if not torch.jit.is_tracing() and any(
            n < m for n, m in zip(x.shape[2:], MIN_INPUT_SIZE, strict=False)
        ):
            raise ValueError(
                f"I3D needs snippets of at least {MIN_INPUT_SIZE} (frames, height, width), got {tuple(x.shape[2:])}"
            )
        for name in ENDPOINTS[:-1]:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Snippet features: ``(N, 3, T, H, W)`` -> ``(N, feature_dim)`` by global average pooling."""
        return self.extract(x).mean(dim=(2, 3, 4))  # (N, D)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)`` through the ``Logits`` layer (averaged over space and time)."""
        pooled = self.extract(x).mean(dim=(2, 3, 4), keepdim=True)  # (N, D, 1, 1, 1)
        return self.logits(self.dropout(pooled)).flatten(1)  # (N, num_classes)
