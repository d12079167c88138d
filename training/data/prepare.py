"""Turn a downloaded fight data set into this project's layout: ``OUT/{train,val,test}/{normal,anomaly}/``.

``i3dmtn data prepare SRC --out OUT`` calls :func:`prepare_dataset`, which

1. finds the clips and their labels in ``SRC`` (:mod:`training.data.layouts`: fight/ + noFight/, RWF-2000's
   train|val/Fight|NonFight, Hockey Fights' flat fi*/no* files, normal/ + anomaly/, or explicit globs);
2. reads the groups (``--groups FILE``: JSON of clip path relative to SRC -> source id; without it each
   clip is its own group) and checks the file names exactly the clips found;
3. probes each clip with :func:`edge_runtime.video.probe_video` (opens it and decodes its last frame: the
   check the trainer makes) and skips unreadable ones with a warning, counted;
4. splits the clips, seeded, stratified by class and grouped (:mod:`training.data.split_plan`).
   For a source with its own split (RWF-2000) that split is kept by default: its ``test/`` (or, when it has
   none, its ``val/``, which is RWF-2000's published evaluation set) becomes ``test/``, its ``val/`` stays
   ``val/`` when it also has a ``test/``, and otherwise ``val/`` is carved from its ``train/`` with the
   ``val`` fraction. ``resplit`` pools every clip and splits anew;
5. links each clip into ``OUT/<split>/<class>/`` (:mod:`training.data.clip_links`: a symbolic link to the
   absolute source path; a hard link where symbolic links fail; never a byte copy). A file name shared by
   clips of one class is prefixed with its sanitised parent path (``train_Fight_x.avi``), then numbered if
   still shared;
6. writes ``OUT/split.json``: per clip its source path, split, label and group, plus the seed and options.

Every problem with the input is a :class:`~training.data.records.DatasetError` with one line.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_runtime.video import VideoReadError, probe_video
from training.data.clip_links import CLASS_NAMES, check_out, link_clip, output_names, remove_links
from training.data.layouts import Clip, Layout, find_clips, load_groups
from training.data.records import SPLITS, DatasetError
from training.data.split_plan import assign_splits, check_kept_groups, plan_split

__all__ = [
    "SPLIT_FILE",
    "PrepareOptions",
    "PreparedClip",
    "PrepareResult",
    "prepare_dataset",
]

logger = logging.getLogger(__name__)

SPLIT_FILE = "split.json"
SPLIT_SCHEMA = "i3dmtn.split/1"


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
    plan = plan_split(opts, layout)
    if plan.kept:
        check_kept_groups(layout.clips, groups, plan.kept)
    old_links = check_out(opts.out, opts.src, opts.force)
    clips, skipped = _probe(root, layout.clips)
    split = assign_splits(clips, groups, plan, opts.seed)
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
    remove_links(old_links)
    for c in prepared:
        dest = opts.out / c.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        link_clip(root / c.source, dest, result.links)
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
            "folds": opts.folds,
            "fold": opts.fold,
        },
        "counts": result.counts(),
        "clips": [
            {"source": c.source, "path": c.path, "split": c.split, "label": c.label, "group": c.group}
            for c in result.clips
        ],
        "skipped": [{"source": rel, "reason": why} for rel, why in sorted(result.skipped.items())],
    }
