"""Data sets: video folders, their annotations, snippet sampling and whole-video preprocessing.

The torch-free parts (records, sampling, whole-video snippets) import eagerly; ``AnomalyVideoDataset``
(a ``torch.utils.data.Dataset``) is loaded on first use so that calibration can list videos without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from training.data.records import (
    ANNOTATIONS_FILE,
    CLASS_DIRS,
    EXPECTED_LAYOUT,
    SPLITS,
    VIDEO_EXTENSIONS,
    Annotation,
    DatasetError,
    SkippedVideo,
    VideoRecord,
    find_splits,
    list_videos,
    load_annotations,
    match_annotations,
    resolve_frame_labels,
    scan_videos,
    split_records,
)
from training.data.sampling import sample_snippets, snippets_frame_indices
from training.data.video_snippets import (
    iter_snippet_batches,
    iter_video_snippets,
    preprocess_config,
    preprocess_video,
)

_LAZY = {"AnomalyVideoDataset": "training.data.video_dataset", "item_rng": "training.data.video_dataset"}

__all__ = [
    "ANNOTATIONS_FILE",
    "CLASS_DIRS",
    "EXPECTED_LAYOUT",
    "SPLITS",
    "VIDEO_EXTENSIONS",
    "Annotation",
    "AnomalyVideoDataset",
    "DatasetError",
    "SkippedVideo",
    "VideoRecord",
    "find_splits",
    "item_rng",
    "iter_snippet_batches",
    "iter_video_snippets",
    "list_videos",
    "load_annotations",
    "match_annotations",
    "preprocess_config",
    "preprocess_video",
    "resolve_frame_labels",
    "sample_snippets",
    "scan_videos",
    "snippets_frame_indices",
    "split_records",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'training.data' has no attribute {name!r}")
