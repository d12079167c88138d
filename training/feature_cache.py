"""The on-disk feature cache: its layout, its ``index.json`` contract and safe (atomic) writes.

Layout written by ``i3dmtn features`` (one ``.npy`` pair per video, named after the video file)::

    out/index.json                             the contract every file below was computed under
    out/[split/]normal/x.mp4.npy               float32 (n, D): backbone feature of each of the n snippets
    out/[split/]normal/x.mp4.labels.npy        int8 (num_frames,): per-frame 0/1, all -1 when unknown

``index.json`` records the preprocessing contract, the snippet length ``S``, the frame stride, which snippets a
video has (``snippets``: :mod:`edge_runtime.snippets`' rule; an index without it was written when every tail
was padded), the feature size ``D`` and the SHA-256 of the backbone's weights. A cache is reused only when all
of them match; features of another backbone or preprocessing would silently train a head for a model that is never deployed.
No pickle anywhere: plain ``.npy`` arrays and JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "FEATURES_FORMAT",
    "INDEX_FILE",
    "FeatureCacheError",
    "backbone_sha256",
    "feature_contract",
    "read_index",
    "write_index",
    "check_contract",
    "feature_paths",
    "atomic_save_npy",
]

FEATURES_FORMAT = "i3dmtn.features/1"
INDEX_FILE = "index.json"
# which snippets a video has (edge_runtime.snippets): its complete ones, or one padded when it has none
SNIPPET_RULE = "complete"
FEATURE_SUFFIX = ".npy"
LABELS_SUFFIX = ".labels.npy"


class FeatureCacheError(ValueError):
    """A feature cache folder that is missing, malformed or computed under another contract."""


def backbone_sha256(backbone: nn.Module) -> str:
    """SHA-256 of a module's state dict: every tensor's name, dtype, shape and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(backbone.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def feature_contract(
    preprocess: Mapping[str, Any], clip_length: int, frame_stride: int, feature_dim: int, backbone_hash: str
) -> dict[str, Any]:
    """The dict ``index.json`` records; two caches are interchangeable iff their contracts are equal."""
    return {
        "format": FEATURES_FORMAT,
        "preprocess": dict(preprocess),
        "clip_length": int(clip_length),
        "frame_stride": int(frame_stride),
        "snippets": SNIPPET_RULE,
        "feature_dim": int(feature_dim),
        "backbone_sha256": backbone_hash,
    }


def read_index(features_dir: str | Path) -> dict[str, Any]:
    """The contract of an existing cache; :class:`FeatureCacheError` naming the file when absent or bad."""
    path = Path(features_dir) / INDEX_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FeatureCacheError(
            f"{path} not found: {features_dir} is not a feature cache (write one with `i3dmtn features`)"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise FeatureCacheError(f"{path}: cannot read the feature cache index ({exc})") from None
    expected = set(feature_contract({}, 1, 1, 1, "")) - {"snippets"}  # older caches: a contract change
    if not isinstance(data, dict) or data.get("format") != FEATURES_FORMAT or not expected <= set(data):
        raise FeatureCacheError(
            f"{path}: expected a {FEATURES_FORMAT} index with keys {sorted(expected)}, got "
            f"{sorted(data) if isinstance(data, dict) else type(data).__name__}"
        )
    return data


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_index(
    features_dir: str | Path, contract: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``index.json`` (atomically): the contract plus informational ``extra`` keys (e.g. the source)."""
    path = Path(features_dir) / INDEX_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, json.dumps({**contract, **(extra or {})}, indent=2, sort_keys=True) + "\n")
    return path


def check_contract(features_dir: str | Path, index: Mapping[str, Any], contract: Mapping[str, Any]) -> None:
    """Raise :class:`FeatureCacheError` naming every contract key where the cache differs from ``contract``."""
    diffs = [k for k in contract if index.get(k) != contract[k]]
    if diffs:
        detail = "; ".join(f"{k}: cache has {index.get(k)!r}, expected {contract[k]!r}" for k in diffs)
        raise FeatureCacheError(
            f"feature cache {features_dir} was computed under another contract ({detail})"
        )


def feature_paths(features_dir: str | Path, key: str) -> tuple[Path, Path]:
    """``(features .npy, frame labels .npy)`` of the video with data-set-relative path ``key``."""
    base = Path(features_dir) / key
    return base.with_name(base.name + FEATURE_SUFFIX), base.with_name(base.name + LABELS_SUFFIX)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a temporary file next to ``path``, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    os.replace(tmp, path)
