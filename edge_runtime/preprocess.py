"""The one preprocessing: BGR uint8 camera frames -> the model's float input.

Training, calibration, the accuracy report and the device all call this module, so the model sees the same
pixels everywhere. The steps follow the I3D convention (Carreira & Zisserman, 2017):

0. take frames at ``frame_rate`` by timestamp (:mod:`edge_runtime.resample`; 0 keeps every frame),
1. resize so the short side is ``resize_short_side`` (aspect ratio kept): the model-size frame; for flow
   with ``flow_short_side``, to that larger short side instead (the working frame, see below),
2. the model's input channels (``modality``):

   - ``"rgb"``: centre crop to ``crop_size`` (height, width), BGR -> RGB (``channel_order``), scale to
     [-1, 1]: ``(x / 255 - mean) / std`` with mean = std = 0.5 per channel;
   - ``"flow"``: dense optical flow (OpenCV's DIS, ultrafast preset) from the previous frame's grey image to
     this one's, on the whole resized frame (the first frame of a stream has zero flow), then the centre
     crop, each component scaled to ``clip(f / FLOW_BOUND, -1, 1)`` (pixels of the resized frame; an INT8
     step of the input is then 1/8 px, finer than DIS's noise). Flow sees what moves and
     not what the scene looks like, which is what carries over to scenes a model has never seen (I3D's
     second stream, Carreira & Zisserman 2017). With ``flow_short_side`` (> ``resize_short_side``; 0 = off)
     the flow is computed on frames of that short side, where small limbs still move by whole pixels, and
     then area-resized to the model size (vectors scaled with it, so they stay in pixels of the model-size
     frame) before the crop. With ``flow_camera_motion`` (``"median"``, ``"align"``) a panning or shaking
     camera's motion is taken out of the flow first (:mod:`edge_runtime.camera_motion`): it moves the whole
     frame, which is not what people do;

3. layout ``(C, S, H, W)`` for a snippet of ``S`` frames (``C`` = :attr:`PreprocessConfig.channels`).

Flow needs the previous frame, so a stream is preprocessed by a :class:`FramePreprocessor` (one per camera
or video); :func:`preprocess_frame` is the stateless RGB case. The contract's parameters and their checks:
:mod:`edge_runtime.preprocess_config`.

numpy + OpenCV only (no torch): this file runs on the edge device.

>>> import numpy as np
>>> cfg = PreprocessConfig(crop_size=(4, 4), resize_short_side=4)
>>> preprocess_clip(np.zeros((2, 4, 6, 3), np.uint8), cfg).shape
(3, 2, 4, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .camera_motion import without_camera_motion
from .preprocess_config import (
    CONTRACT,
    CONTRACT_V1,
    CONTRACT_V2,
    CONTRACT_V3,
    CONTRACTS,
    FLOW_CAMERA_MOTIONS,
    INTERPOLATIONS,
    MODALITIES,
    PreprocessConfig,
    PreprocessError,
)

__all__ = [
    "CONTRACT",
    "CONTRACTS",
    "CONTRACT_V1",
    "CONTRACT_V2",
    "CONTRACT_V3",
    "FLOW_BOUND",
    "FLOW_CAMERA_MOTIONS",
    "MODALITIES",
    "FramePreprocessor",
    "PreprocessConfig",
    "PreprocessError",
    "preprocess_frame",
    "centre_window",
    "crop_windows",
    "preprocess_clip",
    "model_size",
    "resize_frame",
    "stack_snippet",
]


FLOW_BOUND = 16.0  # pixels (of the resized frame) per frame at which flow saturates
MOTION_CROPS = (1, 3)  # horizontal crop positions a preprocessor can hand out (FramePreprocessor's crops)


def _check_frame(frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise PreprocessError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise PreprocessError(f"a frame must be uint8 BGR, got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise PreprocessError(f"a frame must have shape (H, W, 3), got {frame.shape}")
    return frame


def _scaled_size(h: int, w: int, short_side: int, crop: tuple[int, int]) -> tuple[int, int]:
    scale = short_side / min(h, w)
    # Never below the crop on either side (a very wide crop on a tall frame).
    return max(round(h * scale), crop[0]), max(round(w * scale), crop[1])


def model_size(height: int, width: int, cfg: PreprocessConfig) -> tuple[int, int]:
    """``(h, w)`` of the model-size frame (short side ``resize_short_side``), in which the crop window lies,
    for a working frame of ``height x width`` (:func:`resize_frame`'s output; the same size without
    ``flow_short_side``)."""
    if not cfg.flow_short_side:
        return height, width
    return _scaled_size(height, width, cfg.resize_short_side, cfg.crop_size)


def resize_frame(frame: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Step 1: resize so the short side is :attr:`~PreprocessConfig.working_short_side` (never below the crop
    on either side); uint8 ``(h', w', 3)``, still BGR. What capture keeps and the training frame cache stores."""
    h, w = _check_frame(frame).shape[:2]
    new_h, new_w = _scaled_size(h, w, cfg.working_short_side, cfg.crop_size)
    if (new_h, new_w) != (h, w):
        frame = cv2.resize(frame, (new_w, new_h), interpolation=INTERPOLATIONS[cfg.interpolation])
    return frame


