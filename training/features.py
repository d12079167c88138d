"""Backbone features of every snippet of every video, cached on disk for fast head-only training.

``extract_features`` runs the backbone once over all ``n`` snippets of each video (not a sample of ``K``) and
writes one ``(n, D)`` float32 ``.npy`` per video plus its per-frame labels (layout and contract:
:mod:`training.feature_cache`). It is resumable (videos whose features exist are skipped; every file is
written to a temporary name and renamed), shardable (``shard=(i, n)`` takes every n-th video of the sorted
list, as torchrun ranks do), and refuses a cache written under another contract unless ``overwrite``.

:class:`~training.feature_dataset.FeatureDataset` reads the cache back as training items.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edge_runtime.video import VideoReadError, probe_video
from training.configs import to_preprocess_config
from training.data import (
    ANNOTATIONS_FILE,
    SkippedVideo,
    find_splits,
    list_videos,
    load_annotations,
    match_annotations,
    resolve_frame_labels,
)
from training.evaluate import video_features
from training.feature_cache import (
    FEATURE_SUFFIX,
    INDEX_FILE,
    LABELS_SUFFIX,
    FeatureCacheError,
    atomic_save_npy,
    backbone_sha256,
    check_contract,
    feature_contract,
    feature_paths,
    read_index,
    write_index,
)
from training.feature_dataset import FeatureDataset

__all__ = [
    "ExtractSummary",
    "FeatureCacheError",
    "FeatureDataset",
    "contract_for",
    "extract_features",
    "parse_shard",
    "shard_from_env",
]

logger = logging.getLogger(__name__)


@dataclass
class ExtractSummary:
    """What one extraction run did."""

    total: int = 0  # videos in this shard
    written: int = 0  # features computed and written now
    existing: int = 0  # already in the cache, skipped
    failed: list[SkippedVideo] = field(default_factory=list)  # unreadable videos


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; ValueError naming the expected form."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n <= 0 or not 0 <= i < n:
        raise ValueError(f"shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def shard_from_env() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` as set by torchrun, ``(0, 1)`` when not launched by it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def contract_for(backbone: nn.Module, config: Mapping[str, Any]) -> dict[str, Any]:
    """The cache contract of ``backbone`` under the preprocessing and snippet settings of ``config``."""
    return feature_contract(
        to_preprocess_config(config).to_dict(),
        int(config["clip_length"]),
        int(config["frame_stride"]),
        int(backbone.feature_dim),
        backbone_sha256(backbone),
    )


def _video_jobs(data_path: Path) -> list[tuple[str, Path, Path, int]]:
    """``(key, video file, split folder, label)`` for every video, sorted by key (the sharding order)."""
    jobs = []
    for split, folder in find_splits(data_path).items():
        for path, label in list_videos(folder):
            rel = path.relative_to(folder).as_posix()
            jobs.append((f"{split}/{rel}" if split else rel, path, folder, label))
    return sorted(jobs)


def _prepare(
    out_dir: Path, contract: dict[str, Any], overwrite: bool, sharded: bool, extra: dict[str, Any]
) -> None:
    if (out_dir / INDEX_FILE).exists():
        index = read_index(out_dir)
        try:
            check_contract(out_dir, index, contract)
            return
        except FeatureCacheError as exc:
            if not overwrite:
                raise FeatureCacheError(
                    f"{exc}; pass --overwrite to recompute it, or choose another --out"
                ) from None
            if sharded:
                raise FeatureCacheError(
                    f"{exc}; --overwrite with --shard would let shards delete each other's files: "
                    f"delete {out_dir} or run one unsharded --overwrite first"
                ) from None
            removed = 0
            for old in out_dir.rglob("*.npy"):
                old.unlink()
                removed += 1
            logger.warning(
                "feature cache %s: contract changed, removed %d old feature files", out_dir, removed
            )
    write_index(out_dir, contract, extra)


@torch.inference_mode()
def extract_features(
    backbone: nn.Module,
    config: Mapping[str, Any],
    data_path: str | Path,
    out_dir: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    batch_size: int = 16,
    overwrite: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    source: Mapping[str, Any] | None = None,
) -> ExtractSummary:
    """Cache the features of every snippet of every video under ``data_path`` into ``out_dir``.

    ``data_path`` is a split folder (``normal/``, ``anomaly/``) or a root of split folders (``train/``,
    ``val/``, ...; mirrored under ``out_dir``). ``source`` (e.g. ``{"checkpoint": path}``) is recorded in
    ``index.json`` for people; only the contract decides reuse.
    """
    data_path, out_dir = Path(data_path), Path(out_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    backbone = backbone.to(device).eval()
    contract = contract_for(backbone, config)
    rank, world = shard
    all_jobs = _video_jobs(data_path)
    jobs = all_jobs[rank::world]
    _prepare(out_dir, contract, overwrite, world > 1, {"source": dict(source or {})})
    _drop_stale(out_dir, {key for key, *_ in all_jobs})
    annotations: dict[Path, dict] = {}
    summary = ExtractSummary(total=len(jobs))
    bar = tqdm(
        jobs, desc=f"features {rank}/{world}" if world > 1 else "features", unit="video", disable=not progress
    )
    for key, path, folder, label in bar:
        feat_path, labels_path = feature_paths(out_dir, key)
        if feat_path.exists() and not overwrite:
            summary.existing += 1
            continue
        if folder not in annotations:
            annotations[folder] = _folder_annotations(folder)
        rel = path.relative_to(folder).as_posix()
        try:
            num_frames = probe_video(path).num_frames
            feats = video_features(backbone, path, config, device, batch_size)  # (snippets, D)
        except VideoReadError as exc:
            logger.warning("skipping unreadable video %s: %s", path, exc)
            summary.failed.append(SkippedVideo(path, str(exc)))
            continue
        frame_labels = resolve_frame_labels(folder, rel, label, num_frames, annotations[folder].get(rel))
        stored = np.full(num_frames, -1, np.int8) if frame_labels is None else frame_labels.astype(np.int8)
        atomic_save_npy(labels_path, stored)  # labels first: the features file marks the video done
        atomic_save_npy(feat_path, feats.astype(np.float32))
        summary.written += 1
    if summary.failed:
        failed = ", ".join(str(f.path) for f in summary.failed)
        logger.warning("features: skipped %d unreadable videos: %s", len(summary.failed), failed)
    logger.info("features in %s: %d written, %d already cached, %d unreadable (shard %d/%d)",
                out_dir, summary.written, summary.existing, len(summary.failed), rank, world)  # fmt: skip
    return summary


def _drop_stale(out_dir: Path, keys: set[str]) -> None:
    """Remove the cached features of videos no longer under the data path (e.g. a data set split again into
    the same folders): ``train --features`` reads every file of the cache, and a clip moved to test/ must not
    stay in train/."""
    removed = 0
    for feat in list(out_dir.rglob(f"*{FEATURE_SUFFIX}")):
        key = feat.relative_to(out_dir).as_posix()[: -len(FEATURE_SUFFIX)]
        if feat.name.endswith(LABELS_SUFFIX) or key in keys:
            continue
        feat.unlink()
        feature_paths(out_dir, key)[1].unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.warning("feature cache %s: removed %d videos no longer under the data path", out_dir, removed)


def _folder_annotations(folder: Path) -> dict:
    """The annotations of a split folder's videos (``annotations.json`` matched to the videos there)."""
    ann_file = folder / ANNOTATIONS_FILE
    written = load_annotations(ann_file) if ann_file.is_file() else {}
    keys = {p.relative_to(folder).as_posix() for p, _ in list_videos(folder)}
    return match_annotations(folder, written, keys)
