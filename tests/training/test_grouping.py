"""Grouped, stratified splits and folds: groups stay whole, classes keep their shares, the seed decides."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.data.grouping import assign_groups, grouped_folds, grouped_split

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}

# (normal, fight) clips per source video of the Surveillance Camera Fight groups.json: 29 sources of very
# unequal size (one holds 28 normal clips, several hold 2)
SURVEILLANCE_SOURCES = [
    (28, 0), (5, 12), (6, 8), (9, 4), (4, 7), (10, 1), (1, 8), (3, 6), (2, 6), (3, 4), (3, 4), (2, 4),
    (2, 4), (3, 3), (0, 5), (2, 3), (2, 3), (2, 2), (2, 2), (1, 2), (2, 1), (1, 2), (2, 1), (1, 2),
    (1, 2), (1, 1), (1, 1), (1, 1), (0, 1),
]  # fmt: skip


def _surveillance_like() -> tuple[list[str], list[int], list[str]]:
    items, labels, groups = [], [], []
    for g, (normal, fight) in enumerate(SURVEILLANCE_SOURCES):
        for label, n in ((0, normal), (1, fight)):
            for i in range(n):
                items.append(f"s{g}-{label}-{i}")
                labels.append(label)
                groups.append(f"source{g}")
    return items, labels, groups


def _class_counts(assignment: dict[str, str], items, labels) -> Counter:
    return Counter((assignment[i], lab) for i, lab in zip(items, labels, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 12)), min_size=3, max_size=60),
    seed=st.integers(0, 2**32 - 1),
    bins=st.integers(2, 4),
)
def test_a_group_never_spans_two_bins(data: list[tuple[int, int]], seed: int, bins: int) -> None:
    labels = [lab for lab, _ in data]
    groups = [g for _, g in data]
    if len(set(groups)) < bins:
        with pytest.raises(ValueError, match="cannot split"):
            assign_groups(labels, groups, [1 / bins] * bins, seed)
        return
    where = assign_groups(labels, groups, [1 / bins] * bins, seed)
    assert len(where) == len(data) and all(0 <= b < bins for b in where)
    bin_of_group: dict[int, int] = {}
    for g, b in zip(groups, where, strict=True):
        assert bin_of_group.setdefault(g, b) == b
    assert len(set(where)) == bins  # every bin gets at least one group


def test_singleton_groups_give_the_exact_fractions_per_class() -> None:
    items = [f"c{i}" for i in range(200)]
    labels = [i % 2 for i in range(200)]
    counts = _class_counts(grouped_split(items, labels, items, FRACTIONS, seed=5), items, labels)
    assert counts == {
        ("train", 0): 70, ("train", 1): 70, ("val", 0): 15, ("val", 1): 15, ("test", 0): 15, ("test", 1): 15
    }  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_unequal_groups_come_near_the_fractions_with_both_classes_everywhere(seed: int) -> None:
    items, labels, groups = _surveillance_like()
    split = grouped_split(items, labels, groups, FRACTIONS, seed)
    counts = _class_counts(split, items, labels)
    for name, fraction in FRACTIONS.items():
        for label in (0, 1):
            target = fraction * 100  # 100 clips of each class
            assert counts[(name, label)] > 0
            assert abs(counts[(name, label)] - target) <= 3, (name, label, counts)
    spans = {g: {split[i] for i, gi in zip(items, groups, strict=True) if gi == g} for g in set(groups)}
    assert all(len(s) == 1 for s in spans.values())


def test_the_same_seed_gives_the_same_split_whatever_the_item_order() -> None:
    items, labels, groups = _surveillance_like()
    first = grouped_split(items, labels, groups, FRACTIONS, seed=11)
    order = list(reversed(range(len(items))))
    again = grouped_split(
        [items[i] for i in order], [labels[i] for i in order], [groups[i] for i in order], FRACTIONS, seed=11
    )
    assert again == first


def test_other_seeds_give_other_splits() -> None:
    items, labels, groups = _surveillance_like()
    splits = {
        tuple(sorted(grouped_split(items, labels, groups, FRACTIONS, seed).items())) for seed in range(5)
    }
    assert len(splits) > 1


def test_a_zero_fraction_split_gets_nothing() -> None:
    items = [f"c{i}" for i in range(20)]
    labels = [i % 2 for i in range(20)]
    split = grouped_split(items, labels, items, {"train": 0.8, "val": 0.2, "test": 0.0}, seed=0)
    assert Counter(split.values()) == {"train": 16, "val": 4}


def test_grouped_folds_keep_groups_whole_and_both_classes_in_each_fold() -> None:
    items, labels, groups = _surveillance_like()
    folds = grouped_folds(items, labels, groups, k=5, seed=0)
    assert set(folds.values()) == set(range(5))
    for g in set(groups):
        assert len({folds[i] for i, gi in zip(items, groups, strict=True) if gi == g}) == 1
    counts = Counter((folds[i], lab) for i, lab in zip(items, labels, strict=True))
    for fold in range(5):  # target: 20 of each class; the 28-clip normal source alone overfills its fold
        assert 14 <= counts[(fold, 0)] <= 32 and 14 <= counts[(fold, 1)] <= 26, counts


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: assign_groups([0, 1], ["a", "b"], [0.5, 0.3, 0.2], 0), "cannot split 2 group"),
        (lambda: assign_groups([0, 1], ["a", "b"], [0.7, 0.7], 0), "sum to 1"),
        (lambda: assign_groups([0, 1], ["a", "b"], [1.0, 0.0], 0), "> 0"),
        (lambda: assign_groups([0, 1], ["a"], [1.0], 0), "2 labels but 1 groups"),
        (lambda: grouped_folds(["a", "b"], [0, 1], ["a", "b"], 1, 0), "k must be an integer >= 2"),
    ],
)
def test_bad_arguments_are_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_the_docstring_examples_hold() -> None:
    import doctest

    import training.data.grouping as module

    result = doctest.testmod(module)
    assert result.attempted == 2 and result.failed == 0
