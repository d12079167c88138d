"""``AnomalyVideoDataset``: training items of ``K`` snippets decoded from video files (end-to-end training).

Each item is one video: ``K`` snippets picked by :func:`training.data.sampling.sample_snippets` (a window of
``K`` consecutive snippets, or RTFM's uniform segments: ``snippet_sampling``), only their
frames decoded (:func:`edge_runtime.video.read_frames`) and preprocessed by THE preprocessing
(:mod:`edge_runtime.preprocess`). Training-time augmentation happens on the raw BGR frame before that one
preprocessing: a horizontal flip and a jittered crop window, the same for every frame of the item. The window
is the raw frame shrunk by a random factor and placed at a random position, so that after the preprocessing's
resize the crop's centre moves by up to ``augment_crop_jitter`` pixels (of the resized frame) along the short
side, and the view zooms in by up to ``2 * augment_crop_jitter / resize_short_side``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from edge_runtime.preprocess import preprocess_frame
from edge_runtime.snippets import num_snippets as count_snippets
from edge_runtime.video import VideoReadError, read_frames
from training.data.records import SkippedVideo, VideoRecord, scan_videos
from training.data.sampling import sample_snippets, snippets_frame_indices
from training.data.video_snippets import preprocess_config

__all__ = ["AnomalyVideoDataset", "item_rng"]

logger = logging.getLogger(__name__)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item in one epoch: the same numbers in any worker, process or rerun."""
    return np.random.default_rng([seed, epoch, index])


class AnomalyVideoDataset(Dataset):
    """Videos of ``data_path/{normal,anomaly}`` as items of ``K`` snippets of ``S`` frames.

    Item (a dict): ``clips`` float32 ``(3, K*S, H, W)``; ``label`` float 0/1; ``frame_labels`` float32
    ``(K*S,)`` at the sampled frames (zeros when unknown); ``has_frame_labels`` bool; ``video`` path str;
    ``frame_indices`` int64 ``(K*S,)``.

    Unreadable videos are skipped with a warning at construction (``self.skipped``); a video that fails later
    while decoding is replaced by the next readable one of the same label, with a warning.
    Pass ``records`` (e.g. from :func:`training.data.split_records`) to use a subset instead of scanning.
    """

    def __init__(
        self,
        data_path: str | Path,
        clip_length: int,
        frame_size: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        num_snippets: int,
        frame_stride: int = 1,
        resize_short_side: int | None = None,
        train: bool = False,
        augment_flip: bool = True,
        augment_crop_jitter: float = 16,
        seed: int = 0,
        records: Sequence[VideoRecord] | None = None,
        snippet_sampling: str = "segments",
    ) -> None:
        if augment_crop_jitter < 0:
            raise ValueError(f"augment_crop_jitter must be >= 0 pixels, got {augment_crop_jitter}")
        self.data_path = Path(data_path)
        self.clip_length = int(clip_length)
        self.num_snippets = int(num_snippets)
        self.frame_stride = int(frame_stride)
        self.preprocess = preprocess_config(frame_size, resize_short_side)
        self.transform = transform
        self.train = train
        self.augment_flip = augment_flip
        self.augment_crop_jitter = float(augment_crop_jitter)
        self.seed = int(seed)
        self.snippet_sampling = snippet_sampling
        sample_snippets(1, 1, mode=snippet_sampling)  # refuses an unknown mode now, not at the first item
        self.epoch = 0
        if records is None:
            self.records, self.skipped = scan_videos(self.data_path)
        else:
            self.records, self.skipped = list(records), []
        self._failed: set[int] = set()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's random snippets and augmentations (the trainer calls this every epoch)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        for candidate in self._candidates(index):
            try:
                return self._load(candidate)
            except VideoReadError as exc:
                if candidate not in self._failed:
                    logger.warning(
                        "video %s failed while decoding, using another: %s", self.records[candidate].path, exc
                    )
                    self._failed.add(candidate)
                    self.skipped.append(SkippedVideo(self.records[candidate].path, str(exc)))
        raise VideoReadError(
            f"no video of {self.data_path} with label {self.records[index].label} can be decoded"
        )

    def _candidates(self, index: int) -> list[int]:
        label = self.records[index].label
        n = len(self.records)
        order = [(index + i) % n for i in range(n)]
        return [i for i in order if self.records[i].label == label and (i == index or i not in self._failed)]

    def _load(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        rng = item_rng(self.seed, self.epoch, index) if self.train else None
        n = count_snippets(record.num_frames, self.clip_length, self.frame_stride)
        chosen = sample_snippets(n, self.num_snippets, rng, mode=self.snippet_sampling)
        frame_idx = snippets_frame_indices(chosen, record.num_frames, self.clip_length, self.frame_stride)
        unique, inverse = np.unique(frame_idx, return_inverse=True)
        raw = read_frames(record.path, unique)  # (U, h, w, 3) BGR uint8
        window = self._augment_window(raw.shape[1], raw.shape[2], rng)
        processed = np.stack([preprocess_frame(self._apply_window(f, window), self.preprocess) for f in raw])
        clips = torch.from_numpy(
            np.ascontiguousarray(processed[inverse].transpose(1, 0, 2, 3))
        )  # (3, K*S, H, W)
        if self.transform is not None:
            clips = self.transform(clips)
        if record.frame_labels is not None:
            frame_labels = torch.from_numpy(record.frame_labels[frame_idx].astype(np.float32))
        else:
            frame_labels = torch.zeros(len(frame_idx), dtype=torch.float32)
        return {
            "clips": clips,
            "label": torch.tensor(float(record.label)),
            "frame_labels": frame_labels,
            "has_frame_labels": torch.tensor(record.has_frame_labels),
            "video": str(record.path),
            "frame_indices": torch.from_numpy(frame_idx),
        }

    def _augment_window(
        self, h: int, w: int, rng: np.random.Generator | None
    ) -> tuple[int, int, int, int, bool]:
        """``(top, left, height, width, flip)`` of the raw frame to preprocess; the full frame at eval."""
        if rng is None:
            return 0, 0, h, w, False
        flip = bool(self.augment_flip and rng.random() < 0.5)
        # jitter in raw pixels of the short side, at most a third of it
        jitter = min(self.augment_crop_jitter * min(h, w) / self.preprocess.resize_short_side, min(h, w) / 3)
        scale = 1.0 - 2.0 * jitter / min(h, w) * rng.random()  # window side / frame side
        ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
        top = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
        return top, left, ch, cw, flip

    @staticmethod
    def _apply_window(frame: np.ndarray, window: tuple[int, int, int, int, bool]) -> np.ndarray:
        top, left, ch, cw, flip = window
        out = frame[top : top + ch, left : left + cw]
        return np.ascontiguousarray(out[:, ::-1] if flip else out)
