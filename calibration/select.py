"""Choosing calibration clips, and the calibration-set file that makes the choice reproducible and auditable.

INT8 quantization sets each activation's range from a few hundred real snippets. Which snippets decides the
ranges, so the choice is

- **stratified over classes**: half from normal videos, half from anomalous ones (fights have larger motion
  activations than empty scenes; ranges from normal videos alone would clip them);
- **stratified over time**: within a video, ``m`` picks of its ``n`` snippets are the ``m`` equal strata of
  ``[0, n)`` with one seeded uniform draw in each (evenly spaced, jittered), so the start, middle and end of
  every video are seen;
- **seeded**: the same data, count and seed give the same clips, byte for byte in ``calibration_set.json``.

The file lists each clip's video (path relative to the data root, POSIX), label, snippet index, frame indices
and the video file's SHA-256, plus the preprocessing contract and snippet settings. :func:`read_snippets`
reads exactly those frames back (through :mod:`edge_runtime.preprocess`, the one preprocessing) after
checking every hash, so a calibration can be repeated or audited later.

>>> picks_in_video(10, 3, np.random.default_rng(0)).tolist()
[2, 4, 6]
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edge_runtime.bundle import sha256_file
from edge_runtime.preprocess import PreprocessConfig
from edge_runtime.resample import resample_indices
from edge_runtime.snippets import num_snippets, snippet_frame_indices
from edge_runtime.video import VideoReadError, probe_video
from training.data.records import DatasetError, find_splits, list_videos

__all__ = [
    "CALIBRATION_SCHEMA",
    "CalibrationError",
    "CalibrationClip",
    "CalibrationSet",
    "calibration_videos",
    "picks_in_video",
    "select_calibration_set",
    "save_calibration_set",
    "load_calibration_set",
    "read_snippets",
    "iter_video_snippets",
]

log = logging.getLogger(__name__)

CALIBRATION_SCHEMA = "i3dmtn.calibration/1"
_CALIB_SPLITS = ("train", "")  # the training split, or the root itself when it is one split folder


class CalibrationError(ValueError):
    """A calibration set that cannot be chosen or re-read; one line naming the file or option."""


@dataclass(frozen=True)
class CalibrationClip:
    """One calibration snippet: ``video`` is relative to the data root (POSIX separators)."""

    video: str
    label: int
    snippet_index: int
    frame_indices: tuple[int, ...]
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "video": self.video,
            "label": self.label,
            "snippet_index": self.snippet_index,
            "frame_indices": list(self.frame_indices),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class CalibrationSet:
    """The chosen clips and everything needed to read them again identically."""

    clips: tuple[CalibrationClip, ...]
    preprocess: PreprocessConfig
    snippet_length: int
    frame_stride: int
    seed: int
    requested: int
    source: str = ""  # the data root as given, for people; clips are relative to the root passed to readers
    videos_available: dict[str, int] = field(default_factory=dict)  # label name -> videos seen

    @property
    def videos(self) -> list[str]:
        """Distinct videos, in first-use order."""
        return list(dict.fromkeys(c.video for c in self.clips))

    def summary(self) -> dict[str, Any]:
        """Counts for the export report."""
        return {
            "file": "calibration_set.json",
            "snippets": len(self.clips),
            "requested": self.requested,
            "seed": self.seed,
            "videos": len(self.videos),
            "normal_snippets": sum(c.label == 0 for c in self.clips),
            "anomalous_snippets": sum(c.label == 1 for c in self.clips),
            "videos_available": dict(self.videos_available),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": CALIBRATION_SCHEMA,
            "seed": self.seed,
            "requested": self.requested,
            "source": self.source,
            "snippet_length": self.snippet_length,
            "frame_stride": self.frame_stride,
            "preprocess": self.preprocess.to_dict(),
            "videos_available": dict(self.videos_available),
            "clips": [c.to_dict() for c in self.clips],
        }


def calibration_videos(data_root: Path) -> list[tuple[Path, int]]:
    """``(video, label)`` of the training split of ``data_root`` (or of ``data_root`` itself when it is one
    split folder), sorted. Never the ``test`` split: those videos are the held-out ones of the report."""
    try:
        splits = find_splits(data_root)
    except DatasetError as exc:
        raise CalibrationError(f"--calib-data: {exc}") from None
    for name in _CALIB_SPLITS:
        if name in splits:
            return list_videos(splits[name])
    raise CalibrationError(
        f"--calib-data {data_root} has no train/ split (it has {', '.join(sorted(splits))}); "
        "calibration clips come from training videos, never from test/"
    )


def picks_in_video(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``min(m, n)`` distinct snippet indices of ``[0, n)``: one seeded uniform pick in each of ``m`` equal strata."""
    m = min(m, n)
    if m <= 0:
        return np.zeros(0, np.int64)
    picks = np.floor((np.arange(m) + rng.random(m)) * n / m).astype(np.int64)
    return np.minimum(picks, n - 1)  # strata are >= 1 snippet wide, so the picks are distinct and sorted


