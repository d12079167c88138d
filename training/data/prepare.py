"""Turn a downloaded fight data set into this project's layout: ``OUT/{train,val,test}/{normal,anomaly}/``.

``i3dmtn data prepare SRC --out OUT`` calls :func:`prepare_dataset`, which

1. finds the clips and their labels in ``SRC`` (:mod:`training.data.layouts`: fight/ + noFight/, RWF-2000's
   train|val/Fight|NonFight, Hockey Fights' flat fi*/no* files, normal/ + anomaly/, or explicit globs);
2. reads the groups (``--groups FILE``: JSON of clip path relative to SRC -> source id; without it each
   clip is its own group) and checks the file names exactly the clips found;
3. probes each clip with :func:`edge_runtime.video.probe_video` (opens it and decodes its last frame: the
   check the trainer makes) and skips unreadable ones with a warning, counted;
4. splits the clips, seeded, stratified by class and grouped (:func:`training.data.grouping.grouped_split`).
   For a source with its own split (RWF-2000) that split is kept by default: its ``test/`` (or, when it has
   none, its ``val/``, which is RWF-2000's published evaluation set) becomes ``test/``, its ``val/`` stays
   ``val/`` when it also has a ``test/``, and otherwise ``val/`` is carved from its ``train/`` with the
   ``val`` fraction. ``resplit`` pools every clip and splits anew;
5. links each clip into ``OUT/<split>/<class>/`` (a symbolic link to the absolute source path; a hard
   link where symbolic links fail; never a byte copy). A file name shared by clips of one class is
   prefixed with its sanitised parent path (``train_Fight_x.avi``), then numbered if still shared;
6. writes ``OUT/split.json``: per clip its source path, split, label and group, plus the seed and options.

Every problem with the input is a :class:`~training.data.records.DatasetError` with one line.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_runtime.video import VideoReadError, probe_video
from training.data.grouping import grouped_folds, grouped_split
from training.data.layouts import Clip, Layout, find_clips, load_groups
from training.data.records import SPLITS, DatasetError

__all__ = [
    "SPLIT_FILE",
    "DEFAULT_FRACTIONS",
    "PrepareOptions",
    "PreparedClip",
    "PrepareResult",
    "output_names",
    "prepare_dataset",
]

logger = logging.getLogger(__name__)

CLASS_NAMES = {1: "anomaly", 0: "normal"}  # label -> output folder (the layout training.data.records reads)
SPLIT_FILE = "split.json"
SPLIT_SCHEMA = "i3dmtn.split/1"
DEFAULT_FRACTIONS = {"val": 0.15, "test": 0.15}


@dataclass(frozen=True)
class PrepareOptions:
    """What to prepare; ``val`` / ``test`` are None when not given (defaults, or the source's own split)."""

    src: Path
    out: Path
    val: float | None = None  # share of validation clips, in (0, 1)
    test: float | None = None  # share of test clips, in [0, 1)
    seed: int = 0
    groups_file: Path | None = None
    anomaly: tuple[str, ...] = ()  # globs relative to src; with ``normal`` they override detection
    normal: tuple[str, ...] = ()
    resplit: bool = False  # pool a source's own train/val/test split and split anew
    force: bool = False  # write into a non-empty ``out`` (replacing only links made before)
    folds: int | None = None  # cross-validation: test/ is fold ``fold`` of a grouped stratified k-fold
    fold: int | None = None


@dataclass(frozen=True)
class PreparedClip:
    source: str  # path relative to SRC, POSIX
    split: str
    label: int
    group: str
    path: str  # where it was linked, relative to OUT: "train/anomaly/fi001.mp4"


@dataclass
class PrepareResult:
    layout: Layout
    clips: list[PreparedClip]
    skipped: dict[str, str]  # source path -> why it was skipped
    grouped: bool  # a groups file was given
    split_note: str  # one line: how the split was made
    fractions: dict[str, float]  # the fractions that split the clips not kept in their source split
    links: Counter = field(default_factory=Counter)  # "symbolic" / "hard" -> count
    split_file: Path | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {"normal": n, "anomaly": n, "groups": n}}`` for the splits that got clips."""
        out: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            clips = [c for c in self.clips if c.split == split]
            if clips:
                out[split] = {name: sum(c.label == lab for c in clips) for lab, name in CLASS_NAMES.items()}
                out[split]["groups"] = len({c.group for c in clips})
        return out


def output_names(clips: Sequence[Clip]) -> dict[str, str]:
    """``{rel: file name}`` in the output class folders, unique per class (case-insensitively, for file
    systems that ignore case) and independent of the split: the file name, or for a name that clips of one
    class share, the sanitised relative path (``train/Fight/x.avi`` -> ``train_Fight_x.avi``), numbered
    ``-2``, ``-3`` ... in path order if still shared."""
    names: dict[str, str] = {}
    for label in CLASS_NAMES:
        members = sorted(c.rel for c in clips if c.label == label)
        shared = Counter(posixpath.basename(rel).lower() for rel in members)
        used: set[str] = set()
        for rel in members:
            name = posixpath.basename(rel)
            if shared[name.lower()] > 1:
                name = re.sub(r"[^A-Za-z0-9._-]", "_", rel.replace("/", "_"))
            stem, suffix = posixpath.splitext(name)
            candidate, n = name, 1
            while candidate.lower() in used:
                n += 1
                candidate = f"{stem}-{n}{suffix}"
            used.add(candidate.lower())
            names[rel] = candidate
    return names


@dataclass(frozen=True)
class _Plan:
    """How the clips are split."""

    kept: dict[str, str]  # source split -> output split, for clips whose source split is kept
    fractions: dict[str, float]  # output split -> share, for the other clips (grouped, stratified)
    note: str  # one line for people
    test_fold: tuple[int, int] | None = None  # (k, i): test/ is fold i of a grouped k-fold, split first


def _plan(opts: PrepareOptions, layout: Layout) -> _Plan:
    if opts.folds is not None or opts.fold is not None:
        return _fold_plan(opts, layout)
    val = DEFAULT_FRACTIONS["val"] if opts.val is None else opts.val
    test = DEFAULT_FRACTIONS["test"] if opts.test is None else opts.test
    if not (0 < val < 1 and 0 <= test < 1 and val + test < 1):
        raise DatasetError(
            f"fractions must satisfy 0 < --val, 0 <= --test, --val + --test < 1; got {val}, {test}"
        )
    own = layout.source_splits
    if opts.resplit and layout.name != "split-folders":
        raise DatasetError(
            f"--resplit applies only to a SRC with its own train/ val/ folders; SRC has {layout.name}"
        )
    if layout.name == "split-folders" and not opts.resplit:
        return _kept_plan(opts, own, val)
    note = (
        f"seeded ({opts.seed}), grouped, stratified: train {1 - val - test:g} / val {val:g} / test {test:g}"
    )
    if opts.resplit:
        note = f"pooled SRC's own split ({', '.join(own)}) and split anew: {note}"
    return _Plan({}, {"train": 1 - val - test, "val": val, "test": test}, note)


def _fold_plan(opts: PrepareOptions, layout: Layout) -> _Plan:
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
    return _Plan({}, {"train": 1 - val, "val": val}, note, test_fold=(k, i))


def _kept_plan(opts: PrepareOptions, own: Sequence[str], val: float) -> _Plan:
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
        return _Plan(
            kept,
            {"train": 1.0},
            f"kept SRC's own split ({moves}, its train/ -> train/); --resplit splits anew",
        )
    note = f"kept SRC's own split ({moves}; val/ = {val:g} of its train/, seeded ({opts.seed}), grouped, stratified)"
    return _Plan(kept, {"train": 1 - val, "val": val}, f"{note}; --resplit splits anew")


def _check_kept_groups(clips: Sequence[Clip], groups: Mapping[str, str], fixed: Mapping[str, str]) -> None:
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


def _check_out(out: Path, src: Path, force: bool) -> list[Path]:
    """Refuse an ``out`` that overlaps ``src`` or is not empty (unless ``force``); the old links to remove."""
    o, s = out.resolve(), src.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise DatasetError(f"--out {out} and SRC {src} must not lie inside one another")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return []
    if not force:
        raise DatasetError(f"--out {out} is not empty (use --force to replace the links a previous run made)")
    old = [
        p
        for split in SPLITS
        for name in CLASS_NAMES.values()
        if (out / split / name).is_dir()
        for p in sorted((out / split / name).iterdir())
    ]
    for p in old:  # a regular file with one link is someone's only copy: never removed
        if not p.is_symlink() and not (p.is_file() and p.stat().st_nlink > 1):
            raise DatasetError(
                f"--out {p} is not a link: prepare removes only links, never videos; move it away"
            )
    return old


def _remove_links(links: Sequence[Path]) -> None:
    """Remove links checked by :func:`_check_out` (the videos they point to stay), then the class and split
    folders they leave empty, so a split a previous run made and this one does not is gone."""
    for p in links:
        p.unlink()
    for folder in sorted({p.parent for p in links} | {p.parent.parent for p in links}, reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _link(source: Path, dest: Path, links: Counter) -> None:
    """A symbolic link ``dest`` -> ``source`` (absolute); a hard link where that fails; never a copy."""
    try:
        os.symlink(source, dest)
        links["symbolic"] += 1
        return
    except OSError as exc:
        symlink_error = exc
    try:
        os.link(source, dest)
        links["hard"] += 1
    except OSError as exc:
        raise DatasetError(
            f"cannot link {dest} -> {source}: symbolic link failed ({symlink_error.strerror}), hard link "
            f"failed ({exc.strerror}); prepare never copies videos"
        ) from None


def _probe_one(path: Path) -> str | None:
    try:
        probe_video(path)
        return None
    except VideoReadError as exc:
        return str(exc)


def _probe(root: Path, clips: Sequence[Clip]) -> tuple[list[Clip], dict[str, str]]:
    """Clips that open and decode to their last frame, and ``{rel: why}`` for the others (in threads:
    OpenCV decodes without the GIL)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        errors = list(pool.map(_probe_one, [root / c.rel for c in clips]))
    good, skipped = [], {}
    for c, error in zip(clips, errors, strict=True):
        if error is None:
            good.append(c)
        else:
            logger.warning("skipping unreadable video %s: %s", c.rel, error)
            skipped[c.rel] = error
    if skipped:
        logger.warning("skipped %d of %d videos that cannot be read", len(skipped), len(clips))
    for label, name in CLASS_NAMES.items():
        if not any(c.label == label for c in good):
            raise DatasetError(f"SRC {root}: none of its {name} videos can be read")
    return good, skipped


