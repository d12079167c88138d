"""How ``i3dmtn data prepare`` puts clips into ``OUT/<split>/<class>/``: unique file names, the check of
``OUT`` (never inside SRC; not empty only with ``--force``, and then holding only links), and the links
themselves (symbolic to the absolute source path, hard where that fails, never a byte copy).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from training.data.layouts import Clip
from training.data.records import CLASS_DIRS, SPLITS, DatasetError

__all__ = ["CLASS_NAMES", "output_names", "check_out", "remove_links", "link_clip"]

# label -> output folder: the class folders training.data.records reads, anomaly first
CLASS_NAMES = {label: name for name, label in reversed(CLASS_DIRS.items())}


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


def check_out(out: Path, src: Path, force: bool) -> list[Path]:
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


def remove_links(links: Sequence[Path]) -> None:
    """Remove links checked by :func:`check_out` (the videos they point to stay), then the class and split
    folders they leave empty, so a split a previous run made and this one does not is gone."""
    for p in links:
        p.unlink()
    for folder in sorted({p.parent for p in links} | {p.parent.parent for p in links}, reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def link_clip(source: Path, dest: Path, links: Counter) -> None:
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
