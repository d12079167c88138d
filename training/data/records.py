"""Which videos a data set folder holds, their labels and their per-frame annotations.

A data set split is a folder ``normal/`` + ``anomaly/`` of video files, with an optional ``annotations.json``
next to them (the layout :mod:`training.synth` writes, and the usual one for UCF-Crime / RWF-2000 style sets)::

    data_path/
        normal/*.mp4        label 0
        anomaly/*.mp4       label 1
        annotations.json    optional: [{"video_path": "anomaly/x.mp4", "label": 1, "num_frames": 64,
                                        "fps": 25.0, "frame_annotations": [0, 0, 1, ...]}, ...]

numpy + OpenCV only (no torch), so calibration can list videos without importing the trainer.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from edge_runtime.video import VideoReadError, probe_video

__all__ = [
    "DatasetError",
    "VIDEO_EXTENSIONS",
    "CLASS_DIRS",
    "SPLITS",
    "EXPECTED_LAYOUT",
    "VideoRecord",
    "SkippedVideo",
    "Annotation",
    "ANNOTATIONS_FILE",
    "load_annotations",
    "match_annotations",
    "read_json",
    "list_videos",
    "resolve_frame_labels",
    "scan_videos",
    "split_records",
    "find_splits",
]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
CLASS_DIRS = {"normal": 0, "anomaly": 1}  # folder name -> video label
SPLITS = ("train", "val", "test")  # the split folders of a prepared data set root, in this order
EXPECTED_LAYOUT = "normal/ and anomaly/ subfolders of video files (+ optional annotations.json)"
ANNOTATIONS_FILE = "annotations.json"


class DatasetError(ValueError):
    """A data set folder or annotation file that is not what the loader expects (one-line message)."""


@dataclass(frozen=True)
class Annotation:
    """One validated record of ``annotations.json``."""

    video_path: (
        str  # as written: relative to the split folder ("anomaly/x.mp4"), absolute, or data-folder-prefixed
    )
    label: int  # 0 normal, 1 anomaly
    num_frames: int
    fps: float
    frame_annotations: np.ndarray | None  # (num_frames,) uint8 0/1, None when the record gives none


@dataclass(frozen=True)
class VideoRecord:
    """One usable video of a data set, probed at construction."""

    path: Path  # the file
    key: str  # path relative to the split folder, POSIX separators: "anomaly/x.mp4"
    label: int  # 0 normal, 1 anomaly (from the folder)
    num_frames: int  # decodable frames
    fps: float
    frame_labels: np.ndarray | None  # (num_frames,) uint8; zeros for a normal video; None when unknown

    @property
    def has_frame_labels(self) -> bool:
        return self.frame_labels is not None


@dataclass(frozen=True)
class SkippedVideo:
    """A video left out because it cannot be read."""

    path: Path
    reason: str


def _record_error(path: Path, index: int, message: str) -> DatasetError:
    return DatasetError(f"{path}: record {index}: {message}")


def _parse_record(path: Path, index: int, raw: Any) -> Annotation:
    if not isinstance(raw, dict):
        raise _record_error(path, index, f"expected an object, got {type(raw).__name__}")
    missing = [k for k in ("video_path", "label") if k not in raw]
    if missing:
        raise _record_error(path, index, f"missing key(s) {missing}")
    video_path = raw["video_path"]
    if not isinstance(video_path, str) or not video_path:
        raise _record_error(path, index, f"video_path must be a non-empty string, got {video_path!r}")
    label = raw["label"]
    if isinstance(label, bool) or label not in (0, 1):
        raise _record_error(path, index, f"label must be 0 or 1, got {label!r}")
    num_frames = raw.get("num_frames", 0)
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 0:
        raise _record_error(path, index, f"num_frames must be a non-negative integer, got {num_frames!r}")
    fps = raw.get("fps", 0.0)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps < 0:
        raise _record_error(path, index, f"fps must be a non-negative number, got {fps!r}")
    frames = raw.get("frame_annotations")
    array = None
    if frames is not None:
        if not isinstance(frames, list) or any(isinstance(v, bool) or v not in (0, 1) for v in frames):
            raise _record_error(path, index, "frame_annotations must be a list of 0/1 values")
        if num_frames and len(frames) != num_frames:
            raise _record_error(
                path, index, f"frame_annotations has {len(frames)} values but num_frames is {num_frames}"
            )
        array = np.asarray(frames, dtype=np.uint8)
        num_frames = num_frames or len(frames)
    return Annotation(
        video_path=Path(video_path).as_posix(),
        label=int(label),
        num_frames=int(num_frames),
        fps=float(fps),
        frame_annotations=array,
    )


def read_json(path: Path, where: str | Path, what: str) -> Any:
    """The JSON value in ``path``; a :class:`DatasetError` starting with ``where`` for a missing, unreadable or
    invalid file (``what`` names the kind of file in the message: "annotation file")."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{where}: {what} not found") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot read {what} ({exc})") from None
    except RecursionError:  # json.loads recurses once per nesting level
        raise DatasetError(f"{where}: not valid JSON (nested too deeply)") from None


