"""A tree ensemble (a random forest's binary classifier) evaluated from plain arrays: no scikit-learn on a device.

The trees are flattened into one set of node arrays, each tree's nodes after the previous tree's (``roots``
holds the offset of each tree's root):

- ``feature`` int32: the input column a node tests, ``-1`` at a leaf;
- ``threshold`` float64: a sample goes left when ``x[feature] <= threshold`` (scikit-learn's rule, with the
  input cast to float32 first, as scikit-learn's trees cast it);
- ``left`` / ``right`` int32: the children's (global) node indices, ``-1`` at a leaf;
- ``value`` float64: at a leaf, the tree's probability of class 1.

The ensemble's score is the mean of its trees' probabilities, scikit-learn's ``predict_proba(X)[:, 1]`` of a
``RandomForestClassifier`` (the conversion, ``training.motion_forest.forest_arrays``, lives on the training
side). Evaluation walks every (sample, tree) pair at once, one level per step.

Stored as ``.npz`` (:meth:`TreeEnsemble.save`), read with ``np.load(..., allow_pickle=False)``: no code runs
when a file is loaded, and a file of the wrong layout is refused with one line naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FOREST_FORMAT", "ForestError", "TreeEnsemble", "load_forest", "forest_mismatch"]

FOREST_FORMAT = "i3dmtn.forest/1"
_ARRAYS = ("feature", "threshold", "left", "right", "value", "roots")
_MAX_NODES = 1 << 26  # a 500-tree forest on a few thousand windows has ~10^5 nodes


class ForestError(ValueError):
    """A forest file or array set that cannot be used; one line naming it."""


@dataclass(frozen=True)
class TreeEnsemble:
    """Flattened trees (see the module docstring); ``n_features`` is the width of the input rows."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    n_features: int
    stats_version: str = ""  # what the input rows are (edge_runtime.motion_stats.STATS_VERSION)

    def __post_init__(self) -> None:
        self.check("forest")

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def check(self, where: str) -> None:
        """Refuse inconsistent arrays (a corrupt file would otherwise index out of bounds or loop)."""
        n = len(self.feature)
        if not 0 < n <= _MAX_NODES or len(self.roots) == 0:
            raise ForestError(
                f"{where}: a forest needs 1 to {_MAX_NODES} nodes and at least one tree, got {n} nodes"
            )
        for name in ("threshold", "left", "right", "value"):
            if getattr(self, name).shape != (n,):
                raise ForestError(
                    f"{where}: {name} must have {n} entries (one per node), got {getattr(self, name).shape}"
                )
        leaf = self.feature < 0
        internal = ~leaf
        if self.n_features < 1 or (self.feature >= self.n_features).any():
            raise ForestError(f"{where}: node features must be below n_features {self.n_features}")
        for name in ("left", "right"):
            child = getattr(self, name)
            if (
                (child[leaf] != -1).any()
                or (child[internal] <= np.flatnonzero(internal)).any()
                or (child >= n).any()
            ):
                raise ForestError(
                    f"{where}: {name} children must point forward inside the forest (-1 at leaves)"
                )
        if ((self.roots < 0) | (self.roots >= n)).any():
            raise ForestError(f"{where}: roots must be node indices in [0, {n})")
        if not (np.isfinite(self.value[leaf]).all() and np.isfinite(self.threshold[internal]).all()):
            raise ForestError(f"{where}: thresholds and leaf values must be finite")

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """The ensemble's probability of class 1 ``(n,)`` float64 for input rows ``(n, n_features)``."""
        x = np.asarray(rows, np.float32)  # scikit-learn's trees compare float32 inputs
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ForestError(f"the forest takes rows of {self.n_features} features, got shape {x.shape}")
        node = np.broadcast_to(self.roots, (len(x), self.n_trees)).copy()  # (n, trees)
        rows_idx = np.arange(len(x))[:, None]
        while True:
            feat = self.feature[node]
            internal = feat >= 0
            if not internal.any():
                break
            goes_left = x[rows_idx, np.where(internal, feat, 0)] <= self.threshold[node]
            node = np.where(internal, np.where(goes_left, self.left[node], self.right[node]), node)
        return self.value[node].mean(axis=1)

    def save(self, path: str | Path) -> Path:
        """Write the arrays as ``.npz`` (no pickled objects)."""
        path = Path(path)
        with open(path, "wb") as fh:
            np.savez(
                fh,
                format=np.array(FOREST_FORMAT),
                stats_version=np.array(self.stats_version),
                n_features=np.array(self.n_features, np.int64),
                **{name: getattr(self, name) for name in _ARRAYS},
            )
        return path


_DTYPES = {"feature": np.int32, "left": np.int32, "right": np.int32, "roots": np.int32,
           "threshold": np.float64, "value": np.float64}  # fmt: skip


def load_forest(path: str | Path) -> TreeEnsemble:
    """Read a forest written by :meth:`TreeEnsemble.save`; raises :class:`ForestError` naming ``path``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ForestError(f"{path}: not a forest file ({exc})") from None
    missing = sorted({*_ARRAYS, "format", "n_features", "stats_version"} - set(arrays))
    if missing:
        raise ForestError(f"{path}: not a forest file: missing {missing}")
    if str(arrays["format"]) != FOREST_FORMAT:
        raise ForestError(f"{path}: forest format must be {FOREST_FORMAT!r}, got {str(arrays['format'])!r}")
    try:
        parts = {name: arrays[name].astype(_DTYPES[name], casting="same_kind").ravel() for name in _ARRAYS}
    except TypeError as exc:
        raise ForestError(f"{path}: forest arrays of the wrong type ({exc})") from None
    try:
        return TreeEnsemble(
            **parts, n_features=int(arrays["n_features"]), stats_version=str(arrays["stats_version"])
        )
    except ForestError as exc:
        raise ForestError(f"{path}: {str(exc).removeprefix('forest: ')}") from None


def forest_mismatch(
    forest: TreeEnsemble, stats_version: str, n_features: int, name: str = "forest"
) -> str | None:
    """Why ``forest`` cannot score the rows this runtime computes (statistics ``stats_version`` of
    ``n_features`` numbers), in one line naming it ``name``; None when it can."""
    if forest.stats_version != stats_version:
        return (
            f"the {name} was trained on statistics {forest.stats_version!r}; this runtime computes "
            f"{stats_version!r} (train and export again)"
        )
    if forest.n_features != n_features:
        return f"the {name} takes {forest.n_features} features; its statistics have {n_features}"
    return None
