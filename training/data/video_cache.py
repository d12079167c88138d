"""Per-video arrays computed once and kept on disk, keyed by the video's bytes and the parameters that shape them.

The base of :class:`training.data.frame_cache.FrameCache` (decoded, resized frames) and
:class:`training.data.pose_cache.PoseCache` (people's poses): a subclass names its parameters and computes a
video's array; this class keys, stores and reads it.

- A file's name is its key: the SHA-256 of the video's bytes and of the parameters. A changed video or
  parameter gives a new key, so the entry is computed again; entries of old keys are left alone (delete the
  folder to reclaim).
- Each entry is written to a temporary file and renamed into place: a run killed mid-write leaves no half
  entry, and the next run redoes only the videos that have none (resumable).
- Videos that fail to decode are skipped with a warning and counted (``skipped``), as the data set does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edge_runtime.bundle import sha256_file
from edge_runtime.video import VideoReadError
from training.data.records import SkippedVideo, VideoRecord

__all__ = ["VideoArrayCache"]

logger = logging.getLogger(__name__)


class VideoArrayCache:
    """One ``.npy`` array per video under ``root`` (see the module docstring); ``what`` names it in messages."""

    what = "cache"

    def __init__(self, root: str | Path, params: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.params_key = hashlib.sha256(json.dumps(dict(params), sort_keys=True).encode()).hexdigest()[:16]
        self.skipped: list[SkippedVideo] = []
        self._keys: dict[Path, str] = {}

    def compute(self, path: Path) -> np.ndarray:
        """The array of the video ``path``; raises :class:`~edge_runtime.video.VideoReadError`."""
        raise NotImplementedError

    def key(self, path: Path) -> str:
        """The cache key of a video: its bytes' hash and the parameters' hash (hashed once per cache)."""
        if path not in self._keys:
            self._keys[path] = f"{sha256_file(path)[:32]}-{self.params_key}"
        return self._keys[path]

    def entry(self, path: Path) -> Path:
        return self.root / f"{self.key(path)}.npy"

    def load(self, path: Path) -> np.ndarray:
        """The cached array of ``path`` (memory-mapped, read-only), computing and storing it the first time."""
        entry = self.entry(path)
        if not entry.exists():
            self._store(self.compute(path), entry)
        return np.load(entry, mmap_mode="r")

    def _store(self, array: np.ndarray, entry: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, entry)  # a kill before this line leaves no entry: the next run computes it again

    def build(self, records: Sequence[VideoRecord], *, progress: bool = True) -> list[VideoRecord]:
        """Cache every record's array; returns the records that decoded (the others are warned and counted in
        :attr:`skipped`)."""
        done = sum(self.entry(r.path).exists() for r in records)
        kept = []
        desc = f"{self.what} ({done} of {len(records)} cached)"
        for record in tqdm(records, desc=desc, unit="video", disable=not progress):
            try:
                self.load(record.path)
            except VideoReadError as exc:
                logger.warning("%s: skipping video %s: %s", self.what, record.path, exc)
                self.skipped.append(SkippedVideo(record.path, str(exc)))
                continue
            kept.append(record)
        if self.skipped:
            logger.warning("%s: %d video(s) skipped (unreadable)", self.what, len(self.skipped))
        return kept
