"""A seeded generator of synthetic fight / normal surveillance videos, written as real mp4 files.

Normal scenes: a textured static background (smoothed noise, gradients, a horizon, a few blocks) with
several stick-and-blob people (head, body, arms, legs) walking smoothly across at varied speeds, sizes and
colours; sometimes two of them meet and stand together, talking (close, but calm). Anomalous scenes add a
"fight": two people walk up to each other and, during one interval, jitter, lunge and flail their limbs fast
and erratically, then walk off. Frame labels are 1 exactly in that interval.

Per video the lighting (global gain, tint, offset, slow flicker), camera noise, figure count / size / speed
and the interval's position and length vary, so per-frame brightness says nothing about the fight while
motion statistics do (the tests check both). Everything is drawn relative to the frame height, so tiny test
videos look like the default ones.

Layout written by :func:`generate_dataset`::

    OUT/{train,val,test}/{normal,anomaly}/*.mp4
    OUT/<split>/annotations.json   # [{"video_path": "anomaly/fight_0003.mp4", "label": 1, "num_frames": 96,
                                   #   "fps": 25.0, "frame_annotations": [0, 0, 1, ...]}, ...]

Determinism: each video has its own random stream derived from ``(seed, split, class, index)``, so the same
seed gives the same frames, and OpenCV's ``mp4v`` writer turns the same frames into byte-identical files (on
one OpenCV build; another build of the codec may encode differently, the decoded frames stay close).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from training.synth_scene import Figure, fight_pair, jumper, meeting_pair, walker

__all__ = [
    "SPLITS",
    "SynthConfig",
    "SynthError",
    "generate_dataset",
    "generate_gym",
    "render_gym",
    "render_video",
    "write_annotations",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_CLASSES = (("normal", 0, "walk"), ("anomaly", 1, "fight"))
_SHIFT = 4  # sub-pixel drawing: coordinates in 1/16 px, so slow walkers move smoothly
_ONE = 1 << _SHIFT
_GYM = "gym"  # file prefix of the gym scenes (generate_gym)


class SynthError(ValueError):
    """A bad generator setting (the message names the field) or an output folder that is not empty."""


@dataclass
class SynthConfig:
    """What to generate; every number here has a matching ``i3dmtn synth`` option."""

    out: Path  # output folder (created)
    seed: int = 0  # one seed pins every video
    # (train_normal, train_anomaly, val_normal, val_anomaly, test_normal, test_anomaly): small and balanced
    videos: tuple[int, int, int, int, int, int] = (8, 8, 4, 4, 4, 4)
    frames: int = 96  # 6 snippets of 16 frames: enough for MIL to have normal and fight snippets per video
    size: tuple[int, int] = (160, 120)  # (W, H): QQVGA, large enough for a 64x64 debug crop, fast to write
    fps: float = 25.0  # a common camera rate
    # fraction of a video's frames the fight lasts, drawn uniformly from this range per anomalous video
    fight_fraction: tuple[float, float] = field(default=(0.25, 0.5))

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if int(self.seed) < 0:
            raise SynthError(f"seed must be an integer >= 0, got {self.seed}")
        self.seed = int(self.seed)
        self.videos = tuple(int(v) for v in self.videos)  # type: ignore[assignment]
        if len(self.videos) != 6 or any(v < 0 for v in self.videos):
            raise SynthError(
                f"videos must be six counts >= 0 (train/val/test x normal/anomaly), got {self.videos}"
            )
        if sum(self.videos) == 0:
            raise SynthError("videos must ask for at least one video, got all zeros")
        if int(self.frames) < 8:
            raise SynthError(
                f"frames must be >= 8 (room for a fight with normal frames around it), got {self.frames}"
            )
        self.frames = int(self.frames)
        w, h = (int(v) for v in self.size)
        if w < 32 or h < 32 or w % 2 or h % 2:
            raise SynthError(f"size must be even W x H, each >= 32 (mp4v needs even sizes), got {w}x{h}")
        self.size = (w, h)
        if not float(self.fps) > 0:
            raise SynthError(f"fps must be > 0, got {self.fps}")
        self.fps = float(self.fps)
        lo, hi = (float(v) for v in self.fight_fraction)
        if not 0 < lo <= hi <= 0.75:
            raise SynthError(f"fight_fraction must be 0 < low <= high <= 0.75, got ({lo}, {hi})")
        self.fight_fraction = (lo, hi)


# ----------------------------------------------------------------------------------------------- drawing
def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A static textured scene (float32 BGR): wall / ground split, smooth blotches, a gradient, a few blocks."""
    horizon = int(rng.uniform(0.3, 0.55) * h)
    wall, ground = rng.uniform(50, 200, 3), rng.uniform(50, 200, 3)
    img = np.empty((h, w, 3), np.float32)
    img[:horizon], img[horizon:] = wall, ground
    cells = (int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    blotches = cv2.resize(
        rng.normal(0, 1, (*cells, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 0.02 * h + 0.5)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None]
    img += blotches * rng.uniform(8, 25) + fine * rng.uniform(4, 12) * 3 + ramp * rng.uniform(-40, 40)
    for _ in range(int(rng.integers(1, 5))):  # windows, doors, benches
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        bw, bh = int(rng.uniform(0.05, 0.25) * w), int(rng.uniform(0.05, 0.3) * h)
        cv2.rectangle(img, (x0, y0), (x0 + bw, y0 + bh), rng.uniform(20, 235, 3).tolist(), -1)
    return np.clip(img, 0, 255)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _ONE)), int(round(y * _ONE))


