"""Runtime benchmark: the whole device loop, with a synthetic full-width I3D INT8 bundle or any exported bundle.

``python -m benchmarks.runtime [--quick] [--work DIR] [--bundle DIR] [--max-cameras N]`` measures, in one
process, against a real broker:

a. frames per second end to end (one file source, as fast as possible) vs the backbone alone (the limit);
b. how many 30 fps cameras one process sustains without dropping frames (file sources played in real time),
   and the CPU share at that count; a trial lasts at least ten times what a camera's queue holds
   (:func:`edge_runtime.capture_queue.default_queue`; not with ``--quick``), so a loop that falls a tenth behind the
   cameras fills it and drops (a bundle of 2.1-s snippets queues 3.2 s: 8-s trials hid a loop that fell behind
   at 8 cameras);
c. the CPU share used by one live 30 fps camera;
d. latency from the last frame of a "fight" snippet to the MQTT ``start`` at a subscriber (``min_duration 0``);
e. backbone passes of streaming (one per snippet) vs re-scoring the whole K-snippet window every snippet;
f. the share of the loop's time in preprocessing (resampling, resize, colour or flow), the backbone, the head
   and waiting idle for frames, from the runtime's own counters (``preprocess_s``, ``backbone_s``, ``head_s``,
   ``idle_s`` of its ``/stats``) over the run's wall time (the rest, "other": taking frames from the queues,
   events, bookkeeping, and on a loaded machine waiting for a core): at (b)'s largest camera count without
   drops, and in (a)'s as-fast-as-possible run;

and prints a table with the goals; the exit status is 1 when a goal is missed (a goal the run cannot reach,
such as 8 cameras under ``--quick``'s cap of 3, is shown as not checked).

Without ``--bundle`` the model is random-init full-width I3D with a linear probe head (see
:mod:`benchmarks.runtime_models`) on flat 320x240 videos: the speed is that of the real network; the scores
only mark bright frames. With ``--bundle DIR`` an exported bundle runs with its own head, preprocessing (flow
included) and frame rate on 640x360 30 fps videos of moving shapes. Its events do not come on cue, so (d) is
not run, and (a) has no goal: a small backbone's limit is far above what decoding and preprocessing allow.

``--rtsp [--seconds S]`` measures instead ``edge-runtime`` processes reading H.264 RTSP streams from a real
server (cameras held at 30 fps at 640x360, goal >= 8, and at 1080p; memory, CPU with decoding's and the
model's shares, open and stop times): see :mod:`benchmarks.runtime_rtsp`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.runtime_models import BRIGHT, DARK, FPS, build_bundle, flat_frames, moving_frames
from edge_runtime.backends import BackendError
from edge_runtime.broker import LocalBroker
from edge_runtime.bundle import Bundle, BundleError, load_bundle
from edge_runtime.capture_queue import default_queue, queue_seconds
from edge_runtime.events import EventPolicy
from edge_runtime.models import LoadedModels, load_models
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import MqttSettings
from edge_runtime.outbox import Outbox
from edge_runtime.runtime import Runtime, RuntimeConfig
from edge_runtime.sources import FileSource
from edge_runtime.video import write_video

log = logging.getLogger(__name__)

CAMERA_GOAL, CPU_GOAL, RATIO_GOAL, LATENCY_GOAL_MS = 8, 0.15, 0.5, 250.0
TRIAL_QUEUES = 10  # (b): a trial lasts at least this many times a camera's queue


def _video(path: Path, pattern: list[tuple[float, int]]) -> Path:
    if not path.exists():
        frames = [f for seconds, value in pattern for f in flat_frames(value, round(seconds * FPS))]
        write_video(path, frames, FPS)
    return path


def _scene(ctx: dict[str, Any], name: str, seconds: float) -> Path:
    """A ``seconds`` long 30 fps video of the run's scene: flat dark frames, or moving shapes (``--bundle``)."""
    path = ctx["work"] / f"{name}-{ctx['scene']}-{seconds:g}.mp4"
    if ctx["scene"] == "flat":
        return _video(path, [(seconds, DARK)])
    if not path.exists():
        write_video(path, moving_frames(round(seconds * FPS)), FPS)
    return path


