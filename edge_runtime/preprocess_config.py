"""The preprocessing contract: :class:`PreprocessConfig`, its parameters and their checks, and the contract's
versions (:mod:`edge_runtime.preprocess` implements it; the bundle manifest records it).

numpy + OpenCV only (no torch): this file runs on the edge device.
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
    "CONTRACTS",
    "CONTRACT_V1",
    "CONTRACT_V2",
    "CONTRACT_V3",
    "FLOW_CAMERA_MOTIONS",
    "INTERPOLATIONS",
    "MODALITIES",
    "PreprocessConfig",
    "PreprocessError",
]

# The names and versions of the contract this module implements; the bundle manifest records one and the
# runtime refuses a bundle that asks for another. Version 2 added ``frame_rate`` and ``modality``, version 3
# ``flow_short_side``, version 4 ``flow_camera_motion``; a config is written as the lowest version that holds
# it, so runtimes that predate a version still read the bundles that do not need it.
CONTRACT_V1 = "i3dmtn.preprocess/1"
CONTRACT_V2 = "i3dmtn.preprocess/2"
CONTRACT_V3 = "i3dmtn.preprocess/3"
CONTRACT = "i3dmtn.preprocess/4"
CONTRACTS = (CONTRACT_V1, CONTRACT_V2, CONTRACT_V3, CONTRACT)
_NEW_FIELDS = {  # added by version
    CONTRACT_V2: ("frame_rate", "modality"),
    CONTRACT_V3: ("flow_short_side",),
    CONTRACT: ("flow_camera_motion",),
}
_DEFAULTS = {"frame_rate": 0.0, "modality": "rgb", "flow_short_side": 0, "flow_camera_motion": "keep"}

MODALITIES = {"rgb": 3, "flow": 2}  # model input -> its channels
# what the flow keeps of a moving camera: "keep" all of it; "median": each flow frame minus its median vector;
# "align": the frame moved back by the camera's fitted shift, zoom and turn, the flow computed again
# (edge_runtime.camera_motion; people moving cover less than half of the frame)
FLOW_CAMERA_MOTIONS = ("keep", "median", "align")
_FLOW_MIN_SIDE = 16  # OpenCV's DIS flow needs frames of 12 pixels or more

_CHANNEL_ORDERS = ("RGB", "BGR")
INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}


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
    frame_rate: float = 0.0  # frames per second the model sees, by timestamp; 0 keeps every decoded frame
    modality: str = "rgb"  # "rgb" frames or "flow" between consecutive frames (module docstring)
    flow_short_side: int = 0  # flow computed on frames of this short side, then resized (0: the model size)
    flow_camera_motion: str = "keep"  # "median": each flow frame minus its median vector (a moving camera)
    contract: str = ""  # "" = the lowest version that holds these parameters

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
        if self.interpolation not in INTERPOLATIONS:
            raise PreprocessError(
                f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        rate = self.frame_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0 <= rate <= 240):
            raise PreprocessError(
                f"frame_rate must be a number of frames per second in [0, 240], got {rate!r}"
            )
        object.__setattr__(self, "frame_rate", float(rate))
        if self.modality not in MODALITIES:
            raise PreprocessError(f"modality must be one of {sorted(MODALITIES)}, got {self.modality!r}")
        if self.modality == "flow" and self.resize_short_side < _FLOW_MIN_SIDE:
            raise PreprocessError(
                f"flow needs resize_short_side >= {_FLOW_MIN_SIDE} pixels, got {self.resize_short_side}"
            )
        side = self.flow_short_side
        if isinstance(side, bool) or not isinstance(side, int) or side < 0:
            raise PreprocessError(f"flow_short_side must be a whole number of pixels >= 0, got {side!r}")
        if side and self.modality != "flow":
            raise PreprocessError(f"flow_short_side is for the flow modality, not {self.modality!r}")
        if side and side < self.resize_short_side:
            raise PreprocessError(
                f"flow_short_side must be 0 or >= resize_short_side ({self.resize_short_side}), got {side}"
            )
        if self.flow_camera_motion not in FLOW_CAMERA_MOTIONS:
            raise PreprocessError(
                f"flow_camera_motion must be one of {FLOW_CAMERA_MOTIONS}, got {self.flow_camera_motion!r}"
            )
        if self.flow_camera_motion != "keep" and self.modality != "flow":
            raise PreprocessError(f"flow_camera_motion is for the flow modality, not {self.modality!r}")
        needed = self._lowest_contract()
        if self.contract == "":
            object.__setattr__(self, "contract", needed)
        elif self.contract not in CONTRACTS:
            raise PreprocessError(
                f"preprocessing contract {self.contract!r} is not implemented here (this runtime implements {list(CONTRACTS)})"
            )
        elif CONTRACTS.index(self.contract) < CONTRACTS.index(needed):
            missing = [f for f in _fields_after(self.contract) if f in self._non_default_fields()]
            raise PreprocessError(
                f"preprocessing contract {self.contract!r} has no {', '.join(missing)}; {needed!r} has"
            )

    def _non_default_fields(self) -> set[str]:
        return {name for name, default in _DEFAULTS.items() if getattr(self, name) != default}

    def _lowest_contract(self) -> str:
        used = self._non_default_fields()
        for version in reversed(CONTRACTS[1:]):
            if used & set(_NEW_FIELDS[version]):
                return version
        return CONTRACT_V1

    @property
    def working_short_side(self) -> int:
        """Short side of the frames the preprocessing starts from (what capture shrinks to and the training
        frame cache stores): ``flow_short_side`` when set, else ``resize_short_side``."""
        return self.flow_short_side or self.resize_short_side

    @property
    def channels(self) -> int:
        """Input channels of the model: 3 for RGB, 2 for flow (x, y)."""
        return MODALITIES[self.modality]

    @classmethod
    def square(cls, size: int, **kwargs: Any) -> PreprocessConfig:
        """A square crop of ``size`` with the short side resized to ``size``."""
        return cls(crop_size=(size, size), resize_short_side=size, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, as written into the bundle manifest (without the keys of later versions)."""
        later = set(_fields_after(self.contract))
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in later}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a contract we do not understand)."""
        if not isinstance(data, Mapping):
            raise PreprocessError(f"preprocessing parameters must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        contract = data.get("contract", CONTRACT_V1)
        if contract in CONTRACTS:
            known -= set(_fields_after(contract))
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


def _fields_after(contract: str) -> list[str]:
    """The parameters that versions after ``contract`` added (none for an unknown contract)."""
    if contract not in CONTRACTS:
        return []
    later = CONTRACTS[CONTRACTS.index(contract) + 1 :]
    return [name for version in later for name in _NEW_FIELDS[version]]


def _as_sequence(value: Any, name: str, length: int) -> Sequence[Any]:
    if isinstance(value, (int, float)) and length == 2 and name == "crop_size":
        return (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise PreprocessError(f"{name} must be a sequence of {length} numbers, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PreprocessError(f"{name} must hold numbers, got {value!r}")
    return value
