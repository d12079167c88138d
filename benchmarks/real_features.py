"""The rounds of ``benchmarks.real_quality --i3d-weights``: each round's feature cache, computed once per clip.

A recipe on a pretrained backbone trains its head on cached features (``i3dmtn features --i3d_weights``, then
``i3dmtn train --features``). Every round of a k-fold cross-validation holds every clip (in train/, val/ or
test/), so each round's cache is laid out from one store of per-clip feature files, and ``i3dmtn features``
computes only the clips the store lacks (the first round: all of them). The store is one folder per recipe
(the config, its ``--set`` values, the weights file and the cache's format and snippet rule), and rounds run
at once take turns at this step, so no clip's features are computed twice. A round's cache is laid out anew each time (a work folder reused with
another fold seed must not keep the earlier split's clips in train/).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from training.feature_cache import FEATURES_FORMAT, SNIPPET_RULE

__all__ = ["round_features"]

_TURN = threading.Lock()  # one round at a time lays out, extracts and stores its features
_SPLITS = ("train", "val", "test")


def _store(work: Path, config: str, sets: list[str], weights: Path) -> Path:
    """The recipe's store: a store of clips computed under an earlier cache format or snippet rule is not it."""
    key = "\n".join([config, *sets, str(weights.resolve()), FEATURES_FORMAT, SNIPPET_RULE]).encode()
    return work / "features-store" / hashlib.sha256(key).hexdigest()[:16]


def _link(src: Path, dst: Path) -> None:
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dst)


def _files(feats: Path) -> list[Path]:
    """The ``x.mp4.npy`` files of a round's cache (one per clip; ``x.mp4.labels.npy`` beside each)."""
    return [p for p in feats.glob("*/*/*.npy") if not p.name.endswith(".labels.npy")]


def round_features(
    run_cli: Callable[[list[str], Path, int], None],
    *,
    work: Path,
    data: Path,
    here: Path,
    config: str,
    sets: list[str],
    weights: Path,
    threads: int,
) -> Path:
    """The feature cache ``here/features`` of round ``data`` (train/, val/, test/) by ``i3dmtn features
    --i3d_weights weights``, its clips taken from the recipe's store where it has them; returns it."""
    store, feats = _store(work, config, sets, weights), here / "features"
    with _TURN:
        shutil.rmtree(
            feats, ignore_errors=True
        )  # laid out anew: an earlier split's clips must not stay in it
        for split in _SPLITS:
            for video in (data / split).glob("*/*"):
                name = f"{video.name}.npy"
                if (store / name).exists() and (store / f"{video.name}.labels.npy").exists():
                    for suffix in (".npy", ".labels.npy"):
                        _link(
                            store / f"{video.name}{suffix}",
                            feats / split / video.parent.name / f"{video.name}{suffix}",
                        )
        args = ["features", "--config", config, *sets, "--i3d_weights", str(weights)]
        run_cli([*args, "--data_path", str(data), "--out", str(feats)], here / "features.log", threads)
        for path in _files(feats):
            _link(
                path.with_name(path.name[: -len(".npy")] + ".labels.npy"),
                store / (path.name[:-4] + ".labels.npy"),
            )
            _link(path, store / path.name)
    return feats
