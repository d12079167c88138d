"""Decode once: each training video's frames at the contract's rate and size, stored as memory-mapped uint8.

End-to-end training reads every video once per epoch; decoding a 1080p H.264 clip costs far more than a
training step of a small model on its frames. :class:`FrameCache` decodes each video once, takes its frames
at the preprocessing contract's frame rate (:func:`edge_runtime.resample.resample_indices`) and resizes them
(:func:`edge_runtime.preprocess.resize_frame`: step 1 of the one preprocessing, so what follows from the
cache is exactly what the device computes), and stores them as ``uint8 (T, h, w, 3)`` ``.npy`` files that
are read back memory-mapped.

Keyed by the video's bytes and the parameters that shape the frames (:data:`CACHE_VERSION`, frame rate,
short side, crop, interpolation), written atomically (resumable after a kill), unreadable videos skipped and
counted: :class:`~training.data.video_cache.VideoArrayCache`.

numpy + OpenCV only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.preprocess import PreprocessConfig, resize_frame
from edge_runtime.resample import resample_indices
from edge_runtime.video import VideoReadError, iter_frames, probe_video
from training.data.video_cache import VideoArrayCache

__all__ = ["CACHE_VERSION", "FrameCache"]

CACHE_VERSION = 2  # bump when the stored frames change meaning (2: resampling tolerance 1e-3 of a sample)


def decode_resized(path: Path, cfg: PreprocessConfig) -> np.ndarray:
    """A video's frames at ``cfg``'s frame rate, resized (step 1 of the preprocessing): uint8 ``(T, h, w, 3)``."""
    info = probe_video(path, verify=False)
    taken = resample_indices(info.num_frames, info.fps, cfg.frame_rate)  # sample -> source frame
    counts = np.bincount(taken, minlength=info.num_frames)
    out: list[np.ndarray] = []
    for i, frame in enumerate(iter_frames(path)):
        if i < len(counts) and counts[i]:
            resized = resize_frame(frame, cfg)
            out += [resized] * int(counts[i])
    if len(out) != len(taken):
        raise VideoReadError(f"video {path} decoded {len(out)} of the {len(taken)} frames it should give")
    return np.stack(out)


class FrameCache(VideoArrayCache):
    """Frames of training videos, decoded once (see the module docstring).

    >>> cache = FrameCache("cache/frames", PreprocessConfig.square(64, frame_rate=15))  # doctest: +SKIP
    >>> cache.frames(record).shape  # doctest: +SKIP
    (30, 64, 114, 3)
    """

    what = "frame cache"

    def __init__(self, root: str | Path, cfg: PreprocessConfig) -> None:
        params = {
            "version": CACHE_VERSION,
            "frame_rate": cfg.frame_rate,
            "resize_short_side": cfg.working_short_side,  # the stored frames' short side
            "crop_size": list(cfg.crop_size),
            "interpolation": cfg.interpolation,
        }
        super().__init__(root, params)
        self.cfg = cfg

    def frames(self, path: Path) -> np.ndarray:
        """The cached frames of ``path`` (memory-mapped, read-only), decoding and storing them the first time."""
        return self.load(path)

    def compute(self, path: Path) -> np.ndarray:
        return decode_resized(path, self.cfg)