def _json_lines(path: Path) -> list[Any] | None:
    """The values of a file of one JSON value per line, or None when it is not one."""
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return [json.loads(ln) for ln in lines] if len(lines) > 1 else None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def load_annotations(path: str | Path) -> dict[str, Annotation]:
    """Read and validate an ``annotations.json``: ``{video_path: Annotation}``.

    The file is a JSON list of records, or the seed's form: one JSON object per video (one object, or one
    per line). Raises :class:`DatasetError` naming the file (and the record index) for unreadable JSON,
    another top level, a record with missing or mistyped fields, or the same video listed twice.
    """
    p = Path(path)
    try:
        data = read_json(p, p, "annotation file")
    except DatasetError:
        data = _json_lines(p)
        if data is None:
            raise
    data = [data] if isinstance(data, dict) else data
    if not isinstance(data, list):
        raise DatasetError(
            f"{p}: expected a JSON list of video records or one object per video, got {type(data).__name__}"
        )
    out: dict[str, Annotation] = {}
    for i, raw in enumerate(data):
        ann = _parse_record(p, i, raw)
        if ann.video_path in out:
            raise _record_error(p, i, f"video {ann.video_path!r} is listed twice")
        out[ann.video_path] = ann
    return out


def match_annotations(
    root: Path, annotations: Mapping[str, Annotation], keys: Collection[str]
) -> dict[str, Annotation]:
    """``annotations`` keyed by the video each names among ``keys`` (paths relative to the split folder
    ``root``). A ``video_path`` may be relative to ``root``, absolute, or start with (the end of) the path of
    ``root`` (``data/train/anomaly/x.mp4``). One that names no video is a warning naming it."""
    where = root / ANNOTATIONS_FILE
    out: dict[str, Annotation] = {}
    for written, ann in annotations.items():
        key = _video_key(written, root, keys)
        if key is None:
            logger.warning("%s: annotation of %r names no video of %s; not used", where, written, root)
            continue
        if key in out:
            raise DatasetError(f"{where}: video {key!r} is annotated twice")
        out[key] = ann
    return out


def _video_key(written: str, root: Path, keys: Collection[str]) -> str | None:
    if written in keys:
        return written
    base = Path(os.path.abspath(root))  # not resolve(): the videos may be links (`i3dmtn data prepare`)
    path = PurePosixPath(written)
    if path.is_absolute():
        try:
            rel = Path(os.path.abspath(written)).relative_to(base).as_posix()
        except ValueError:
            return None
        return rel if rel in keys else None
    parts = [p for p in path.parts if p != "."]
    for i in range(1, len(parts)):
        prefix, rest = parts[:i], "/".join(parts[i:])
        if rest in keys and list(base.parts[-len(prefix) :]) == prefix:
            return rest
    return None


def list_videos(data_path: str | Path) -> list[tuple[Path, int]]:
    """Video files under ``data_path/{normal,anomaly}`` with their labels, sorted; checks the layout.

    Raises :class:`DatasetError` (one line naming ``data_path`` and the expected layout) for a missing folder,
    no ``normal/`` and no ``anomaly/`` subfolder, or no video files in them.
    """
    root = Path(data_path)
    if not root.is_dir():
        raise DatasetError(f"data path {root} is not a folder; expected {EXPECTED_LAYOUT}")
    present = [name for name in CLASS_DIRS if (root / name).is_dir()]
    if not present:
        raise DatasetError(
            f"data path {root} has no normal/ or anomaly/ folder; expected {EXPECTED_LAYOUT} (a downloaded "
            f"layout such as fight/ + noFight/: i3dmtn data prepare {root} --out DIR, with --test 1 to evaluate "
            "on all of it)"
        )
    videos = [
        (f, CLASS_DIRS[name])
        for name in present
        for f in sorted((root / name).iterdir())
        if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
    ]
    if not videos:
        raise DatasetError(
            f"data path {root} holds no video files ({', '.join(VIDEO_EXTENSIONS)}); expected {EXPECTED_LAYOUT}"
        )
    for name in CLASS_DIRS:
        if name not in present:
            logger.warning("data path %s has no %s/ folder: every video is one class", root, name)
    return videos