def _quota(counts: Sequence[int], total: int) -> list[int]:
    """Spread ``total`` picks over videos with ``counts`` snippets as evenly as they allow (water filling)."""
    quota = [0] * len(counts)
    left = total
    open_ = [i for i, n in enumerate(counts) if n > 0]
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        for rank, i in enumerate(open_):
            give = min(counts[i] - quota[i], share + (rank < extra))
            quota[i] += give
            left -= give
        open_ = [i for i in open_ if quota[i] < counts[i]]
    return quota


def _videos_by_label(
    root: Path, preprocess: PreprocessConfig, snippet_length: int, frame_stride: int, progress: bool = True
) -> dict[int, list[tuple[Path, int, str]]]:
    """The readable training videos per label: ``(path, snippets, SHA-256)``; unreadable ones are warned of."""
    by_label: dict[int, list[tuple[Path, int, str]]] = {0: [], 1: []}
    videos = calibration_videos(root)
    for path, label in tqdm(
        videos, desc="calibration videos", unit="video", leave=False, disable=None if progress else True
    ):
        try:
            info = probe_video(path)
            samples = len(resample_indices(info.num_frames, info.fps, preprocess.frame_rate))
            n = num_snippets(samples, snippet_length, frame_stride)
        except VideoReadError as exc:
            log.warning("calibration: skipping unreadable video %s: %s", path, exc)
            continue
        by_label[label].append((path, n, sha256_file(path)))
    return by_label


def _interleaved(clips: list[CalibrationClip]) -> tuple[CalibrationClip, ...]:
    """Normal and anomalous clips in turn, so any prefix (NNCF's subset_size) stays stratified."""
    normal = [c for c in clips if c.label == 0]
    anomalous = [c for c in clips if c.label == 1]
    mixed = [c for pair in zip(normal, anomalous, strict=False) for c in pair]
    return tuple(mixed + normal[len(anomalous) :] + anomalous[len(normal) :])


