"""``AnomalyVideoDataset``: training items of ``K`` snippets decoded from video files (end-to-end training).

Each item is one video: ``K`` snippets picked by :func:`training.data.sampling.sample_snippets` (a window of
``K`` consecutive snippets, or RTFM's uniform segments: ``snippet_sampling``), their
frames taken from the video's resized frames at the contract's rate (:mod:`training.data.frame_cache`) and
turned into model input by THE preprocessing (:class:`edge_runtime.preprocess.FramePreprocessor`).
Training-time augmentation is the same for every frame of the item: the resized frames enlarged by a random
zoom of up to ``1 + augment_zoom``, the crop placed uniformly at random among the positions whose centre is
within ``augment_crop_jitter`` (enlarged) pixels of the frame's centre (a jitter as large as the frame: anywhere
in it), and a horizontal mirror (flow's x component changes sign with it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from edge_runtime.preprocess import FramePreprocessor, PreprocessConfig, centre_window, model_size
from edge_runtime.resample import resample_indices
from edge_runtime.snippets import num_snippets as count_snippets
from edge_runtime.video import VideoReadError
from training.data.frame_cache import FrameCache, decode_resized
from training.data.records import SkippedVideo, VideoRecord, scan_videos
from training.data.sampling import sample_snippets, snippets_frame_indices
from training.data.video_snippets import preprocess_config

__all__ = ["AnomalyVideoDataset", "dataset_from_config", "item_rng"]

logger = logging.getLogger(__name__)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item in one epoch: the same numbers in any worker, process or rerun."""
    return np.random.default_rng([seed, epoch, index])