def centre_window(height: int, width: int, cfg: PreprocessConfig) -> tuple[int, int]:
    """``(top, left)`` of the centred ``crop_size`` window in a model-size frame of ``height x width``."""
    crop_h, crop_w = cfg.crop_size
    return (height - crop_h) // 2, (width - crop_w) // 2


def crop_windows(height: int, width: int, cfg: PreprocessConfig, crops: int = 1) -> list[tuple[int, int]]:
    """``(top, left)`` of the ``crops`` horizontal crop positions (1 or 3) in a model-size frame of
    ``height x width``: the centre first, then the left edge and the right edge (each vertically centred)."""
    if crops not in MOTION_CROPS:
        raise PreprocessError(f"crops must be one of {MOTION_CROPS}, got {crops!r}")
    top, left = centre_window(height, width, cfg)
    sides = [(top, 0), (top, width - cfg.crop_size[1])]
    return [(top, left)] + (sides if crops == 3 else [])


def _encode_rgb(crop_bgr: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """A uint8 BGR crop -> float32 ``(3, H, W)`` in the contract's range and channel order."""
    if cfg.channel_order == "RGB":
        crop_bgr = crop_bgr[:, :, ::-1]
    scale, offset = cfg._affine()
    chw = np.ascontiguousarray(crop_bgr.transpose(2, 0, 1), dtype=np.float32)  # (3, H, W)
    chw *= scale[:, None, None]
    chw += offset[:, None, None]
    return chw


def _encode_flow(flow: np.ndarray) -> np.ndarray:
    """Flow in pixels ``(H, W, 2)`` -> float32 ``(2, H, W)`` in [-1, 1]."""
    scaled = np.clip(flow * (1.0 / FLOW_BOUND), -1.0, 1.0)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1), dtype=np.float32)


