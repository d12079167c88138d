"""How ``i3dmtn data prepare`` splits the clips it found: the plan (fractions, a source's own split kept, or
one fold of a cross-validation) and the assignment of each clip to train/, val/ or test/.

:func:`plan_split` reads the options into a :class:`SplitPlan`; :func:`assign_splits` applies it: clips kept
in their source split keep it (mapped), a cross-validation round's test/ is one fold of
:func:`training.data.grouping.grouped_folds`, and the rest is split by
:func:`training.data.grouping.grouped_split` (seeded, stratified by class, grouped by source).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.data.grouping import grouped_folds, grouped_split
from training.data.layouts import Clip, Layout
from training.data.records import DatasetError

if TYPE_CHECKING:
    from training.data.prepare import PrepareOptions

__all__ = ["DEFAULT_FRACTIONS", "SplitPlan", "plan_split", "check_kept_groups", "assign_splits"]

DEFAULT_FRACTIONS = {"val": 0.15, "test": 0.15}


@dataclass(frozen=True)
class SplitPlan:
    """How the clips are split."""

    kept: dict[str, str]  # source split -> output split, for clips whose source split is kept
    fractions: dict[str, float]  # output split -> share, for the other clips (grouped, stratified)
    note: str  # one line for people
    test_fold: tuple[int, int] | None = None  # (k, i): test/ is fold i of a grouped k-fold, split first


def plan_split(opts: PrepareOptions, layout: Layout) -> SplitPlan:
    """The plan for ``opts``: one fold of a k-fold, the source's own split kept, or seeded fractions."""
    if opts.folds is not None or opts.fold is not None:
        return _fold_plan(opts, layout)
    if opts.resplit and layout.name != "split-folders":
        raise DatasetError(
            f"--resplit applies only to a SRC with its own train/ val/ folders; SRC has {layout.name}"
        )
    if opts.test == 1:
        return _held_out_plan(opts, layout)
    val = DEFAULT_FRACTIONS["val"] if opts.val is None else opts.val
    test = DEFAULT_FRACTIONS["test"] if opts.test is None else opts.test
    if not (0 < val < 1 and 0 <= test < 1 and val + test < 1):
        raise DatasetError(
            f"fractions must satisfy 0 < --val, 0 <= --test, --val + --test < 1 (or --test 1 alone); "
            f"got {val}, {test}"
        )
    own = layout.source_splits
    if layout.name == "split-folders" and not opts.resplit:
        return _kept_plan(opts, own, val)
    note = (
        f"seeded ({opts.seed}), grouped, stratified: train {1 - val - test:g} / val {val:g} / test {test:g}"
    )
    if opts.resplit:
        note = f"pooled SRC's own split ({', '.join(own)}) and split anew: {note}"
    return SplitPlan({}, {"train": 1 - val - test, "val": val, "test": test}, note)


def _held_out_plan(opts: PrepareOptions, layout: Layout) -> SplitPlan:
    """``--test 1``: every clip in test/, a held-out set for ``i3dmtn evaluate --test_path OUT/test``."""
    if opts.val:
        raise DatasetError(
            f"--test 1 puts every clip in test/: --val {opts.val:g} would get none; leave it out"
        )
    note = (
        f"every clip in test/ (--test 1), to measure a model on: i3dmtn evaluate --test_path {opts.out}/test"
    )
    if layout.source_splits:
        note += f"; SRC's own split ({', '.join(layout.source_splits)}) pooled"
    return SplitPlan({}, {"train": 0.0, "val": 0.0, "test": 1.0}, note)