def _draw_figure(img: np.ndarray, fig: Figure, t: int) -> None:
    """One person at frame ``t``: legs, body, arms, head (cv2 primitives, anti-aliased, sub-pixel)."""
    h, face = fig.height, fig.facing[t]
    hip = np.array([fig.x[t], fig.feet[t] - 0.47 * h])
    lean = fig.lean[t]
    neck = hip + 0.33 * h * np.array([face * np.sin(lean), -np.cos(lean)])
    thick = max(1, int(round(0.075 * h)))
    for angle in fig.legs[t]:
        foot = hip + 0.47 * h * np.array([np.sin(angle), np.cos(angle)])
        cv2.line(img, _pt(*hip), _pt(*foot), fig.pants, thick, cv2.LINE_AA, _SHIFT)
    cv2.line(img, _pt(*hip), _pt(*neck), fig.shirt, max(1, int(round(0.15 * h))), cv2.LINE_AA, _SHIFT)
    shoulder = neck + np.array([0.0, 0.04 * h])
    for upper, fore in fig.arms[t]:
        elbow = shoulder + 0.19 * h * np.array([face * np.sin(upper), np.cos(upper)])
        hand = elbow + 0.17 * h * np.array([face * np.sin(fore), np.cos(fore)])
        cv2.line(
            img, _pt(*shoulder), _pt(*elbow), fig.shirt, max(1, int(round(0.06 * h))), cv2.LINE_AA, _SHIFT
        )
        cv2.line(img, _pt(*elbow), _pt(*hand), fig.skin, max(1, int(round(0.045 * h))), cv2.LINE_AA, _SHIFT)
    head = neck + 0.11 * h * np.array([face * np.sin(lean), -np.cos(lean)])
    cv2.circle(img, _pt(*head), int(round(0.085 * h * _ONE)), fig.skin, -1, cv2.LINE_AA, _SHIFT)