class FramePreprocessor:
    """One stream's frames (a camera, a video), in order -> the model's input frames ``(C, H, W)``.

    Holds what a frame's input depends on besides the frame itself: the previous frame's grey image for
    ``flow``. ``window`` (training augmentation) moves the crop and mirrors it; the device uses the centre.

    With ``crops = 3`` (flow only, for the motion forest's side crops, :mod:`edge_runtime.motion_fusion`)
    each output frame is ``(3 * C, H, W)``: the centre crop's channels (the network's input) and then those
    of the left and the right crop (:func:`crop_windows`) of the same flow.

    >>> pre = FramePreprocessor(PreprocessConfig(crop_size=(16, 16), resize_short_side=16, modality="flow"))
    >>> frame = np.zeros((16, 24, 3), np.uint8)
    >>> pre(frame).shape, float(abs(pre(frame)).max())
    ((2, 16, 16), 0.0)
    """

    def __init__(self, cfg: PreprocessConfig, crops: int = 1) -> None:
        self.cfg = cfg
        if crops not in MOTION_CROPS or (crops != 1 and cfg.modality != "flow"):
            raise PreprocessError(f"crops must be one of {MOTION_CROPS} (3 for flow only), got {crops!r}")
        self.crops = crops
        self._flow = (
            cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
            if cfg.modality == "flow"
            else None
        )
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new video, a camera reconnect): the next flow is zero."""
        self._prev_grey: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, window: tuple[int, int, bool] | None = None) -> np.ndarray:
        """A BGR uint8 frame (any size) -> float32 ``(C, H, W)``."""
        return self.from_resized(resize_frame(frame, self.cfg), window)

    def from_resized(self, resized: np.ndarray, window: tuple[int, int, bool] | None = None) -> np.ndarray:
        """The same from a frame already through :func:`resize_frame` (the training cache's frames).

        ``window`` is ``(top, left, mirror)`` of the crop in the model-size frame (:func:`model_size`); None
        is the centre crop.
        """
        crop_h, crop_w = self.cfg.crop_size
        if window is not None and self.crops != 1:
            raise PreprocessError("a moved crop (window) is for training items: it takes crops = 1")
        top, left, mirror = (
            window
            if window is not None
            else (*centre_window(*model_size(*resized.shape[:2], self.cfg), self.cfg), False)
        )
        if self._flow is None:
            crop = resized[top : top + crop_h, left : left + crop_w]
            return _encode_rgb(crop[:, ::-1] if mirror else crop, self.cfg)
        grey = cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)
        if self._prev_grey is None or self._prev_grey.shape != grey.shape:
            flow = np.zeros((*grey.shape, 2), np.float32)  # a stream's first frame (or a new frame size)
        else:
            flow = self._flow.calc(self._prev_grey, grey, None)  # (h', w', 2) pixels
            flow = without_camera_motion(self.cfg.flow_camera_motion, self._flow, self._prev_grey, grey, flow)
        self._prev_grey = grey
        if self.cfg.flow_short_side:
            flow = _flow_to_model_size(flow, self.cfg)
        if self.crops != 1:
            tops_lefts = crop_windows(*flow.shape[:2], self.cfg, self.crops)
            return np.concatenate([_encode_flow(flow[t : t + crop_h, x : x + crop_w]) for t, x in tops_lefts])
        crop = flow[top : top + crop_h, left : left + crop_w]
        if mirror:
            crop = crop[:, ::-1] * np.array([-1.0, 1.0], np.float32)  # mirrored motion: x flips sign
        return _encode_flow(crop)


def _flow_to_model_size(flow: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Flow of a working frame -> the model-size frame's: area-resized, vectors scaled by the same factors."""
    h, w = flow.shape[:2]
    mh, mw = model_size(h, w, cfg)
    small = cv2.resize(flow, (mw, mh), interpolation=cv2.INTER_AREA)
    return small * np.array([mw / w, mh / h], np.float32)


def preprocess_frame(frame: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """One BGR uint8 frame ``(h, w, 3)`` -> float32 ``(3, H, W)`` (RGB contracts: a frame needs no other)."""
    if cfg.modality != "rgb":
        raise PreprocessError(
            f"a {cfg.modality} input depends on the previous frame: use FramePreprocessor, not preprocess_frame"
        )
    return FramePreprocessor(cfg)(frame)


def stack_snippet(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Already preprocessed frames ``S x (3, H, W)`` -> one snippet ``(3, S, H, W)``."""
    if len(frames) == 0:
        raise PreprocessError("cannot stack an empty snippet: it needs at least one frame")
    return np.ascontiguousarray(np.stack(frames, axis=1))


def preprocess_clip(frames: Sequence[np.ndarray] | np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """BGR uint8 frames ``(S, h, w, 3)`` (array or list), consecutive as the contract takes them (already at
    its frame rate) -> float32 ``(C, S, H, W)``. A flow clip's first frame has no predecessor: zero flow."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise PreprocessError(f"a clip must have shape (S, H, W, 3), got {frames.shape}")
        frames = list(frames)
    pre = FramePreprocessor(cfg)
    return stack_snippet([pre(f) for f in frames])