def _fold_plan(opts: PrepareOptions, layout: Layout) -> SplitPlan:
    """Cross-validation round ``fold`` of ``folds``: test/ is that fold of a grouped stratified k-fold
    (:func:`training.data.grouping.grouped_folds`, the same for every round of one seed), val/ the ``val``
    share of the rest, grouped and stratified too."""
    k, i = opts.folds, opts.fold
    if k is None or i is None:
        raise DatasetError("--folds K and --fold I go together (test/ = fold I of K)")
    if not (isinstance(k, int) and k >= 2 and isinstance(i, int) and 0 <= i < k):
        raise DatasetError(f"--folds must be an integer >= 2 and --fold in 0 .. folds-1; got {k}, {i}")
    if opts.test is not None:
        raise DatasetError("--test does not apply with --folds: test/ is one fold")
    if layout.name == "split-folders" and not opts.resplit:
        raise DatasetError("--folds: SRC has its own split; add --resplit to pool it into folds")
    val = DEFAULT_FRACTIONS["val"] if opts.val is None else opts.val
    if not 0 < val < 1:
        raise DatasetError(f"--val must satisfy 0 < --val < 1; got {val}")
    note = (
        f"seeded ({opts.seed}), grouped, stratified {k}-fold: test = fold {i}, "
        f"val = {val:g} of the other folds, train = the rest"
    )
    return SplitPlan({}, {"train": 1 - val, "val": val}, note, test_fold=(k, i))


def _kept_plan(opts: PrepareOptions, own: Sequence[str], val: float) -> SplitPlan:
    """The source's own split: its test/ stays test/ and then its val/ stays val/; a source without test/
    (RWF-2000) has its val/ (the published evaluation set) become test/. A val/ not kept is carved from
    the source's train/ with the ``val`` fraction."""
    if "train" not in own:
        raise DatasetError(
            f"SRC's split folders ({', '.join(own)}) have no train/; add --resplit to pool them"
        )
    if opts.test is not None:
        raise DatasetError("--test: SRC's own split is kept, test/ included; add --resplit to split anew")
    if "test" in own:
        kept = {"test": "test", **({"val": "val"} if "val" in own else {})}
    else:
        kept = {"val": "test"} if "val" in own else {}
    moves = ", ".join(f"its {s}/ -> {d}/" for s, d in kept.items())
    if "val" in kept.values():
        if opts.val is not None:
            raise DatasetError("--val: SRC's own val/ split is kept; add --resplit to split anew")
        return SplitPlan(
            kept,
            {"train": 1.0},
            f"kept SRC's own split ({moves}, its train/ -> train/); --resplit splits anew",
        )
    note = f"kept SRC's own split ({moves}; val/ = {val:g} of its train/, seeded ({opts.seed}), grouped, stratified)"
    return SplitPlan(kept, {"train": 1 - val, "val": val}, f"{note}; --resplit splits anew")


def check_kept_groups(clips: Sequence[Clip], groups: Mapping[str, str], fixed: Mapping[str, str]) -> None:
    """With a kept source split, a group must not have clips in two source splits that go different ways."""
    seen: dict[str, str] = {}
    for c in clips:
        part = fixed.get(c.source_split or "", "train")
        first = seen.setdefault(groups[c.rel], part)
        if first != part:
            raise DatasetError(
                f"--groups: group {groups[c.rel]!r} has clips in more than one of SRC's own splits (e.g. "
                f"{c.rel!r}); keeping that split would split the group: add --resplit"
            )


def assign_splits(
    clips: Sequence[Clip], groups: Mapping[str, str], plan: SplitPlan, seed: int
) -> dict[str, str]:
    """``{rel: split}``: kept clips by their source split, the others by the grouped stratified split."""
    split = {c.rel: plan.kept[c.source_split] for c in clips if c.source_split in plan.kept}
    if plan.test_fold is not None:
        k, i = plan.test_fold
        items = [c.rel for c in clips]
        try:
            folds = grouped_folds(items, [c.label for c in clips], [groups[r] for r in items], k, seed)
        except ValueError as exc:
            raise DatasetError(f"cannot split the clips into {k} folds: {exc}") from None
        split.update({rel: "test" for rel, f in folds.items() if f == i})
    rest = [c for c in clips if c.rel not in split]
    if rest:
        items, labels = [c.rel for c in rest], [c.label for c in rest]
        try:
            split.update(grouped_split(items, labels, [groups[r] for r in items], plan.fractions, seed))
        except ValueError as exc:
            names = ", ".join(k for k, f in plan.fractions.items() if f > 0)
            raise DatasetError(f"cannot split the clips into {names}: {exc}") from None
    return split