def resolve_frame_labels(
    root: Path, key: str, label: int, num_frames: int, ann: Annotation | None
) -> np.ndarray | None:
    """Per-frame labels ``(num_frames,)`` uint8 of a video: from its annotation, all zeros for a normal video,
    None for an anomalous video without frame annotations. A label disagreeing with the folder is an error."""
    if ann is not None and ann.label != label:
        raise DatasetError(
            f"{root / ANNOTATIONS_FILE}: video {key!r} is labelled {ann.label} but lies in the "
            f"{'anomaly' if label else 'normal'}/ folder"
        )
    if ann is not None and ann.frame_annotations is not None:
        labels = ann.frame_annotations
        if len(labels) != num_frames:
            logger.warning(
                "%s: %d frame annotations for %s which has %d frames; padding/truncating with 0",
                root / ANNOTATIONS_FILE,
                len(labels),
                key,
                num_frames,
            )
            labels = np.pad(labels[:num_frames], (0, max(0, num_frames - len(labels))))
        return labels.astype(np.uint8)
    if label == 0:
        return np.zeros(num_frames, np.uint8)  # every frame of a normal video is normal
    return None


def scan_videos(data_path: str | Path) -> tuple[list[VideoRecord], list[SkippedVideo]]:
    """Probe every video of a split folder: ``(usable records, skipped videos)``.

    A video that cannot be opened or decoded is skipped with a warning naming it. Frame labels come from
    ``annotations.json`` when present; normal videos have all-zero frame labels; an anomalous video without
    an annotation has unknown (``None``) frame labels.
    """
    root = Path(data_path)
    videos = list_videos(root)
    ann_file = root / ANNOTATIONS_FILE
    annotations = load_annotations(ann_file) if ann_file.is_file() else {}
    annotations = match_annotations(root, annotations, {p.relative_to(root).as_posix() for p, _ in videos})
    records: list[VideoRecord] = []
    skipped: list[SkippedVideo] = []
    for path, label in videos:
        key = path.relative_to(root).as_posix()
        try:
            info = probe_video(path)
        except VideoReadError as exc:
            logger.warning("skipping unreadable video %s: %s", path, exc)
            skipped.append(SkippedVideo(path, str(exc)))
            continue
        ann = annotations.get(key)
        records.append(
            VideoRecord(
                path=path,
                key=key,
                label=label,
                num_frames=info.num_frames,
                fps=info.fps,
                frame_labels=resolve_frame_labels(root, key, label, info.num_frames, ann),
            )
        )
    if skipped:
        logger.warning(
            "%s: skipped %d of %d videos that cannot be read: %s",
            root,
            len(skipped),
            len(videos),
            ", ".join(s.path.name for s in skipped),
        )
    if not records:
        raise DatasetError(f"data path {root}: none of its {len(videos)} videos can be read")
    return records, skipped


def split_records(
    records: Sequence[VideoRecord], val_fraction: float, seed: int
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Seeded, stratified train / validation split: per label, ``round(val_fraction * n)`` videos (at least
    one when the label has two or more) go to validation."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train: list[VideoRecord] = []
    val: list[VideoRecord] = []
    for label in sorted({r.label for r in records}):
        group = [r for r in records if r.label == label]
        order = rng.permutation(len(group))
        n_val = min(len(group) - 1, max(1, round(val_fraction * len(group)))) if len(group) > 1 else 0
        val += [group[i] for i in order[:n_val]]
        train += [group[i] for i in order[n_val:]]
    return sorted(train, key=lambda r: r.key), sorted(val, key=lambda r: r.key)


def find_splits(data_path: str | Path) -> dict[str, Path]:
    """Split folders of a data set root: ``{name: folder}`` for each subfolder holding normal/ or anomaly/
    (e.g. train, val, test); ``{"": data_path}`` when ``data_path`` is itself a split folder."""
    root = Path(data_path)
    if not root.is_dir():
        raise DatasetError(f"data path {root} is not a folder; expected {EXPECTED_LAYOUT}")
    if any((root / name).is_dir() for name in CLASS_DIRS):
        return {"": root}
    splits = {
        d.name: d
        for d in sorted(root.iterdir())
        if d.is_dir() and any((d / name).is_dir() for name in CLASS_DIRS)
    }
    if not splits:
        raise DatasetError(
            f"data path {root} has neither normal/ and anomaly/ folders nor split folders (train/, val/, test/) "
            f"holding them; expected {EXPECTED_LAYOUT}"
        )
    return splits
