"""Decode once: each training video's frames at the contract's rate and size, stored as memory-mapped uint8.

End-to-end training reads every video once per epoch; decoding a 1080p H.264 clip costs far more than a
training step of a small model on its frames. :class:`FrameCache` decodes each video once, takes its frames
at the preprocessing contract's frame rate (:func:`edge_runtime.resample.resample_indices`) and resizes them
(:func:`edge_runtime.preprocess.resize_frame`: step 1 of the one preprocessing, so what follows from the
cache is exactly what the device computes), and stores them as ``uint8 (T, h, w, 3)`` ``.npy`` files that
are read back memory-mapped.

- A file's name is its key: the SHA-256 of the video's bytes and of the parameters that shape the frames
  (:data:`CACHE_VERSION`, frame rate, short side, crop, interpolation). A changed video or parameter gives a
  new key, so the cache is rebuilt for it; entries of old keys are left alone (delete the folder to reclaim).
- Each entry is written to a temporary file and renamed into place: a run killed mid-write leaves no
  half entry, and the next run redoes only the videos that have none (resumable).
- Videos that fail to decode are skipped with a warning and counted (``skipped``), as the data set does.

numpy + OpenCV only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_runtime.bundle import sha256_file
from edge_runtime.preprocess import PreprocessConfig, resize_frame
from edge_runtime.resample import resample_indices
from edge_runtime.video import VideoReadError, iter_frames, probe_video
from training.data.records import SkippedVideo, VideoRecord

__all__ = ["CACHE_VERSION", "FrameCache"]

logger = logging.getLogger(__name__)

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


class FrameCache:
    """Frames of training videos, decoded once (see the module docstring).

    >>> cache = FrameCache("cache/frames", PreprocessConfig.square(64, frame_rate=15))  # doctest: +SKIP
    >>> cache.frames(record).shape  # doctest: +SKIP
    (30, 64, 114, 3)
    """

    def __init__(self, root: str | Path, cfg: PreprocessConfig) -> None:
        self.root = Path(root)
        self.cfg = cfg
        params = {
            "version": CACHE_VERSION,
            "frame_rate": cfg.frame_rate,
            "resize_short_side": cfg.working_short_side,  # the stored frames' short side
            "crop_size": list(cfg.crop_size),
            "interpolation": cfg.interpolation,
        }
        self.params_key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        self.skipped: list[SkippedVideo] = []
        self._keys: dict[Path, str] = {}

    def key(self, path: Path) -> str:
        """The cache key of a video: its bytes' hash and the parameters' hash (hashed once per cache)."""
        if path not in self._keys:
            self._keys[path] = f"{sha256_file(path)[:32]}-{self.params_key}"
        return self._keys[path]

    def entry(self, path: Path) -> Path:
        return self.root / f"{self.key(path)}.npy"

    def frames(self, path: Path) -> np.ndarray:
        """The cached frames of ``path`` (memory-mapped, read-only), decoding and storing them the first time."""
        entry = self.entry(path)
        if not entry.exists():
            self._store(path, entry)
        return np.load(entry, mmap_mode="r")

    def _store(self, path: Path, entry: Path) -> None:
        frames = decode_resized(path, self.cfg)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, frames)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, entry)  # a kill before this line leaves no entry: the next run decodes again

    def build(self, records: Sequence[VideoRecord], *, progress: bool = True) -> list[VideoRecord]:
        """Cache every record's frames; returns the records that decoded (the others are warned and counted
        in :attr:`skipped`)."""
        done = sum(self.entry(r.path).exists() for r in records)
        kept = []
        bar = tqdm(
            records, desc=f"frame cache ({done} of {len(records)} cached)", unit="video", disable=not progress
        )
        for record in bar:
            try:
                self.frames(record.path)
            except VideoReadError as exc:
                logger.warning("frame cache: skipping video %s: %s", record.path, exc)
                self.skipped.append(SkippedVideo(record.path, str(exc)))
                continue
            kept.append(record)
        if self.skipped:
            logger.warning("frame cache: %d video(s) skipped (unreadable)", len(self.skipped))
        return kept
