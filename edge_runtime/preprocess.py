"""The one preprocessing: BGR uint8 camera frames -> the model's float input.

Training, calibration, the accuracy report and the device all call this module, so the model sees the same
pixels everywhere. The steps follow the I3D convention (Carreira & Zisserman, 2017):

1. resize so the short side is ``resize_short_side`` (aspect ratio kept),
2. centre crop to ``crop_size`` (height, width),
3. BGR -> RGB (``channel_order``),
4. scale to [-1, 1]: ``(x / 255 - mean) / std`` with mean = std = 0.5 per channel,
5. layout ``(3, S, H, W)`` for a snippet of ``S`` frames.

numpy + OpenCV only (no torch): this file runs on the edge device.

>>> import numpy as np
>>> cfg = PreprocessConfig(crop_size=(4, 4), resize_short_side=4)
>>> preprocess_clip(np.zeros((2, 4, 6, 3), np.uint8), cfg).shape
(3, 2, 4, 4)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = [
    "CONTRACT",
    "PreprocessConfig",
    "PreprocessError",
    "preprocess_frame",
    "preprocess_clip",
    "stack_snippet",
]

# The name and version of the contract this module implements; the bundle manifest records it and the runtime
# refuses a bundle that asks for another one.
CONTRACT = "i3dmtn.preprocess/1"

_CHANNEL_ORDERS = ("RGB", "BGR")
_INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}


class PreprocessError(ValueError):
    """A bad preprocessing parameter or a frame that cannot be preprocessed."""


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of the preprocessing contract; serialised into every bundle manifest."""

    crop_size: tuple[int, int] = (224, 224)  # (H, W) the model sees; 224 is I3D's Kinetics input
    resize_short_side: int = 224  # short side after resize; == crop keeps the whole short side in view
    channel_order: str = "RGB"  # I3D's published weights were trained on RGB
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # with std 0.5 maps [0, 1] to [-1, 1] (I3D)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "area"  # area averaging: no aliasing when camera frames are shrunk
    contract: str = CONTRACT

    def __post_init__(self) -> None:
        crop = tuple(int(v) for v in _as_sequence(self.crop_size, "crop_size", 2))
        object.__setattr__(self, "crop_size", crop)
        object.__setattr__(self, "mean", tuple(float(v) for v in _as_sequence(self.mean, "mean", 3)))
        object.__setattr__(self, "std", tuple(float(v) for v in _as_sequence(self.std, "std", 3)))
        if any(v <= 0 for v in crop):
            raise PreprocessError(f"crop_size must be two positive integers (H, W), got {crop}")
        if int(self.resize_short_side) < min(crop):
            raise PreprocessError(
                f"resize_short_side must be >= the crop's short side {min(crop)}, got {self.resize_short_side}"
            )
        object.__setattr__(self, "resize_short_side", int(self.resize_short_side))
        if self.channel_order not in _CHANNEL_ORDERS:
            raise PreprocessError(
                f"channel_order must be one of {_CHANNEL_ORDERS}, got {self.channel_order!r}"
            )
        if any(s <= 0 for s in self.std):
            raise PreprocessError(f"std must be positive per channel, got {self.std}")
        if self.interpolation not in _INTERPOLATIONS:
            raise PreprocessError(
                f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if self.contract != CONTRACT:
            raise PreprocessError(
                f"preprocessing contract {self.contract!r} is not implemented here (this runtime implements {CONTRACT!r})"
            )

    @classmethod
    def square(cls, size: int, **kwargs: Any) -> PreprocessConfig:
        """A square crop of ``size`` with the short side resized to ``size``."""
        return cls(crop_size=(size, size), resize_short_side=size, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, as written into the bundle manifest."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a contract we do not understand)."""
        if not isinstance(data, Mapping):
            raise PreprocessError(f"preprocessing parameters must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PreprocessError(f"unknown preprocessing parameter(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, PreprocessError):
                raise
            raise PreprocessError(f"bad preprocessing parameters: {exc}") from None

    # Per-channel affine map x_uint8 -> x * scale + offset, equal to (x / 255 - mean) / std, in output order.
    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        return (1.0 / (255.0 * std)).astype(np.float32), (-mean / std).astype(np.float32)


def _as_sequence(value: Any, name: str, length: int) -> Sequence[Any]:
    if isinstance(value, (int, float)) and length == 2 and name == "crop_size":
        return (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise PreprocessError(f"{name} must be a sequence of {length} numbers, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PreprocessError(f"{name} must hold numbers, got {value!r}")
    return value


def _check_frame(frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise PreprocessError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise PreprocessError(f"a frame must be uint8 BGR, got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise PreprocessError(f"a frame must have shape (H, W, 3), got {frame.shape}")
    return frame


def _resize_crop(frame: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Resize the short side, then centre crop: uint8 (H, W, 3), still BGR."""
    h, w = frame.shape[:2]
    crop_h, crop_w = cfg.crop_size
    scale = cfg.resize_short_side / min(h, w)
    # Never below the crop on either side (a very wide crop on a tall frame).
    new_h = max(round(h * scale), crop_h)
    new_w = max(round(w * scale), crop_w)
    if (new_h, new_w) != (h, w):
        frame = cv2.resize(frame, (new_w, new_h), interpolation=_INTERPOLATIONS[cfg.interpolation])
    top = (new_h - crop_h) // 2
    left = (new_w - crop_w) // 2
    return frame[top : top + crop_h, left : left + crop_w]


def preprocess_frame(frame: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """One BGR uint8 frame ``(h, w, 3)`` -> float32 ``(3, H, W)`` in the contract's range and channel order."""
    cropped = _resize_crop(_check_frame(frame), cfg)
    if cfg.channel_order == "RGB":
        cropped = cropped[:, :, ::-1]
    scale, offset = cfg._affine()
    chw = np.ascontiguousarray(cropped.transpose(2, 0, 1), dtype=np.float32)  # (3, H, W)
    chw *= scale[:, None, None]
    chw += offset[:, None, None]
    return chw


def stack_snippet(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Already preprocessed frames ``S x (3, H, W)`` -> one snippet ``(3, S, H, W)``."""
    if len(frames) == 0:
        raise PreprocessError("cannot stack an empty snippet: it needs at least one frame")
    return np.ascontiguousarray(np.stack(frames, axis=1))


def preprocess_clip(frames: Sequence[np.ndarray] | np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """BGR uint8 frames ``(S, h, w, 3)`` (array or list) -> float32 ``(3, S, H, W)``."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise PreprocessError(f"a clip must have shape (S, H, W, 3), got {frames.shape}")
        frames = list(frames)
    return stack_snippet([preprocess_frame(f, cfg) for f in frames])
