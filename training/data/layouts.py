"""Which clips a downloaded fight data set holds and their labels, whatever its folder layout; their groups.

Recognised from the source folder ``SRC`` (folder names compared case-insensitively, ignoring ``-``,
``_`` and spaces), in this order:

- ``class-folders``: an anomaly folder and a normal folder: ``fight/`` + ``noFight/`` (Surveillance Camera
  Fight Dataset), ``anomaly/`` + ``normal/`` (this project's own layout), ``Violence/`` + ``NonViolence/``.
- ``split-folders``: ``train/`` and ``val/`` (optionally ``test/``) each holding class folders, e.g.
  RWF-2000's ``train/Fight``, ``train/NonFight``, ``val/Fight``, ``val/NonFight``. Each clip remembers
  its source split.
- ``flat-prefixes``: video files directly in ``SRC`` named ``fi*`` (fight) and ``no*`` (normal), as the
  Hockey Fights data set ships.
- ``globs``: ``--anomaly GLOB --normal GLOB`` (relative to ``SRC``) name the clips; they override detection.

A groups file (:func:`load_groups`) maps each clip's path relative to ``SRC`` to the id of the source
video it was cut from; it must name exactly the clips found.

Videos are files with an extension of :data:`~training.data.records.VIDEO_EXTENSIONS`; class folders are
searched recursively. Every error is a :class:`~training.data.records.DatasetError` with one line.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.data.records import VIDEO_EXTENSIONS, DatasetError, read_json

__all__ = ["Clip", "Layout", "ACCEPTED_LAYOUTS", "find_clips", "load_groups"]

# normalised folder name -> label (1 anomaly, 0 normal)
CLASS_NAMES: dict[str, int] = {
    **dict.fromkeys(("anomaly", "anomalies", "abnormal", "fight", "fights", "violence", "violent"), 1),
    **dict.fromkeys(
        ("normal", "nofight", "nofights", "nonfight", "nonfights", "noviolence", "nonviolence", "nonviolent"),
        0,
    ),
}
# normalised folder name -> source split
SPLIT_NAMES: dict[str, str] = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("val", "valid", "validation"), "val"),
    **dict.fromkeys(("test", "testing"), "test"),
}
FLAT_PREFIXES = {"fi": 1, "no": 0}  # Hockey Fights: fi12_xvid.avi, no12_xvid.avi
ACCEPTED_LAYOUTS = (
    "fight/ + noFight/ folders (Surveillance Camera Fight; also normal/ + anomaly/, Violence/ + NonViolence/), "
    "train/ + val/ folders each holding those (RWF-2000: train/Fight, train/NonFight, ...), "
    "video files named fi* and no* directly in SRC (Hockey Fights), "
    "or --anomaly GLOB --normal GLOB"
)


@dataclass(frozen=True)
class Clip:
    """One video of the source data set."""

    rel: str  # path relative to SRC, POSIX separators: "fight/fi001.mp4" (the key of a --groups file)
    label: int  # 1 anomaly (fight), 0 normal
    source_split: str | None = None  # "train" / "val" / "test" for the split-folders layout, else None


@dataclass(frozen=True)
class Layout:
    """What :func:`find_clips` recognised."""

    name: str  # class-folders, split-folders, flat-prefixes or globs
    description: str  # one line for people: which folders or patterns gave which class
    clips: tuple[Clip, ...]  # sorted by rel

    @property
    def source_splits(self) -> list[str]:
        return sorted({c.source_split for c in self.clips if c.source_split is not None})


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _class_dirs(folder: Path) -> list[tuple[Path, int]]:
    return [(d, CLASS_NAMES[_norm(d.name)]) for d in _subdirs(folder) if _norm(d.name) in CLASS_NAMES]


def _videos_under(root: Path, folder: Path, label: int, source_split: str | None = None) -> list[Clip]:
    return [
        Clip(p.relative_to(root).as_posix(), label, source_split)
        for p in sorted(folder.rglob("*"))
        if _is_video(p)
    ]


def _describe(pairs: Sequence[tuple[Path, int]], root: Path) -> str:
    def names(label: int) -> str:
        return ", ".join(sorted({f"{d.relative_to(root).as_posix()}/" for d, lab in pairs if lab == label}))

    return f"anomaly <- {names(1)}; normal <- {names(0)}"


def _class_folders(root: Path, dirs: list[tuple[Path, int]]) -> Layout:
    clips = [c for d, label in dirs for c in _videos_under(root, d, label)]
    return Layout("class-folders", "class folders: " + _describe(dirs, root), tuple(clips))


def _split_folders(root: Path) -> Layout | None:
    pairs: list[tuple[Path, int]] = []
    clips: list[Clip] = []
    for d in _subdirs(root):
        split = SPLIT_NAMES.get(_norm(d.name))
        inner = _class_dirs(d) if split else []
        pairs += inner
        clips += [c for cd, label in inner for c in _videos_under(root, cd, label, split)]
    if not pairs:
        return None
    splits = sorted({c.source_split for c in clips if c.source_split})
    text = f"split folders ({', '.join(splits) or 'none with videos'}) of class folders: {_describe(pairs, root)}"
    return Layout("split-folders", text, tuple(clips))


def _flat_prefixes(root: Path) -> Layout | None:
    videos = sorted(p for p in root.iterdir() if _is_video(p))
    if not videos:
        return None
    clips, other = [], []
    for p in videos:
        label = FLAT_PREFIXES.get(p.name[:2].lower())
        if label is None:
            other.append(p.name)
        else:
            clips.append(Clip(p.name, label))
    if other:
        raise DatasetError(
            f"{root}: {len(other)} video file(s) directly in it are named neither fi* (fight) nor no* (normal), "
            f"e.g. {other[0]!r}; name the clips with --anomaly GLOB --normal GLOB"
        )
    return Layout("flat-prefixes", "video files named fi* (anomaly) and no* (normal)", tuple(clips))


def _glob(root: Path, option: str, patterns: Sequence[str], label: int) -> list[Clip]:
    clips = []
    for pattern in patterns:
        try:
            matches = sorted(root.glob(pattern))
        except (ValueError, NotImplementedError) as exc:  # empty or absolute pattern
            raise DatasetError(f"{option} {pattern!r} is not a glob relative to SRC ({exc})") from None
        videos = [p for p in matches if _is_video(p)]
        if not videos:
            raise DatasetError(f"{option} {pattern!r} matches no video files under {root}")
        for p in videos:
            rel = p.relative_to(root)
            if ".." in rel.parts:
                raise DatasetError(f"{option} {pattern!r} matches {p}, outside SRC {root}")
            clips.append(Clip(rel.as_posix(), label))
    return clips


def _explicit(root: Path, anomaly: Sequence[str], normal: Sequence[str]) -> Layout:
    clips = _glob(root, "--anomaly", anomaly, 1) + _glob(root, "--normal", normal, 0)
    labels: dict[str, set[int]] = {}
    for c in clips:
        labels.setdefault(c.rel, set()).add(c.label)
    both = sorted(rel for rel, found in labels.items() if len(found) > 1)
    if both:
        raise DatasetError(f"{len(both)} clip(s) match both --anomaly and --normal, e.g. {both[0]!r}")
    unique = {c.rel: c for c in clips}  # a clip matched by two patterns of one class counts once
    text = f"globs: anomaly <- {', '.join(anomaly)}; normal <- {', '.join(normal)}"
    return Layout("globs", text, tuple(unique.values()))


def find_clips(src: str | Path, anomaly: Sequence[str] = (), normal: Sequence[str] = ()) -> Layout:
    """The layout of ``src`` and its clips (see the module docstring), both classes present.

    Raises :class:`DatasetError` (one line) when ``src`` is not a folder, only one of ``anomaly`` /
    ``normal`` globs is given, the layout is unknown (the line lists the accepted ones), or a class has no
    videos.
    """
    root = Path(src)
    if not root.is_dir():
        raise DatasetError(f"SRC {root} is not a folder")
    if bool(anomaly) != bool(normal):
        raise DatasetError("--anomaly and --normal go together: give both globs or neither")
    if anomaly:
        layout = _explicit(root, anomaly, normal)
    elif dirs := _class_dirs(root):
        layout = _class_folders(root, dirs)
    else:
        found = _split_folders(root) or _flat_prefixes(root)
        if found is None:
            raise DatasetError(f"{root}: unknown data set layout; accepted: {ACCEPTED_LAYOUTS}")
        layout = found
    clips = tuple(sorted(layout.clips, key=lambda c: c.rel))
    if not clips:
        raise DatasetError(
            f"{root}: {layout.description}, but no video files ({', '.join(VIDEO_EXTENSIONS)}) in them"
        )
    for label, name in ((1, "anomaly (fight)"), (0, "normal")):
        if not any(c.label == label for c in clips):
            raise DatasetError(
                f"{root}: no {name} videos found ({layout.description}); both classes are needed"
            )
    return Layout(layout.name, layout.description, clips)


def load_groups(path: Path, rels: Sequence[str]) -> dict[str, str]:
    """Read a groups file (JSON object: clip path relative to SRC -> group id, a string or an integer) and
    check it names exactly the clips ``rels``: ``{rel: group}``. Raises :class:`DatasetError` naming it."""
    where = f"--groups {path}"
    data = read_json(path, where, "groups file")
    if not isinstance(data, dict):
        raise DatasetError(
            f"{where}: expected a JSON object of clip path -> group id, got {type(data).__name__}"
        )
    groups: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise DatasetError(
                f"{where}: clip {key!r}: group id must be a non-empty string or an integer, got {value!r}"
            )
        rel = posixpath.normpath(key)  # "./fight/a.mp4" -> "fight/a.mp4"
        if rel in groups:
            raise DatasetError(f"{where}: clip {rel!r} is listed twice")
        groups[rel] = str(value)
    unknown = sorted(set(groups) - set(rels))
    if unknown:
        raise DatasetError(
            f"{where}: names {len(unknown)} clip(s) that are not videos found in SRC (paths are relative to "
            f"SRC, with /), e.g. {unknown[0]!r}"
        )
    missing = sorted(set(rels) - set(groups))
    if missing:
        raise DatasetError(f"{where}: gives no group for {len(missing)} clip(s) of SRC, e.g. {missing[0]!r}")
    return groups