def frames_per_snippet(bundle: Bundle, fps: float = FPS) -> float:
    """Frames of an ``fps`` video that one snippet spans: ``S`` x stride at the contract's frame rate."""
    rate = bundle.preprocess.frame_rate
    return bundle.window.snippet_length * bundle.window.frame_stride * (fps / rate if rate else 1.0)


def _run(bundle: Any, models: LoadedModels, broker: LocalBroker, work: Path, sources: list[tuple[str, Any]],
         **policy: float) -> tuple[Runtime, float, float]:  # fmt: skip
    """One runtime run to the end of its sources; ``(runtime, wall s, CPU s)``."""
    outbox = Outbox(work / f"outbox-{time.monotonic_ns()}.sqlite")
    publisher = MqttPublisher(MqttSettings(port=broker.port), "bench", outbox)
    config = RuntimeConfig(device_id="bench", policy=EventPolicy(**{"on_threshold": 0.5, **policy}),
                           stats_interval_s=3600, flush_timeout_s=5)  # fmt: skip
    runtime = Runtime(bundle, models, sources, publisher, config)
    t0, c0 = time.monotonic(), time.process_time()
    runtime.run()
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    outbox.close()
    return runtime, wall, cpu


def loop_shares(runtime: Runtime, wall: float) -> dict[str, float]:
    """Shares of a run's wall time the loop spent in each part, from the runtime's own counters."""
    parts = {
        "preprocess": runtime.stats.preprocess_s,
        "backbone": runtime.scorer.backbone_s,
        "head": runtime.scorer.head_s,
        "idle": runtime.stats.idle_s,
    }
    return {name: seconds / wall for name, seconds in parts.items()}


def backbone_limit(bundle: Bundle, models: LoadedModels, repeats: int) -> float:
    """Backbone-only frames per second at batch 1, counted in 30 fps video frames (what one snippet spans)."""
    shape = (1, bundle.preprocess.channels, bundle.window.snippet_length, *bundle.preprocess.crop_size)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    name = models.backbone.input_names[0]
    models.backbone.infer({name: x})  # warm up
    t0 = time.perf_counter()
    for _ in range(repeats):
        models.backbone.infer({name: x})
    return repeats * frames_per_snippet(bundle) / (time.perf_counter() - t0)


