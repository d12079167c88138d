"""Event clip cost per camera: the pre-capture ring (always on) and the clip encoder (during events).

Frames of a real video (the reference data's first fight video when present, else a generated one) are
shrunk to the model's input size as the capture thread does (edge_runtime.preprocess.resize_frame, short
side 224 by default): clips are recorded at that size. Measured in this process, on one core:

- ring: CPU per frame of :meth:`FrameRing.push` (BGR -> I420 copy) and the ring's memory for the default
  ring length (pre 3 s + min duration 1 s + one snippet + 1 s) at 30 fps;
- encoder: CPU per frame of a :class:`ClipWriter` (libx264 ultrafast crf 26, one thread), as the share of one
  core a 30 fps camera costs while an event is recorded, and the clip's bytes per second;
- start: the time the ``start`` message waits for its clip (:meth:`CameraClips.hold` notes it; the writer is
  begun by :meth:`CameraClips.begin` after the message is sent), and the time ``begin`` takes.

Goal: <= 5 % of one core per camera at 30 fps while recording.

    python -m benchmarks.clips               # or: i3dmtn bench clips
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "surveillance-fight" / "fight" / "fi001.mp4"
FPS = 30.0


def _frames(seconds: float) -> tuple[list[np.ndarray], str]:
    from edge_runtime.preprocess import PreprocessConfig, resize_frame
    from edge_runtime.video import iter_frames

    cfg = PreprocessConfig()
    if VIDEO.is_file():
        frames, where = list(iter_frames(VIDEO)), str(VIDEO.relative_to(ROOT.parent))
    else:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
        frames, where = [np.roll(base, 3 * i, axis=1) for i in range(60)], "generated 640x360 frames"
    small = [resize_frame(f, cfg) for f in frames]
    n = int(seconds * FPS)
    return [small[i % len(small)] for i in range(n)], where


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    from edge_runtime.clip_store import ClipStore
    from edge_runtime.clips import CameraClips, FrameRing

    parser = argparse.ArgumentParser(prog="benchmarks.clips", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s of frames instead of 20 s")
    args = parser.parse_args(argv)
    seconds = 10.0 if args.quick else 20.0
    frames, where = _frames(seconds)
    h, w = frames[0].shape[:2]
    print(f"frames: {where}, {w}x{h} (model input size), {len(frames)} frames = {seconds:g} s at {FPS:g} fps")

    ring_s = 3.0 + 1.0 + 16 / 25 + 1.0
    ring = FrameRing(ring_s)
    cpu = _cpu()
    for i, frame in enumerate(frames):
        ring.push(i / FPS, frame)
    ring_ms = (_cpu() - cpu) / len(frames) * 1000
    print(f"ring: {ring_ms:.3f} ms CPU per frame = {ring_ms * FPS / 10:.2f} % of one core at 30 fps; "
          f"{ring_s:.2f} s held = {len(ring)} frames = {ring.nbytes / 1e6:.1f} MB per camera")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        store = ClipStore(Path(tmp), budget_bytes=10**10, max_age_s=86400)
        clips = CameraClips("bench", store, pre_s=3.0, post_s=2.0, max_s=600.0, ring_s=ring_s, codec="h264",
                            fps=FPS)  # fmt: skip
        pre = int(ring_s * FPS)
        for i in range(pre):
            clips.feed(i / FPS, frames[i])
        cpu = _cpu()
        began = time.perf_counter()
        start = {"type": "start", "event_id": "bench-event", "started_at": (pre - 1) / FPS - 1.0}
        sent = clips.hold([start])  # what the start message waits for
        held_s = time.perf_counter() - began
        clips.begin()  # after the start is sent
        begin_s = time.perf_counter() - began - held_s
        assert sent == [start]
        for i in range(pre, len(frames)):
            clips.feed(i / FPS, frames[i])
        clips.hold([{"type": "end", "event_id": "bench-event", "ended_at": (len(frames) - 1) / FPS}])
        (end,) = clips.close(timeout=600)
        wall = time.perf_counter() - began
        encode_cpu = _cpu() - cpu - ring_ms / 1000 * (len(frames) - pre)
        clip = end["clip"]
        per_frame = encode_cpu / clip["frames"] * 1000
        print(f"encoder (libx264 ultrafast, 1 thread): {per_frame:.2f} ms CPU per frame = "
              f"{per_frame * FPS / 10:.1f} % of one core at 30 fps while recording (goal <= 5 %); "
              f"{clip['frames']} frames in {wall:.2f} s wall")  # fmt: skip
        print(f"clip: {clip['duration_s']:.1f} s, {clip['size_bytes'] / 1e3:.0f} kB = "
              f"{clip['size_bytes'] / clip['duration_s'] / 1e3:.0f} kB/s")  # fmt: skip
        print(f"start: the start message waits {held_s * 1e6:.0f} us for the clip; the writer begins after it "
              f"is sent ({begin_s * 1e3:.1f} ms on the scoring thread)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
