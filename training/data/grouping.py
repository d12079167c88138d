"""Grouped, stratified assignment of clips to splits or folds: the one implementation of that rule.

Clips cut from one source video share its scene, people and camera; a clip-level split puts near-twins on
both sides and inflates every score. Here whole *groups* (source ids) are assigned, and the assignment aims
at the asked fraction of each class in each bin:

1. Targets: ``target[bin, class] = fraction[bin] * (clips of that class)``.
2. Cost of an assignment: the squared gap between each bin's class counts and their targets, each gap
   divided by the class's size (so both classes weigh the same), plus a large penalty for each bin that
   lacks a class and a larger one for an empty bin.
3. Groups are placed one by one, in a seeded random order, each into the bin where it adds the least
   cost; then single groups are moved between bins while that lowers the cost.
4. Step 3 is repeated for several random orders (drawn from the seed); the cheapest assignment wins.

Why not scikit-learn: ``StratifiedGroupKFold`` gives only k equal folds (no 70/15/15) and its seed only
breaks ties; ``GroupShuffleSplit`` does not stratify. This search handles any fractions, groups of very
unequal size (a 28-clip group among 1-clip ones) and gives a different, equally balanced split per seed.

``grouped_split`` (named splits with fractions) and ``grouped_folds`` (k equal folds for cross-validation)
both call :func:`assign_groups`. numpy only.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

__all__ = ["assign_groups", "grouped_split", "grouped_folds"]

_TRIES = 16  # random orders tried per call: more gives a tighter fit, each costs one greedy pass
_MISSING_CLASS = 1e3  # penalty per (bin, class) left empty; larger than any sum of squared relative gaps
_EMPTY_BIN = 1e6  # penalty per empty bin: an empty split is worse than any number of missing classes


def _bin_costs(load: np.ndarray, targets: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Cost of each bin ``(bins,)``: squared relative gaps to its targets + penalties for each class it
    lacks and for being empty. ``load`` and ``targets`` are ``(bins, classes)``, ``scale`` is ``(classes,)``."""
    gaps = (((load - targets) * scale) ** 2).sum(axis=1)
    return gaps + _MISSING_CLASS * (load == 0).sum(axis=1) + _EMPTY_BIN * (load.sum(axis=1) == 0)


def _search(
    counts: np.ndarray, targets: np.ndarray, scale: np.ndarray, order: np.ndarray
) -> tuple[float, np.ndarray]:
    """One greedy pass over ``order`` then single-group moves until none helps: ``(cost, bin per group)``."""
    load = np.zeros_like(targets)  # (bins, classes)
    where = np.full(len(counts), -1)
    for g in order:  # greedy: the bin where this group adds the least cost
        b = int(np.argmin(_bin_costs(load + counts[g], targets, scale) - _bin_costs(load, targets, scale)))
        where[g] = b
        load[b] += counts[g]
    improved = True
    while improved:  # each accepted move lowers the cost, so this ends
        improved = False
        for g in order:
            a = where[g]
            now = _bin_costs(load, targets, scale)  # (bins,)
            left = now[a] - _bin_costs(load[a : a + 1] - counts[g], targets[a : a + 1], scale)[0]
            gains = left + now - _bin_costs(load + counts[g], targets, scale)  # (bins,) moving g a -> b
            gains[a] = 0.0
            b = int(np.argmax(gains))
            if gains[b] > 1e-12:
                load[a] -= counts[g]
                load[b] += counts[g]
                where[g] = b
                improved = True
    return float(_bin_costs(load, targets, scale).sum()), where


def assign_groups(
    labels: Sequence[Hashable], groups: Sequence[Hashable], fractions: Sequence[float], seed: int
) -> list[int]:
    """The bin (index into ``fractions``) of each item; items of one group always share a bin.

    ``labels[i]`` and ``groups[i]`` describe item ``i``. ``fractions`` are the wanted share of each bin,
    each > 0, summing to 1. The result depends only on the (label, group) pairs and the seed, not on the
    order of the items. Raises ValueError for mismatched lengths, bad fractions or fewer groups than bins.
    """
    if len(labels) != len(groups):
        raise ValueError(f"got {len(labels)} labels but {len(groups)} groups")
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or len(fr) == 0 or not np.all(fr > 0) or abs(fr.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be > 0 and sum to 1, got {list(fractions)}")
    group_ids = sorted(set(groups), key=repr)  # repr: ids of mixed types still sort, stably
    if len(group_ids) < len(fr):
        raise ValueError(f"cannot split {len(group_ids)} group(s) into {len(fr)} non-empty parts")
    classes = sorted(set(labels), key=repr)
    g_index = {g: i for i, g in enumerate(group_ids)}
    c_index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(group_ids), len(classes)))  # (groups, classes): clips of each class per group
    for label, group in zip(labels, groups, strict=True):
        counts[g_index[group], c_index[label]] += 1
    totals = counts.sum(axis=0)  # (classes,)
    targets = fr[:, None] * totals[None, :]  # (bins, classes)
    scale = 1.0 / totals
    rng = np.random.default_rng(seed)
    best_cost, best = np.inf, None
    for _ in range(_TRIES):
        cost, where = _search(counts, targets, scale, rng.permutation(len(group_ids)))
        if cost < best_cost - 1e-12:
            best_cost, best = cost, where
    assert best is not None
    return [int(best[g_index[g]]) for g in groups]


def grouped_split(
    items: Sequence[str],
    labels: Sequence[Hashable],
    groups: Sequence[Hashable],
    fractions: Mapping[str, float],
    seed: int,
) -> dict[str, str]:
    """``{item: split name}`` for named splits with fractions, e.g. ``{"train": 0.7, "val": 0.15,
    "test": 0.15}`` (splits with fraction 0 are left out); grouped and stratified as the module says.

    >>> grouped_split(["a", "b", "c", "d"], [0, 1, 0, 1], ["g1", "g1", "g2", "g2"], {"x": 0.5, "y": 0.5}, 0)
    {'a': 'x', 'b': 'x', 'c': 'y', 'd': 'y'}
    """
    names = [name for name, f in fractions.items() if f > 0]
    bins = assign_groups(labels, groups, [fractions[n] for n in names], seed)
    return {item: names[b] for item, b in zip(items, bins, strict=True)}


def grouped_folds(
    items: Sequence[str], labels: Sequence[Hashable], groups: Sequence[Hashable], k: int, seed: int
) -> dict[str, int]:
    """``{item: fold}`` with folds ``0 .. k-1`` of equal target size, for grouped stratified k-fold
    cross-validation: fold ``i`` is the test part of round ``i``; a group lies in exactly one fold.

    >>> grouped_folds(["a", "b", "c", "d", "e", "f"], [0, 1, 0, 1, 0, 1], ["g1", "g1", "g2", "g2", "g3", "g3"], 3, 0)
    {'a': 1, 'b': 1, 'c': 2, 'd': 2, 'e': 0, 'f': 0}
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    bins = assign_groups(labels, groups, [1.0 / k] * k, seed)
    return dict(zip(items, bins, strict=True))