def bench_throughput(ctx: dict[str, Any], snippets: int) -> dict[str, Any]:
    video = _scene(ctx, "fast", snippets * frames_per_snippet(ctx["bundle"]) / FPS)
    limit = backbone_limit(ctx["bundle"], ctx["models"], repeats=max(2, snippets // 2))
    runtime, wall, _ = _run(
        ctx["bundle"], ctx["models"], ctx["broker"], ctx["work"], [("cam0", FileSource(video))]
    )
    fps = runtime.cameras["cam0"].capture.stats.frames_read / wall  # the video's frames, skipped ones too
    return {"e2e_fps": fps, "limit_fps": limit, "ratio": fps / limit, "snippets": runtime.scorer.snippets_scored,
            "backbone_calls": runtime.scorer.backbone_calls, "loop": loop_shares(runtime, wall)}  # fmt: skip


def trial_seconds(bundle: Bundle, seconds: float, queues: float = TRIAL_QUEUES) -> float:
    """How long a trial of (b) lasts: ``seconds``, or ``queues`` times a camera's queue if longer."""
    return max(seconds, queues * queue_seconds(bundle, default_queue(bundle)))


def bench_cameras(
    ctx: dict[str, Any], seconds: float, max_cameras: int, *, queues: float = TRIAL_QUEUES
) -> dict[str, Any]:
    """Add 30 fps real-time cameras until frames drop (each trial :func:`trial_seconds` long); the CPU share of
    the one-camera run and of the largest count without drops, and where that run's loop spent its time."""
    seconds = trial_seconds(ctx["bundle"], seconds, queues)
    video = _scene(ctx, "live", seconds)
    sustained, cpu_one, trials = 0, float("nan"), []
    best: dict[str, Any] = {}
    cores = os.cpu_count() or 1
    for n in tqdm(range(1, max_cameras + 1), desc="(b) cameras", leave=False):
        sources = [(f"cam{i}", FileSource(video, realtime=True)) for i in range(n)]
        runtime, wall, cpu = _run(ctx["bundle"], ctx["models"], ctx["broker"], ctx["work"], sources)
        dropped = sum(c.capture.stats.frames_dropped for c in runtime.cameras.values())
        trial = {"cameras": n, "dropped": dropped, "wall_s": round(wall, 2), "cpu_share": cpu / wall / cores,
                 "loop": loop_shares(runtime, wall)}  # fmt: skip
        trials.append(trial)
        if n == 1:
            cpu_one = trial["cpu_share"]
        if dropped:
            break
        sustained, best = n, trial
    return {
        "sustained": sustained,
        "cap": max_cameras,
        "trial_s": seconds,
        "cpu_share_one": cpu_one,
        "best": best,
        "trials": trials,
    }


def bench_latency(ctx: dict[str, Any], events: int) -> dict[str, float]:
    """Bright spells in a real-time video; latency = arrival of ``start`` - its last frame's capture time."""
    import paho.mqtt.client as mqtt

    pattern = [(1.0, DARK)] + [p for _ in range(events) for p in ((1.0, BRIGHT), (1.5, DARK))]
    video = _video(ctx["work"] / f"spells-{events}.mp4", pattern)
    arrivals: list[float] = []
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)

    def on_message(c: Any, u: Any, msg: Any) -> None:
        event = json.loads(msg.payload)
        if event["type"] == "start":
            arrivals.append(time.time() - event["timestamp"])

    client.on_message = on_message
    client.connect("127.0.0.1", ctx["broker"].port)
    client.subscribe("i3dmtn/bench/events", qos=1)
    client.loop_start()
    time.sleep(0.3)
    _run(ctx["bundle"], ctx["models"], ctx["broker"], ctx["work"], [("cam0", FileSource(video, realtime=True))],
         min_duration_s=0.0, cooldown_s=0.0, update_interval_s=10.0)  # fmt: skip
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()
    ms = np.asarray(arrivals) * 1000.0
    if not len(ms):
        return {"events": 0, "p50_ms": float("nan"), "p95_ms": float("nan")}
    p50, p95 = np.percentile(ms, [50, 95])
    return {"events": len(ms), "p50_ms": float(p50), "p95_ms": float(p95)}


def bench_rescoring(snippets: int, k: int) -> dict[str, float]:
    """Backbone passes over ``snippets`` snippets: streaming (1 each) vs re-scoring the last ``k`` each time."""
    streaming = snippets
    rescoring = sum(min(i, k) for i in range(1, snippets + 1))
    return {
        "snippets": snippets,
        "k": k,
        "streaming": streaming,
        "rescoring": rescoring,
        "saving": rescoring / streaming,
    }


def _cameras(b: dict[str, Any], cores: int) -> str:
    trials = " ".join(f"{t['cameras']}:{t['dropped']}" for t in b["trials"])
    capped = b["trials"] and b["trials"][-1]["dropped"] == 0
    cpu = f"CPU {b['best']['cpu_share']:.0%} of {cores} cores at {b['sustained']}; " if b["best"] else ""
    trial = f" ({b['trial_s']:.0f} s each)" if "trial_s" in b else ""
    return f"{b['sustained']}{'+ (cap reached)' if capped else ''}; {cpu}dropped frames per trial{trial} {trials}"


def _shares(loop: dict[str, float]) -> str:
    rest = max(0.0, 1.0 - sum(loop.values()))
    return " ".join(f"{name} {share:.1%}," for name, share in loop.items()) + f" other {rest:.1%}"


# A row: (measure, result, goal, met). met None: no goal, or one this run cannot reach (not checked).
Row = tuple[str, str, str, bool | None]


def rows(res: dict[str, Any], cores: int, *, real: bool) -> list[Row]:
    """The table's rows from the results ``a``, ``b``, ``e`` (and ``d`` unless ``real``: an exported bundle,
    whose events do not come on cue and whose (a) has no goal)."""
    a, b, e = res["a"], res["b"], res["e"]
    out: list[Row] = [
        ("(a) end-to-end fps / backbone-only fps", f"{a['e2e_fps']:.1f} / {a['limit_fps']:.1f} = {a['ratio']:.0%}",
         "-" if real else f">= {RATIO_GOAL:.0%}", None if real else a["ratio"] >= RATIO_GOAL),
    ]  # fmt: skip
    if b["cap"] >= CAMERA_GOAL:
        out.append(("(b) 30 fps cameras without drops", _cameras(b, cores), f">= {CAMERA_GOAL}",
                    b["sustained"] >= CAMERA_GOAL))  # fmt: skip
    else:
        out.append(("(b) 30 fps cameras without drops", _cameras(b, cores),
                    f">= {CAMERA_GOAL} (not checked: cap {b['cap']})", None))  # fmt: skip
    out.append(("(c) CPU share of one live 30 fps camera", f"{b['cpu_share_one']:.0%} of {cores} cores",
                f"<= {CPU_GOAL:.0%}", b["cpu_share_one"] <= CPU_GOAL))  # fmt: skip
    if real:
        out.append(("(d) last frame -> MQTT start", "not run: a trained model's events do not come on cue", "-",
                    None))  # fmt: skip
    else:
        d = res["d"]
        out.append(("(d) last frame -> MQTT start, p50 / p95",
                    f"{d['p50_ms']:.0f} / {d['p95_ms']:.0f} ms ({d['events']} events)",
                    f"p95 <= {LATENCY_GOAL_MS:.0f} ms", d["p95_ms"] <= LATENCY_GOAL_MS))  # fmt: skip
    out.append((f"(e) backbone passes, {e['snippets']} snippets, K={e['k']}",
                f"streaming {e['streaming']} vs re-scoring {e['rescoring']} ({e['saving']:.1f}x fewer)", "-", None))  # fmt: skip
    if b["best"]:
        out.append((f"(f) loop time, {b['sustained']} live camera(s)", _shares(b["best"]["loop"]), "-", None))
    out.append(("(f) loop time, one file as fast as possible", _shares(a["loop"]), "-", None))
    return out


def table(table_rows: list[Row]) -> str:
    mark = {True: "yes", False: "NO", None: "-"}
    widths = [max(len(r[i]) for r in table_rows) for i in range(3)]
    head = f"{'measure':<{widths[0]}}  {'result':<{widths[1]}}  {'goal':<{widths[2]}}  met"
    lines = [head, "-" * len(head)]
    lines += [
        f"{m:<{widths[0]}}  {r:<{widths[1]}}  {g:<{widths[2]}}  {mark[ok]}" for m, r, g, ok in table_rows
    ]
    return "\n".join(lines)


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    """The options, checked; ``--bundle`` is loaded (a bad one is one line naming it, exit status 2)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.runtime", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a few snippets, <= 3 cameras)")
    parser.add_argument(
        "--work", type=Path, help="folder for the bundle and videos (kept; default: a temp dir)"
    )
    parser.add_argument(
        "--bundle", type=Path, metavar="DIR",
        help="an exported bundle to run (its own head, preprocessing and frame rate) on moving-shapes videos, "
        "instead of the synthetic full-width I3D",
    )  # fmt: skip
    parser.add_argument(
        "--max-cameras", type=int, metavar="N",
        help="most cameras (b) tries (default 10; 3 with --quick); the goal is checked when N >= 8",
    )  # fmt: skip
    parser.add_argument(
        "--rtsp", action="store_true",
        help="RTSP cameras: edge-runtime reading H.264 streams (640x360 and 1080p) from a real RTSP server "
        "(GStreamer's Python bindings needed); the full-width I3D INT8 bundle of its goal, or --bundle's",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=float, metavar="S",
        help="--rtsp: seconds each trial runs after its streams opened (default 20; 6 with --quick)",
    )  # fmt: skip
    opts = parser.parse_args(argv)
    if opts.rtsp:
        from tests.rtsp_helpers import gst_python_or_reason

        if gst_python_or_reason()[0] is None:
            parser.error(f"--rtsp needs the real RTSP server: {gst_python_or_reason()[1]}")
    if opts.seconds is not None and not opts.rtsp:
        parser.error("--seconds applies to --rtsp only")
    if opts.seconds is not None and not 1 <= opts.seconds <= 600:
        parser.error(f"--seconds must be in [1, 600], got {opts.seconds:g}")
    if opts.max_cameras is not None and opts.max_cameras < 1:
        parser.error(f"--max-cameras must be >= 1, got {opts.max_cameras}")
    if opts.max_cameras is None:
        opts.max_cameras = 3 if opts.quick else 10
    if opts.bundle is not None:
        try:
            opts.bundle = load_bundle(opts.bundle)
        except BundleError as exc:
            parser.error(f"--bundle: {exc}")
    return opts


def _header(bundle: Bundle, models: LoadedModels, cores: int, load: float, *, scene: str, quick: bool) -> str:
    p, w = bundle.preprocess, bundle.window
    rate = f"{p.frame_rate:g} fps" if p.frame_rate else "every frame"
    video = "flat 320x240" if scene == "flat" else "moving 640x360"
    return (
        f"runtime benchmark: {bundle.model_name} {bundle.model_version}, {p.modality} {p.channels}x"
        f"{w.snippet_length}x{p.crop_size[0]}x{p.crop_size[1]} snippets at {rate}, K={w.num_snippets}, "
        f"{models.backend} {models.precision} on CPU; {video} 30 fps videos; {cores} cores, load average "
        f"{load:.1f} before the run{' (quick)' if quick else ''}"
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    load = os.getloadavg()[0]  # other jobs on a shared machine show in every figure
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    work = opts.work or Path(tempfile.mkdtemp(prefix="i3dmtn-bench-runtime-"))
    work.mkdir(parents=True, exist_ok=True)
    if opts.rtsp:
        from benchmarks.runtime_rtsp import run_rtsp

        return run_rtsp(opts, build_bundle(work) if opts.bundle is None else opts.bundle.path, work, load)
    if opts.bundle is None:
        bundle = load_bundle(build_bundle(work))
        models = load_models(bundle, backend="openvino", device="CPU")
    else:
        bundle = opts.bundle
        try:
            models = load_models(bundle)
        except BackendError as exc:  # no toolkit for its format, or files it cannot load: one line
            print(f"python -m benchmarks.runtime: error: --bundle {bundle.path}: {exc}", file=sys.stderr)
            return 1
    log.info("models: %s %s", models.backend, models.precision)
    quick = opts.quick
    res: dict[str, Any] = {}
    with LocalBroker() as broker:
        ctx = {"bundle": bundle, "models": models, "broker": broker, "work": work,
               "scene": "flat" if opts.bundle is None else "moving"}  # fmt: skip
        with tqdm(total=4 if opts.bundle is None else 3, desc="runtime benchmark") as bar:
            res["a"] = bench_throughput(ctx, snippets=6 if quick else 16)
            bar.update()
            res["b"] = bench_cameras(ctx, seconds=3.0 if quick else 8.0, max_cameras=opts.max_cameras,
                                     queues=0 if quick else TRIAL_QUEUES)  # fmt: skip
            bar.update()
            if opts.bundle is None:
                res["d"] = bench_latency(ctx, events=2 if quick else 6)
                bar.update()
            res["e"] = bench_rescoring(res["a"]["snippets"] if quick else 100, bundle.window.num_snippets)
            bar.update()
    models.close()
    cores = os.cpu_count() or 1
    print("\n" + _header(bundle, models, cores, load, scene=ctx["scene"], quick=quick))
    table_rows = rows(res, cores, real=opts.bundle is not None)
    print(table(table_rows))
    missed = [m for m, _, _, ok in table_rows if ok is False]
    if missed:
        print(f"goal missed: {'; '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
