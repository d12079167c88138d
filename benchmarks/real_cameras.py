"""Real video as other cameras send it: the folds of a ``real_quality --work WORK`` run scored again on their
test clips, re-made as a worse camera or a worse link would deliver them.

A person's cameras are 12 to 30 fps, 320x240 to 1080p, H.264 over links of any quality, by day and by night.
Every test clip of every fold is re-made (H.264 with PyAV, into ``WORK/cameras/CONDITION/foldN``) as:

- ``reencoded``: encoded again at CRF 18 (what a second encoding alone changes: the reference);
- ``starved``: CRF 35, a stream with too little bandwidth (blocks, smeared motion);
- ``small``: 320 px wide (the smallest cameras), CRF 23;
- ``12fps``: 12 frames a second, the source's frames dropped by time;
- ``noisy``: sensor noise (Gaussian, sigma 8 grey levels, seeded per clip), CRF 23;
- ``night``: a third of the light and noise of sigma 4, CRF 23;
- ``handheld``: a camera held in a hand or panning: the frame zoomed by 10 % and moved inside that margin by
  smooth, seeded random pans with jitter (about 0.7 % of the width a frame at 30 fps), CRF 23;
- ``zooming``: a PTZ camera zooming in by 15 % a second towards a seeded point near the centre, CRF 23.

The fold's ``best.pt`` scores them with ``i3dmtn evaluate``, and each condition is compared with the clips as
recorded (the fold's own ``run/eval/report.json``): video AUC and accuracy at the run's threshold (means over
the folds), the mean change of a clip's score, and the share of clips whose decision (alert or not) changed.
Goal: every condition within :data:`GOAL_AUC_DROP` of the recorded AUC, with at most :data:`GOAL_CHANGED` of
the decisions changed; exit status 1 when missed.

    python -m benchmarks.real_quality --work WORK      # trains and evaluates the folds, and keeps them
    python -m benchmarks.real_cameras --work WORK      # ~30 minutes on 2 cores: 5 folds, 8 conditions
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.real_quality import doc_parser, run_cli

__all__ = ["CONDITIONS", "GOAL_AUC_DROP", "GOAL_CHANGED", "compare_reports", "main", "remake_clip"]

GOAL_AUC_DROP = 0.02
GOAL_CHANGED = 0.10
SMALL_WIDTH = 320
LOW_RATE = 12.0
HANDHELD_ZOOM = 1.1  # the frame enlarged by 10 %: the margin the camera moves in
HANDHELD_SPEED = 0.004  # share of the frame a pan's speed changes by, a frame at 30 fps (standard deviation)
ZOOM_SPEED = 0.15  # how much larger the picture gets a second while a PTZ camera zooms in

Frames = list[np.ndarray]


def _noisy(frames: Frames, rng: np.random.Generator, sigma: float, gain: float = 1.0) -> Frames:
    return [
        np.clip(f.astype(np.float32) * gain + rng.normal(0.0, sigma, f.shape), 0, 255).astype(np.uint8)
        for f in frames
    ]


def _small(frames: Frames) -> Frames:
    import cv2

    h, w = frames[0].shape[:2]
    if w <= SMALL_WIDTH:
        return frames
    size = (SMALL_WIDTH, max(2, round(SMALL_WIDTH * h / w)))
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def _low_rate(frames: Frames, fps: float) -> tuple[Frames, float]:
    if fps <= LOW_RATE:
        return frames, fps
    count = int(len(frames) * LOW_RATE / fps)
    return [frames[int(i * fps / LOW_RATE)] for i in range(count)], LOW_RATE


def _handheld(frames: Frames, fps: float, rng: np.random.Generator) -> Frames:
    """The frames as a hand-held camera films them: zoomed by :data:`HANDHELD_ZOOM` and moved by a random
    pan whose speed decays by a fifth a frame and changes by :data:`HANDHELD_SPEED` (at 30 fps), kept
    inside the zoom's margin."""
    import cv2

    h, w = frames[0].shape[:2]
    margin = 0.9 * (HANDHELD_ZOOM - 1) / 2
    position, speed, out = np.zeros(2), np.zeros(2), []
    for frame in frames:
        speed = 0.8 * speed + rng.normal(0.0, HANDHELD_SPEED * 30 / fps, 2)
        position = np.clip(position + speed, -margin, margin)
        shift = (1 - HANDHELD_ZOOM) * np.array([w, h]) / 2 + position * [w, h]
        warp = np.array([[HANDHELD_ZOOM, 0, shift[0]], [0, HANDHELD_ZOOM, shift[1]]])
        out.append(cv2.warpAffine(frame, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out


def _zooming(frames: Frames, fps: float, rng: np.random.Generator) -> Frames:
    """The frames as a PTZ camera zooming in films them: enlarged by :data:`ZOOM_SPEED` a second (the first
    frame as it was) about a point within a tenth of the frame of its centre."""
    import cv2

    h, w = frames[0].shape[:2]
    centre = (w * (0.5 + rng.uniform(-0.1, 0.1)), h * (0.5 + rng.uniform(-0.1, 0.1)))
    return [
        cv2.warpAffine(
            frame,
            cv2.getRotationMatrix2D(centre, 0.0, 1.0 + ZOOM_SPEED * i / fps),
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        for i, frame in enumerate(frames)
    ]


@dataclass(frozen=True)
class Condition:
    """How a clip is re-made: its frames and rate through ``change``, then H.264 at ``crf``."""

    what: str
    crf: int
    change: Callable[[Frames, float, np.random.Generator], tuple[Frames, float]]


CONDITIONS: dict[str, Condition] = {
    "reencoded": Condition("encoded again at CRF 18", 18, lambda f, fps, rng: (f, fps)),
    "starved": Condition("CRF 35: too little bandwidth", 35, lambda f, fps, rng: (f, fps)),
    "small": Condition(f"{SMALL_WIDTH} px wide", 23, lambda f, fps, rng: (_small(f), fps)),
    "12fps": Condition(f"{LOW_RATE:g} frames a second", 18, lambda f, fps, rng: _low_rate(f, fps)),
    "noisy": Condition("sensor noise, sigma 8", 23, lambda f, fps, rng: (_noisy(f, rng, 8.0), fps)),
    "night": Condition(
        "a third of the light, noise 4", 23, lambda f, fps, rng: (_noisy(f, rng, 4.0, 0.35), fps)
    ),
    "handheld": Condition(
        "hand-held: pans and jitter", 23, lambda f, fps, rng: (_handheld(f, fps, rng), fps)
    ),
    "zooming": Condition(
        f"a PTZ camera zooming in, {ZOOM_SPEED:.0%}/s", 23, lambda f, fps, rng: (_zooming(f, fps, rng), fps)
    ),
}


def _write_h264(path: Path, frames: Frames, fps: float, crf: int) -> None:
    import av

    h, w = (d // 2 * 2 for d in frames[0].shape[:2])  # yuv420p needs even sides
    part = path.with_name(path.name + ".part")
    with av.open(str(part), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(round(fps * 1000), 1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="bgr24")
            out.mux(stream.encode(image))
        out.mux(stream.encode())
    part.replace(path)  # a killed run leaves a .part, never a short clip under the final name


def remake_clip(src: Path, dst: Path, condition: Condition) -> Path:
    """Write ``src`` re-made under ``condition`` to ``dst`` (H.264 mp4; the noise seeded by the clip's name, so
    a run again writes the same frames). An existing ``dst`` is kept: a stopped run resumes."""
    from edge_runtime.video import iter_frames, probe_video

    if dst.is_file():
        return dst
    fps = probe_video(src, verify=False).fps or 25.0
    rng = np.random.default_rng(zlib.crc32(src.name.encode()))
    frames, rate = condition.change(list(iter_frames(src)), fps, rng)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _write_h264(dst, frames, rate, condition.crf)
    return dst


def _scores(report: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """A report's clips by label and file stem (a re-made ``.avi`` is an ``.mp4``): ``(label, score)``."""
    return {
        f"{v['label']}/{Path(v['video']).stem}": (int(v["label"]), float(v["score"]))
        for v in report["videos"]
    }


def compare_reports(recorded: dict[str, Any], remade: dict[str, Any]) -> dict[str, float]:
    """One fold, one condition: the video AUC and accuracy of both reports at the recorded run's threshold,
    over the clips both scored, the mean change of a clip's score and how many clips' decisions changed."""
    from sklearn.metrics import roc_auc_score

    a, b = _scores(recorded), _scores(remade)
    names = sorted(set(a) & set(b))
    if not names:
        raise ValueError("the two reports share no clip")
    threshold = float(recorded["threshold"])
    labels = np.array([a[n][0] for n in names])
    before, after = np.array([a[n][1] for n in names]), np.array([b[n][1] for n in names])
    return {
        "clips": len(names),
        "auc_recorded": float(roc_auc_score(labels, before)),
        "auc": float(roc_auc_score(labels, after)),
        "accuracy_recorded": float(((before >= threshold) == labels).mean()),
        "accuracy": float(((after >= threshold) == labels).mean()),
        "shift": float((after - before).mean()),
        "changed": int(((after >= threshold) != (before >= threshold)).sum()),
    }


def _folds(work: Path) -> list[Path]:
    return sorted(
        p
        for p in work.glob("fold*")
        if (p / "run" / "best.pt").is_file() and (p / "run" / "eval" / "report.json").is_file()
    )


def _fold_condition(fold: Path, name: str, work: Path, threads: int) -> dict[str, float]:
    from training.data.records import VIDEO_EXTENSIONS

    test = fold / "data" / "test"
    here = work / "cameras" / name / fold.name
    for src in sorted(p for p in test.glob("*/*") if p.suffix.lower() in VIDEO_EXTENSIONS):
        remake_clip(src, here / "clips" / src.parent.name / (src.stem + ".mp4"), CONDITIONS[name])
    args = ["evaluate", "--model_path", str(fold / "run" / "best.pt"), "--test_path", str(here / "clips")]
    run_cli(args + ["--output", str(here / "eval"), "--no-progress"], here / "evaluate.log", threads)
    recorded = json.loads((fold / "run" / "eval" / "report.json").read_text())
    return compare_reports(recorded, json.loads((here / "eval" / "report.json").read_text()))


def _summary(rows: dict[str, list[dict[str, float]]]) -> tuple[list[str], bool]:
    lines = [
        f"{'condition':<10} {'what':<31} {'AUC':>6} {'drop':>6} {'acc':>6} {'shift':>7} {'changed':>9}",
    ]
    first = next(iter(rows.values()))
    recorded_auc = float(np.mean([r["auc_recorded"] for r in first]))
    recorded_acc = float(np.mean([r["accuracy_recorded"] for r in first]))
    lines.append(
        f"{'recorded':<10} {'the clips as recorded':<31} {recorded_auc:6.3f} {'':>6} {recorded_acc:6.3f}"
    )
    met = True
    for name, folds in rows.items():
        auc = float(np.mean([r["auc"] for r in folds]))
        drop = float(np.mean([r["auc_recorded"] - r["auc"] for r in folds]))
        clips, changed = sum(r["clips"] for r in folds), sum(r["changed"] for r in folds)
        shift = float(np.average([r["shift"] for r in folds], weights=[r["clips"] for r in folds]))
        ok = drop <= GOAL_AUC_DROP and changed <= GOAL_CHANGED * clips
        met &= ok
        lines.append(
            f"{name:<10} {CONDITIONS[name].what:<31} {auc:6.3f} {drop:+6.3f} "
            f"{np.mean([r['accuracy'] for r in folds]):6.3f} {shift:+7.3f} {changed:>4}/{clips:<4}"
            + ("" if ok else "  MISSED")
        )
    return lines, met


def main(argv: list[str] | None = None) -> int:
    parser = doc_parser("benchmarks.real_cameras", __doc__)
    parser.add_argument("--work", type=Path, required=True, help="WORK of a real_quality --work WORK run")
    parser.add_argument(
        "--conditions",
        nargs="+",
        choices=list(CONDITIONS),
        default=list(CONDITIONS),
        metavar="NAME",
        help=f"which to make (default: all of {', '.join(CONDITIONS)})",
    )
    opts = parser.parse_args(argv)
    folds = _folds(opts.work) if opts.work.is_dir() else []
    if not folds:
        parser.error(
            f"--work {opts.work}: no fold with run/best.pt and run/eval/report.json "
            "(the WORK of python -m benchmarks.real_quality --work WORK)"
        )
    threads = os.cpu_count() or 1
    print(f"{len(folds)} folds of {opts.work}; conditions {', '.join(opts.conditions)}", flush=True)
    rows: dict[str, list[dict[str, float]]] = {}
    for name in opts.conditions:
        rows[name] = [_fold_condition(fold, name, opts.work, threads) for fold in folds]
        print(f"  {name}: done", flush=True)
    lines, met = _summary(rows)
    print("\n".join(lines))
    print(
        f"goal: every condition's video AUC within {GOAL_AUC_DROP} of the clips as recorded and at most "
        f"{GOAL_CHANGED:.0%} of the decisions changed: {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