class AnomalyVideoDataset(Dataset):
    """Videos of ``data_path/{normal,anomaly}`` as items of ``K`` snippets of ``S`` frames.

    Item (a dict): ``clips`` float32 ``(C, K*S, H, W)``; ``label`` float 0/1; ``frame_labels`` float32
    ``(K*S,)`` at the sampled frames (zeros when unknown); ``has_frame_labels`` bool; ``video`` path str;
    ``frame_indices`` int64 ``(K*S,)``, the source frames of the video the item's frames were taken from.

    Frames come from ``frame_cache`` (:class:`training.data.frame_cache.FrameCache`: decoded once) or, without
    one, are decoded for every item; either way they are the preprocessing's resized frames at its frame
    rate, so both give identical items. Unreadable videos are skipped with a warning at construction
    (``self.skipped``); a video that fails later while decoding is replaced by the next readable one of the
    same label, with a warning. Pass ``records`` (e.g. from :func:`training.data.split_records`) to use a
    subset instead of scanning; ``preprocess`` to give the whole contract (frame rate, modality).

    ``frame_size`` is the crop, square or ``(H, W)``. ``num_snippets`` defaults to 1: an item is then one clip
    of ``clip_length`` frames, as the seed's ``AnomalyVideoDataset(data_path, clip_length, frame_size)`` gave.
    """

    def __init__(
        self,
        data_path: str | Path,
        clip_length: int,
        frame_size: int | tuple[int, int],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        num_snippets: int = 1,
        frame_stride: int = 1,
        resize_short_side: int | None = None,
        train: bool = False,
        augment_flip: bool = True,
        augment_crop_jitter: float = 16,
        augment_zoom: float = 0.15,
        seed: int = 0,
        records: Sequence[VideoRecord] | None = None,
        snippet_sampling: str = "segments",
        preprocess: PreprocessConfig | None = None,
        frame_cache: FrameCache | None = None,
    ) -> None:
        if augment_crop_jitter < 0:
            raise ValueError(f"augment_crop_jitter must be >= 0 pixels, got {augment_crop_jitter}")
        if augment_zoom < 0:
            raise ValueError(f"augment_zoom must be >= 0, got {augment_zoom}")
        self.data_path = Path(data_path)
        self.clip_length = int(clip_length)
        self.num_snippets = int(num_snippets)
        self.frame_stride = int(frame_stride)
        self.preprocess = preprocess or preprocess_config(frame_size, resize_short_side)
        crop = (frame_size, frame_size) if isinstance(frame_size, int) else tuple(frame_size)
        if self.preprocess.crop_size != crop:
            raise ValueError(
                f"preprocess crop {self.preprocess.crop_size} does not match frame_size {frame_size}"
            )
        self.transform = transform
        self.train = train
        self.augment_flip = augment_flip
        self.augment_crop_jitter = float(augment_crop_jitter)
        self.augment_zoom = float(augment_zoom)
        self.seed = int(seed)
        self.snippet_sampling = snippet_sampling
        sample_snippets(1, 1, mode=snippet_sampling)  # refuses an unknown mode now, not at the first item
        self.epoch = 0
        if records is None:
            self.records, self.skipped = scan_videos(self.data_path)
        else:
            self.records, self.skipped = list(records), []
        self.frame_cache = frame_cache
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

    def _frames(self, record: VideoRecord) -> np.ndarray:
        """The record's resized frames at the contract's rate, ``(T, h, w, 3)`` uint8."""
        if self.frame_cache is not None:
            return self.frame_cache.frames(record.path)
        return decode_resized(record.path, self.preprocess)

    def _load(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        rng = item_rng(self.seed, self.epoch, index) if self.train else None
        frames = self._frames(record)
        n = count_snippets(len(frames), self.clip_length, self.frame_stride)
        chosen = sample_snippets(n, self.num_snippets, rng, mode=self.snippet_sampling)
        frame_idx = snippets_frame_indices(chosen, len(frames), self.clip_length, self.frame_stride)
        processed = self._model_frames(frames, frame_idx, rng)  # (K*S, C, H, W)
        clips = torch.from_numpy(np.ascontiguousarray(processed.transpose(1, 0, 2, 3)))  # (C, K*S, H, W)
        if self.transform is not None:
            clips = self.transform(clips)
        taken = resample_indices(record.num_frames, record.fps, self.preprocess.frame_rate)  # sample -> frame
        source_idx = taken[np.minimum(frame_idx, len(taken) - 1)]
        if record.frame_labels is not None:
            frame_labels = torch.from_numpy(record.frame_labels[source_idx].astype(np.float32))
        else:
            frame_labels = torch.zeros(len(frame_idx), dtype=torch.float32)
        return {
            "clips": clips,
            "label": torch.tensor(float(record.label)),
            "frame_labels": frame_labels,
            "has_frame_labels": torch.tensor(record.has_frame_labels),
            "video": str(record.path),
            "frame_indices": torch.from_numpy(source_idx.astype(np.int64)),
        }

    def video_snippets(self, index: int, crops: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Every snippet of video ``index`` as a validation item takes them (centre crop, no augmentation, the
        frame cache when there is one): ``(n, crops * C, S, H, W)`` float32 (``crops`` as the device's
        :class:`~edge_runtime.preprocess.FramePreprocessor` takes it), and each snippet's source frames
        ``(n, S)`` (indices into the video's decoded frames, for its frame labels)."""
        record = self.records[index]
        frames = self._frames(record)
        n = count_snippets(len(frames), self.clip_length, self.frame_stride)
        frame_idx = snippets_frame_indices(np.arange(n), len(frames), self.clip_length, self.frame_stride)
        processed = self._model_frames(frames, frame_idx, None, crops)  # (n*S, crops*C, H, W)
        snippets = processed.reshape(n, self.clip_length, *processed.shape[1:]).transpose(0, 2, 1, 3, 4)
        taken = resample_indices(record.num_frames, record.fps, self.preprocess.frame_rate)  # sample -> frame
        source = taken[np.minimum(frame_idx, len(taken) - 1)].reshape(n, self.clip_length)
        return np.ascontiguousarray(snippets, np.float32), source

    def _model_frames(
        self, frames: np.ndarray, frame_idx: np.ndarray, rng: np.random.Generator | None, crops: int = 1
    ) -> np.ndarray:
        """The model's input ``(len(frame_idx), C, H, W)`` at ``frame_idx`` of the resized ``frames``, through
        the device's :class:`~edge_runtime.preprocess.FramePreprocessor` (flow from each frame's predecessor),
        with the item's augmentation: the frames enlarged by a random zoom, the crop moved and mirrored."""
        zoom, window = self._augmentation(frames.shape[1], frames.shape[2], rng)
        pre = FramePreprocessor(self.preprocess, crops)
        needs_previous = self.preprocess.modality != "rgb"
        out: dict[int, np.ndarray] = {}
        last = -2
        for i in np.unique(frame_idx).tolist():
            if needs_previous and i != last + 1:
                pre.reset()
                if i > 0:
                    pre.from_resized(_zoom(frames[i - 1], zoom), window)
            out[i] = pre.from_resized(_zoom(frames[i], zoom), window)
            last = i
        return np.stack([out[i] for i in frame_idx.tolist()])

    def _augmentation(
        self, h: int, w: int, rng: np.random.Generator | None
    ) -> tuple[float, tuple[int, int, bool] | None]:
        """``(zoom, (top, left, mirror))`` for a training item of ``h x w`` frames (as stored: working size);
        ``(1, None)`` (the centre crop) otherwise.

        The resized frame is enlarged by up to ``1 + augment_zoom`` and the crop put at a position drawn
        uniformly among those within ``augment_crop_jitter`` (enlarged) pixels of the centre and inside the
        frame: with no zoom and no jitter the crop is the device's centre crop."""
        if rng is None:
            return 1.0, None
        mirror = bool(self.augment_flip and rng.random() < 0.5)
        jitter = self.augment_crop_jitter
        zoom = 1.0 + self.augment_zoom * rng.random()
        zh, zw = model_size(round(h * zoom), round(w * zoom), self.preprocess)  # the crop's frame
        top, left = centre_window(zh, zw, self.preprocess)
        crop_h, crop_w = self.preprocess.crop_size
        reach = round(jitter * zoom)
        top = int(rng.integers(max(0, top - reach), min(zh - crop_h, top + reach) + 1))
        left = int(rng.integers(max(0, left - reach), min(zw - crop_w, left + reach) + 1))
        return zoom, (top, left, mirror)


def _zoom(frame: np.ndarray, zoom: float) -> np.ndarray:
    """A resized frame enlarged by ``zoom`` (1: unchanged)."""
    if zoom == 1.0:
        return np.asarray(frame)
    h, w = frame.shape[:2]
    return cv2.resize(np.asarray(frame), (round(w * zoom), round(h * zoom)), interpolation=cv2.INTER_LINEAR)


def dataset_from_config(
    config: Any, path: str | Path, *, train: bool, frame_cache: FrameCache | None = None,
    records: Sequence[VideoRecord] | None = None, progress: bool = True,
) -> AnomalyVideoDataset:  # fmt: skip
    """The videos of ``path`` (or ``records``) as a run's config reads them: its snippets, crop, augmentation
    and preprocessing contract, frames from ``frame_cache`` when given (built for the videos first).
    ``skipped`` lists the videos that could not be read, scanned or cached."""
    from training.configs import to_preprocess_config

    skipped: list[SkippedVideo] = []
    if records is None:
        records, skipped = scan_videos(path)
    if frame_cache is not None:
        already = len(frame_cache.skipped)
        records = frame_cache.build(records, progress=progress)
        skipped += frame_cache.skipped[already:]
    dataset = AnomalyVideoDataset(
        path,
        config["clip_length"],
        config["frame_size"],
        num_snippets=config["num_snippets"],
        frame_stride=config["frame_stride"],
        resize_short_side=config["resize_short_side"],
        train=train,
        augment_flip=config["augment_flip"],
        augment_crop_jitter=config["augment_crop_jitter"],
        augment_zoom=config["augment_zoom"],
        seed=config["seed"],
        records=records,
        snippet_sampling=config["snippet_sampling"],
        preprocess=to_preprocess_config(config),
        frame_cache=frame_cache,
    )
    dataset.skipped = skipped  # unreadable videos: warned, counted
    return dataset