def _lighting(rng: np.random.Generator, frames: int, fps: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-channel gain (contrast x tint), per-frame offset (brightness + slow flicker), noise sigma."""
    gain = rng.uniform(0.55, 1.25) * rng.uniform(0.85, 1.15, 3)
    t = np.arange(frames) / fps
    flicker = rng.uniform(0, 10) * np.sin(2 * np.pi * t / rng.uniform(1.5, 6.0) + rng.uniform(0, 2 * np.pi))
    offset = 128 * (1 - gain.mean()) + rng.uniform(-45, 45) + flicker
    return gain.astype(np.float32), offset.astype(np.float32), float(rng.uniform(0.5, 4.0))


def _fight_interval(rng: np.random.Generator, frames: int, fraction: tuple[float, float]) -> tuple[int, int]:
    """``[start, end)`` of the fight, with normal frames before and after it."""
    length = max(2, int(round(rng.uniform(*fraction) * frames)))
    margin = max(1, frames // 8)
    length = min(length, frames - 2 * margin)
    start = int(rng.integers(margin, frames - margin - length + 1))
    return start, start + length


def render_video(
    path: str | Path,
    rng: np.random.Generator,
    label: int,
    frames: int,
    size: tuple[int, int],
    fps: float,
    fight_fraction: tuple[float, float] = (0.25, 0.5),
) -> list[int]:
    """Draw one video (``label`` 1: with a fight) and write it to ``path`` as mp4v; returns the frame labels."""
    w, h = size
    bg = _background(rng, w, h)
    lighting = _lighting(rng, frames, fps)
    # anomalous videos get one walker fewer on average, for their fighting pair: the people count is no cue
    n_walkers = int(rng.integers(1, 4)) if label else int(rng.integers(2, 5))
    figures = [walker(rng, frames, w, h, fps) for _ in range(n_walkers)]
    labels = np.zeros(frames, np.int64)
    if label:
        start, end = _fight_interval(rng, frames, fight_fraction)
        figures += fight_pair(rng, frames, w, h, fps, start, end)
        labels[start:end] = 1
    elif rng.random() < 0.5:  # a calm meeting: close together but slow, the hard negative
        start, end = _fight_interval(rng, frames, fight_fraction)
        figures += meeting_pair(rng, frames, w, h, fps, start, end)
    _write_video(Path(path), rng, bg, lighting, figures, frames, fps)
    return labels.tolist()


def render_gym(
    path: str | Path, rng: np.random.Generator, frames: int, size: tuple[int, int], fps: float
) -> None:
    """Draw one calm gym scene (two to four people doing jumping jacks, sometimes someone walking past) and
    write it to ``path`` as mp4v: every frame is normal."""
    w, h = size
    bg = _background(rng, w, h)
    lighting = _lighting(rng, frames, fps)
    figures = [jumper(rng, frames, w, h, fps) for _ in range(int(rng.integers(2, 5)))]
    figures += [walker(rng, frames, w, h, fps) for _ in range(int(rng.integers(0, 2)))]
    _write_video(Path(path), rng, bg, lighting, figures, frames, fps)


def _write_video(
    path: Path,
    rng: np.random.Generator,
    bg: np.ndarray,
    lighting: tuple[np.ndarray, np.ndarray, float],
    figures: list[Figure],
    frames: int,
    fps: float,
) -> None:
    """The figures over the background, lit and with camera noise, frame by frame into an mp4v file."""
    gain, offset, sigma = lighting
    h, w = bg.shape[:2]
    base = np.clip(bg, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise SynthError(f"cannot open an mp4v video writer for {path}")
    try:
        for t in range(frames):
            canvas = base.copy()
            for fig in sorted(figures, key=lambda f: f.feet[t]):  # far (higher) people first
                _draw_figure(canvas, fig, t)
            frame = canvas.astype(np.float32) * gain + offset[t]
            frame += rng.standard_normal((h, w, 3), dtype=np.float32) * sigma
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    finally:
        writer.release()


# ----------------------------------------------------------------------------------------------- data set
def _video_rng(seed: int, split: int, label: int, index: int) -> np.random.Generator:
    """One independent stream per video: changing how many videos are asked for does not change the others."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), split, label, index]))


def write_annotations(path: Path, records: list[dict[str, Any]]) -> None:
    """Write a split's annotations.json: a JSON list, one record per line (readable and diff-friendly)."""
    body = ",\n".join(json.dumps(r, separators=(", ", ": ")) for r in records)
    path.write_text(f"[\n{body}\n]\n" if records else "[]\n", encoding="utf-8")


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SynthError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise SynthError(f"output folder {out} is not empty (use --force to overwrite)")
        # remove only what this generator writes, so stale videos of an earlier, larger run do not linger
        for split in SPLITS:
            for cls, _, _ in _CLASSES:
                for old in (out / split / cls).glob("*.mp4"):
                    old.unlink()
            (out / split / "annotations.json").unlink(missing_ok=True)


def generate_dataset(cfg: SynthConfig, progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Write the whole data set described by ``cfg``; returns a summary (folders, counts, annotation files).

    Refuses (:class:`SynthError`) a non-empty ``cfg.out`` unless ``overwrite``, which then replaces only the
    generator's own files (``*/normal/*.mp4``, ``*/anomaly/*.mp4``, ``*/annotations.json``).
    """
    _prepare_out(cfg.out, overwrite)
    counts = dict(zip([(s, c) for s in SPLITS for c, _, _ in _CLASSES], cfg.videos, strict=True))
    jobs = [
        (si, split, cls, label, prefix, i)
        for si, split in enumerate(SPLITS)
        for cls, label, prefix in _CLASSES
        for i in range(counts[(split, cls)])
    ]
    records: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for si, split, cls, label, prefix, i in tqdm(
        jobs, desc="synth videos", unit="video", disable=not progress
    ):
        rel = f"{cls}/{prefix}_{i:04d}.mp4"
        frame_labels = render_video(
            cfg.out / split / rel,
            _video_rng(cfg.seed, si, label, i),
            label,
            cfg.frames,
            cfg.size,
            cfg.fps,
            cfg.fight_fraction,
        )
        records[split].append(
            {
                "video_path": rel,
                "label": label,
                "num_frames": cfg.frames,
                "fps": cfg.fps,
                "frame_annotations": frame_labels,
            }
        )
    summary: dict[str, Any] = {"out": str(cfg.out), "seed": cfg.seed, "videos": len(jobs), "splits": {}}
    for split in SPLITS:
        (cfg.out / split).mkdir(parents=True, exist_ok=True)
        ann = cfg.out / split / "annotations.json"
        write_annotations(ann, records[split])
        summary["splits"][split] = {
            "normal": counts[(split, "normal")],
            "anomaly": counts[(split, "anomaly")],
            "annotations": str(ann),
            "videos": [str(cfg.out / split / r["video_path"]) for r in records[split]],
        }
    logger.debug("wrote %d synthetic videos to %s", len(jobs), cfg.out)
    return summary


def generate_gym(
    cfg: SynthConfig, count: int, progress: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Write ``count`` calm gym scenes (:func:`render_gym`) as ``cfg.out/normal/gym_NNNN.mp4`` with
    ``cfg.out/annotations.json`` (all frames 0): one split in the seed's layout. ``cfg``'s seed, frames, size
    and fps apply (its ``videos`` and ``fight_fraction`` are the fight set's). The scenes have their own random
    streams, so a gym scene never repeats a video of :func:`generate_dataset` with the same seed.

    Refuses (:class:`SynthError`) a non-empty ``cfg.out`` unless ``overwrite``, which then replaces only the
    gym scenes and ``annotations.json``."""
    if int(count) < 1:
        raise SynthError(f"gym must be a number of scenes >= 1, got {count}")
    out = cfg.out
    if out.exists() and not out.is_dir():
        raise SynthError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise SynthError(f"output folder {out} is not empty (use --force to overwrite)")
        for old in (out / "normal").glob(f"{_GYM}_*.mp4"):
            old.unlink()
        (out / "annotations.json").unlink(missing_ok=True)
    records = []
    for i in tqdm(range(int(count)), desc="synth gym scenes", unit="video", disable=not progress):
        rel = f"normal/{_GYM}_{i:04d}.mp4"
        render_gym(out / rel, _video_rng(cfg.seed, len(SPLITS), 0, i), cfg.frames, cfg.size, cfg.fps)
        records.append({"video_path": rel, "label": 0, "num_frames": cfg.frames, "fps": cfg.fps,
                        "frame_annotations": [0] * cfg.frames})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_annotations(out / "annotations.json", records)
    return {"out": str(out), "seed": cfg.seed, "videos": len(records),
            "annotations": str(out / "annotations.json"), "files": [str(out / r["video_path"]) for r in records]}  # fmt: skip
