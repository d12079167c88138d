"""``scripts/check-tensorrt``: does a bundle run on this GPU's TensorRT as it does on ONNX Runtime, and how fast?

For a machine with an NVIDIA GPU and TensorRT (a Jetson with JetPack, or a workstation): builds the backbone
and head engines at INT8 (the bundle's Q/DQ ONNX) and FP16 (from the FP32 ONNX; TensorRT 10 only), scores
held-out videos with each and with ONNX Runtime FP32 exactly as the device does (one snippet at a time, the
head over the ring of the last ``K`` features), and prints per precision the largest snippet-score
difference, the alert agreement (a video alerts when a snippet reaches the bundle's on-threshold) and the
median latency per snippet (backbone at batch 1, then the head over a full window). Exit 1 on a
disagreement (a difference above ``--max-diff`` or an alert that differs), or when a precision cannot be
built at all; 2 on bad options.

    scripts/check-tensorrt --bundle bundles/orin --videos data/fights/test

No torch: it runs where ``edge-runtime`` runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

PROG = "check-tensorrt"
_VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True, metavar="DIR", help="a bundle exported for target jetson")
    p.add_argument("--videos", required=True, nargs="+", metavar="PATH",
                   help="held-out videos: files, or folders searched recursively (e.g. the test split the "
                   "export was checked on)")  # fmt: skip
    p.add_argument("--max-diff", type=float, default=0.05, metavar="X",
                   help="largest snippet-score difference from ONNX Runtime FP32 that passes (default 0.05)")  # fmt: skip
    p.add_argument("--runs", type=int, default=50, metavar="N", help="timed runs per latency (default 50)")
    p.add_argument("--precisions", nargs="+", choices=("int8", "fp16", "fp32"), default=["int8", "fp16"],
                   help="TensorRT precisions to check (default int8 fp16)")  # fmt: skip
    p.add_argument("--device", default="cuda:0", help="the GPU (default cuda:0)")
    return p


def _videos(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for text in paths:
        p = Path(text).expanduser()
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in _VIDEO_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise ValueError(f"--videos {text}: no such file or folder")
    if not found:
        raise ValueError(f"--videos {' '.join(paths)}: no video files ({', '.join(_VIDEO_SUFFIXES)})")
    return found


def _snippets(bundle: Any, video: Path) -> np.ndarray:
    """The video's snippets ``(n, crops * C, S, H, W)`` as the device's window makes them (frames at the file's
    fps)."""
    from .video import iter_frames, probe_video
    from .window import SnippetWindow

    w = bundle.window
    window = SnippetWindow(bundle.preprocess, w.snippet_length, w.frame_stride, bundle.motion_crops)
    fps = probe_video(video).fps or 25.0
    out = [s.array for i, f in enumerate(iter_frames(video)) if (s := window.push(f, i / fps)) is not None]
    last = window.flush()
    if last is not None:
        out.append(last.array)
    return np.stack(out)


def _scores(models: Any, bundle: Any, clips: list[np.ndarray]) -> list[np.ndarray]:
    """Each video's snippet scores, one snippet at a time through the streaming scorer (as on the device)."""
    from .scoring import StreamingScorer

    result, motion = [], bundle.motion_fusion()
    for clip in clips:
        scorer = StreamingScorer(
            models.backbone, models.head, ["v"], bundle.window.num_snippets, motion=motion
        )
        result.append(np.array([scorer.score({"v": s})["v"] for s in clip], np.float32))
    return result


def _median_ms(fn: Any, runs: int) -> float:
    fn()  # warm-up (first-call allocations)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return float(np.median(times))


def _latency(models: Any, bundle: Any, snippet: np.ndarray, runs: int) -> tuple[float, float]:
    from .motion_fusion import network_input

    bb, head = models.backbone, models.head
    x = np.ascontiguousarray(network_input(snippet[None], bundle.motion_fusion()))  # the centre crop's input
    feats = bb.infer({bb.input_names[0]: x})[bb.output_names[0]]
    window = np.repeat(feats[None], bundle.window.num_snippets, axis=1)  # (1, K, D)
    return (
        _median_ms(lambda: bb.infer({bb.input_names[0]: x}), runs),
        _median_ms(lambda: head.infer({head.input_names[0]: window}), runs),
    )


def _check(args: argparse.Namespace) -> int:
    from .backends import BackendError
    from .bundle import load_bundle
    from .models import load_models

    bundle = load_bundle(args.bundle)
    videos = _videos(args.videos)
    on = bundle.event_policy.on_threshold if bundle.event_policy is not None else bundle.threshold
    clips = [_snippets(bundle, v) for v in videos]
    reference = load_models(bundle, precision="fp32", backend="onnxruntime", device="CPU")
    ref_scores = _scores(reference, bundle, clips)
    ref_alerts = np.array([s.max() >= on for s in ref_scores])
    ref_ms = _latency(reference, bundle, clips[0][0], args.runs)
    reference.close()
    print(f"bundle {args.bundle}: {len(videos)} videos, {sum(len(c) for c in clips)} snippets, "
          f"on-threshold {on:.4f}; ONNX Runtime FP32 alerts {int(ref_alerts.sum())}")  # fmt: skip
    print(f"{'precision':<10} {'max |diff|':>10} {'alerts agree':>13} {'backbone ms':>12} {'head ms':>8}")
    print(
        f"{'ort-fp32':<10} {0.0:>10.4f} {len(videos):>6}/{len(videos):<6} {ref_ms[0]:>12.2f} {ref_ms[1]:>8.2f}"
    )
    failed = False
    for precision in args.precisions:
        try:
            models = load_models(
                bundle, precision=precision, backend="tensorrt", device=args.device, fallback=False
            )
        except BackendError as exc:
            print(f"{precision:<10} not built: {exc}")
            failed = True
            continue
        scores = _scores(models, bundle, clips)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(scores, ref_scores, strict=True))
        agree = int((np.array([s.max() >= on for s in scores]) == ref_alerts).sum())
        ms = _latency(models, bundle, clips[0][0], args.runs)
        models.close()
        bad = diff > args.max_diff or agree < len(videos)
        failed |= bad
        print(f"{precision:<10} {diff:>10.4f} {agree:>6}/{len(videos):<6} {ms[0]:>12.2f} {ms[1]:>8.2f}"
              f"{'  DISAGREES' if bad else ''}")  # fmt: skip
    print("FAILED: TensorRT disagrees with ONNX Runtime FP32 (see above)" if failed else "OK")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 agree, 1 disagree or cannot run, 2 bad options)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    missing = [
        m for m in ("tensorrt", "pycuda") if m not in sys.modules and importlib.util.find_spec(m) is None
    ]
    if missing:
        print(f"{PROG}: error: needs {' and '.join(missing)} (not installed here): run it on a machine with an "
              "NVIDIA GPU and TensorRT (JetPack on a Jetson; elsewhere pip install i3d-mtn-edge[jetson])",
              file=sys.stderr)  # fmt: skip
        return 1
    from .backends import BackendError
    from .bundle import BundleError
    from .video import VideoReadError

    try:
        return _check(args)
    except (BundleError, BackendError, VideoReadError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"{PROG}: error: {first}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