def _split(clips: Sequence[Clip], groups: Mapping[str, str], plan: _Plan, seed: int) -> dict[str, str]:
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


def _warn_missing_classes(result: PrepareResult) -> None:
    for split, n in result.counts().items():
        for name in CLASS_NAMES.values():
            if n[name] == 0:
                logger.warning("%s/ has no %s clips: too few groups hold them for this split", split, name)


def prepare_dataset(opts: PrepareOptions) -> PrepareResult:
    """Find, check, split and link the clips of ``opts.src`` into ``opts.out`` (see the module docstring)."""
    root = opts.src.resolve()
    layout = find_clips(opts.src, opts.anomaly, opts.normal)
    rels = [c.rel for c in layout.clips]
    groups = load_groups(opts.groups_file, rels) if opts.groups_file else {rel: rel for rel in rels}
    plan = _plan(opts, layout)
    if plan.kept:
        _check_kept_groups(layout.clips, groups, plan.kept)
    old_links = _check_out(opts.out, opts.src, opts.force)
    clips, skipped = _probe(root, layout.clips)
    split = _split(clips, groups, plan, opts.seed)
    names = output_names(clips)
    prepared = [
        PreparedClip(
            c.rel,
            split[c.rel],
            c.label,
            groups[c.rel],
            f"{split[c.rel]}/{CLASS_NAMES[c.label]}/{names[c.rel]}",
        )
        for c in clips
    ]
    result = PrepareResult(layout, prepared, skipped, opts.groups_file is not None, plan.note, plan.fractions)
    _remove_links(old_links)
    for c in prepared:
        dest = opts.out / c.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        _link(root / c.source, dest, result.links)
    result.split_file = opts.out / SPLIT_FILE
    result.split_file.write_text(json.dumps(_split_record(opts, result), indent=1) + "\n", encoding="utf-8")
    _warn_missing_classes(result)
    return result


def _split_record(opts: PrepareOptions, result: PrepareResult) -> dict[str, Any]:
    return {
        "schema": SPLIT_SCHEMA,
        "source": str(opts.src.resolve()),
        "layout": result.layout.name,
        "layout_description": result.layout.description,
        "split": result.split_note,
        "seed": opts.seed,
        "fractions": result.fractions,
        "options": {
            "val": opts.val,
            "test": opts.test,
            "groups": str(opts.groups_file.resolve()) if opts.groups_file else None,
            "anomaly": list(opts.anomaly),
            "normal": list(opts.normal),
            "resplit": opts.resplit,
        },
        "counts": result.counts(),
        "clips": [
            {"source": c.source, "path": c.path, "split": c.split, "label": c.label, "group": c.group}
            for c in result.clips
        ],
        "skipped": [{"source": rel, "reason": why} for rel, why in sorted(result.skipped.items())],
    }