def select_calibration_set(
    data_root: str | Path,
    *,
    count: int = 300,
    preprocess: PreprocessConfig,
    snippet_length: int,
    frame_stride: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> CalibrationSet:
    """Choose ``count`` calibration snippets from the training videos of ``data_root`` (see module docstring);
    ``progress``: a bar on a terminal."""
    if count < 1:
        raise CalibrationError(f"--calib-snippets must be >= 1, got {count}")
    root = Path(data_root)
    by_label = _videos_by_label(root, preprocess, snippet_length, frame_stride, progress)
    if not by_label[0] and not by_label[1]:
        raise CalibrationError(f"--calib-data {root}: no readable training videos")
    rng = np.random.default_rng(seed)
    capacity = {lab: sum(n for _, n, _ in vids) for lab, vids in by_label.items()}
    want = {0: (count + 1) // 2, 1: count // 2}
    for lab, other in ((0, 1), (1, 0)):  # a class short of snippets hands its share to the other
        short = max(0, want[lab] - capacity[lab])
        want[lab] -= short
        want[other] += short
    clips: list[CalibrationClip] = []
    for lab in (0, 1):
        vids = by_label[lab]
        order = rng.permutation(len(vids))  # which videos get the remainder picks: seeded, not alphabetical
        quota = _quota([vids[i][1] for i in order], want[lab])
        for q, i in zip(quota, order, strict=True):
            path, n, sha = vids[i]
            info = probe_video(path, verify=False)
            taken = resample_indices(info.num_frames, info.fps, preprocess.frame_rate)  # sample -> frame
            rel = path.relative_to(root).as_posix()
            for idx in picks_in_video(n, q, rng):
                frames = taken[snippet_frame_indices(int(idx), len(taken), snippet_length, frame_stride)]
                clips.append(CalibrationClip(rel, lab, int(idx), tuple(int(f) for f in frames), sha))
    if len(clips) < count:
        log.warning("calibration: asked for %d snippets, the training videos hold only %d", count, len(clips))
    return CalibrationSet(
        clips=_interleaved(clips),
        preprocess=preprocess,
        snippet_length=snippet_length,
        frame_stride=frame_stride,
        seed=seed,
        requested=count,
        source=str(root),
        videos_available={"normal": len(by_label[0]), "anomaly": len(by_label[1])},
    )


def save_calibration_set(cal: CalibrationSet, path: str | Path) -> Path:
    """Write ``calibration_set.json`` (sorted keys, via a temporary file and a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cal.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_calibration_set(path: str | Path) -> CalibrationSet:
    """Read a ``calibration_set.json`` written by :func:`save_calibration_set`; errors name the file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("schema") != CALIBRATION_SCHEMA:
            raise CalibrationError(
                f"{path}: schema must be {CALIBRATION_SCHEMA!r}, got {doc.get('schema')!r}"
            )
        clips = tuple(
            CalibrationClip(
                str(c["video"]),
                int(c["label"]),
                int(c["snippet_index"]),
                tuple(int(f) for f in c["frame_indices"]),
                str(c["sha256"]),
            )
            for c in doc["clips"]
        )
        return CalibrationSet(
            clips=clips,
            preprocess=PreprocessConfig.from_dict(doc["preprocess"]),
            snippet_length=int(doc["snippet_length"]),
            frame_stride=int(doc["frame_stride"]),
            seed=int(doc["seed"]),
            requested=int(doc["requested"]),
            source=str(doc.get("source", "")),
            videos_available=dict(doc.get("videos_available", {})),
        )
    except CalibrationError:
        raise
    except OSError as exc:
        raise CalibrationError(f"cannot read calibration set {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CalibrationError(f"{path} is not a valid calibration set: {type(exc).__name__} {exc}") from None


def iter_video_snippets(
    cal: CalibrationSet, data_root: str | Path, *, verify: bool = True
) -> Iterator[tuple[str, list[CalibrationClip], np.ndarray]]:
    """Per video: ``(video, its clips, snippets (n, C, S, H, W) float32)``, each video decoded once, through
    the same snippet path as training and the device (:func:`snippets_at`).

    With ``verify`` each video's SHA-256 is checked against the file first (a changed video is an error)."""
    root = Path(data_root)
    by_video: dict[str, list[CalibrationClip]] = {}
    for clip in cal.clips:
        by_video.setdefault(clip.video, []).append(clip)
    for video, clips in by_video.items():
        path = root / video
        if not path.is_file():
            raise CalibrationError(f"calibration video {path} is missing (from the calibration set)")
        if verify and sha256_file(path) != clips[0].sha256:
            raise CalibrationError(
                f"calibration video {path} changed since the calibration set was chosen (SHA-256 differs)"
            )
        picked = snippets_at(path, [c.snippet_index for c in clips], cal)
        yield video, clips, np.stack([picked[c.snippet_index] for c in clips])


def snippets_at(path: Path, indices: Sequence[int], cal: CalibrationSet) -> dict[int, np.ndarray]:
    """Snippets ``index -> (C, S, H, W)`` of one video, from the whole-video snippet path that training and
    the device share (frames at the contract's rate; flow needs each frame's predecessor)."""
    from training.data.video_snippets import iter_video_snippets as video_snippets

    wanted = set(indices)
    out: dict[int, np.ndarray] = {}
    for i, snippet in enumerate(video_snippets(path, cal.snippet_length, cal.preprocess, cal.frame_stride)):
        if i in wanted:
            out[i] = snippet
        if len(out) == len(wanted):
            break
    missing = sorted(wanted - set(out))
    if missing:
        raise CalibrationError(
            f"calibration video {path} has no snippet(s) {missing} (it changed or is truncated)"
        )
    return out


def read_snippets(
    cal: CalibrationSet, data_root: str | Path, *, verify: bool = True, progress: bool = True
) -> np.ndarray:
    """All calibration snippets ``(N, 3, S, H, W)`` float32, in the file's clip order (hashes checked);
    ``progress``: a bar on a terminal."""
    order = {id(c): i for i, c in enumerate(cal.clips)}
    out: list[np.ndarray | None] = [None] * len(cal.clips)
    bar = tqdm(
        total=len(cal.clips),
        desc="calibration snippets",
        unit="snippet",
        leave=False,
        disable=None if progress else True,
    )
    with bar:
        for _, clips, snippets in iter_video_snippets(cal, data_root, verify=verify):
            for clip, snippet in zip(clips, snippets, strict=True):
                out[order[id(clip)]] = snippet
            bar.update(len(clips))
    return np.stack(out)  # type: ignore[arg-type]
