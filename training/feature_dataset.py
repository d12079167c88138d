"""``FeatureDataset``: items of ``K`` cached snippet features per video, for head-only training.

Reads a cache written by :func:`training.features.extract_features`. The ``K`` snippets of an item are
chosen exactly as :class:`training.data.AnomalyVideoDataset` chooses them (``snippet_sampling``: a window of
``K`` consecutive snippets, or uniform segments with a random snippet per segment in training, the middle one
otherwise; RTFM averages the features within each segment instead, but picking one keeps head-only and
end-to-end training on the same inputs), and the frame labels of an item are those of the frames its
snippets hold.

Loaded videos stay in memory up to ``cache_bytes`` (1 GiB by default: the whole cache of a debug or
RWF-2000-sized set), so from the second epoch on head-only training reads no files. The memory belongs to the
process that reads: with ``num_workers > 0`` each DataLoader worker starts empty every epoch and reads files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data import CLASS_DIRS, DatasetError, item_rng, sample_snippets, snippets_frame_indices
from training.feature_cache import FEATURE_SUFFIX, LABELS_SUFFIX, read_index

__all__ = ["FeatureDataset"]


class FeatureDataset(Dataset):
    """Cached features of ``features_dir/[split/]{normal,anomaly}``.

    Item (a dict): ``features`` float32 ``(K, D)``; ``label`` float 0/1; ``frame_labels`` float32 ``(K*S,)``
    (zeros when unknown); ``has_frame_labels`` bool; ``video`` (the cache key, e.g. ``anomaly/x.mp4``);
    ``frame_indices`` int64 ``(K*S,)``; ``snippet_indices`` int64 ``(K,)``.
    """

    def __init__(
        self,
        features_dir: str | Path,
        split: str | None = None,
        *,
        num_snippets: int,
        train: bool = False,
        seed: int = 0,
        keys: list[str] | None = None,
        snippet_sampling: str = "segments",
        cache_bytes: int = 1 << 30,
    ) -> None:
        self.features_dir = Path(features_dir)
        self.index = read_index(self.features_dir)
        self.root = self.features_dir / split if split else self.features_dir
        self.prefix = f"{split}/" if split else ""
        self.clip_length = int(self.index["clip_length"])
        self.frame_stride = int(self.index["frame_stride"])
        self.feature_dim = int(self.index["feature_dim"])
        self.num_snippets = int(num_snippets)
        self.train = train
        self.seed = int(seed)
        self.snippet_sampling = snippet_sampling
        sample_snippets(1, 1, mode=snippet_sampling)  # refuses an unknown mode now, not at the first item
        self.epoch = 0
        self.items = self._scan() if keys is None else [(k, CLASS_DIRS[k.split("/")[0]]) for k in keys]
        self.cache_bytes = int(cache_bytes)
        self._memory: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self._memory_bytes = 0

    def _scan(self) -> list[tuple[str, int]]:
        items = []
        for name, label in CLASS_DIRS.items():
            folder = self.root / name
            if folder.is_dir():
                items += [
                    (f"{name}/{p.name[: -len(FEATURE_SUFFIX)]}", label)
                    for p in sorted(folder.iterdir())
                    if p.name.endswith(FEATURE_SUFFIX) and not p.name.endswith(LABELS_SUFFIX)
                ]
        if not items:
            raise DatasetError(
                f"feature cache {self.root} holds no features under normal/ or anomaly/ "
                f"(run `i3dmtn features` on the matching videos first)"
            )
        return items

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.items]

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's random snippets (the trainer calls this every epoch)."""
        self.epoch = int(epoch)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """All features ``(n, D)`` and per-frame labels ``(num_frames,)`` (None when unknown) of one video."""
        if index in self._memory:
            return self._memory[index]
        key = self.items[index][0]
        base = self.root / key
        feats = np.load(base.with_name(base.name + FEATURE_SUFFIX), allow_pickle=False)
        frames = np.load(base.with_name(base.name + LABELS_SUFFIX), allow_pickle=False)
        if feats.ndim != 2 or feats.shape[1] != self.feature_dim:
            raise DatasetError(
                f"{base}{FEATURE_SUFFIX}: expected features (n, {self.feature_dim}), got {feats.shape}"
            )
        loaded = feats, (None if frames.size and frames[0] < 0 else frames)
        if self._memory_bytes + feats.nbytes + frames.nbytes <= self.cache_bytes:
            self._memory[index] = loaded
            self._memory_bytes += feats.nbytes + frames.nbytes
        return loaded

    def snippet_features(self) -> np.ndarray:
        """Every snippet feature of every video, ``(n, D)`` (the statistics ``standardize_features`` uses)."""
        return np.concatenate([self.load(i)[0] for i in range(len(self))]).astype(np.float32, copy=False)

    def __getitem__(self, index: int) -> dict[str, Any]:
        key, label = self.items[index]
        feats, frame_labels = self.load(index)
        rng = item_rng(self.seed, self.epoch, index) if self.train else None
        chosen = sample_snippets(len(feats), self.num_snippets, rng, mode=self.snippet_sampling)
        num_frames = (
            len(frame_labels)
            if frame_labels is not None
            else len(feats) * self.clip_length * self.frame_stride
        )
        frame_idx = snippets_frame_indices(chosen, num_frames, self.clip_length, self.frame_stride)
        if frame_labels is not None:
            labels = torch.from_numpy(frame_labels[frame_idx].astype(np.float32))
        else:
            labels = torch.zeros(len(frame_idx), dtype=torch.float32)
        return {
            "features": torch.from_numpy(np.ascontiguousarray(feats[chosen], dtype=np.float32)),  # (K, D)
            "label": torch.tensor(float(label)),
            "frame_labels": labels,
            "has_frame_labels": torch.tensor(frame_labels is not None),
            "video": self.prefix + key,
            "frame_indices": torch.from_numpy(frame_idx),
            "snippet_indices": torch.from_numpy(chosen.astype(np.int64)),
        }
