"""Runtime benchmark: the whole device loop with full-width I3D INT8 (OpenVINO) at 224 px.

``python -m benchmarks.runtime [--quick] [--work DIR]`` measures, in one process, against a real broker:

a. frames per second end to end (one file source, as fast as possible) vs the backbone alone (the limit);
b. how many 30 fps cameras one process sustains without dropping frames (file sources played in real time);
c. the CPU share used by one live 30 fps camera;
d. latency from the last frame of a "fight" snippet to the MQTT ``start`` at a subscriber (``min_duration 0``);
e. backbone passes of streaming (one per snippet) vs re-scoring the whole K-snippet window every snippet.

and prints a table with the goals. The model is random-init I3D with a linear probe head (see
:mod:`benchmarks.runtime_models`): the speed is that of the real network; the scores only mark bright frames.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.runtime_models import BRIGHT, DARK, FPS, K, S, build_bundle, flat_frames
from edge_runtime.broker import LocalBroker
from edge_runtime.bundle import load_bundle
from edge_runtime.events import EventPolicy
from edge_runtime.mqtt import MqttPublisher
from edge_runtime.mqtt_settings import MqttSettings
from edge_runtime.outbox import Outbox
from edge_runtime.runtime import LoadedModels, Runtime, RuntimeConfig, load_models
from edge_runtime.sources import FileSource
from edge_runtime.video import write_video

log = logging.getLogger(__name__)


def _video(path: Path, pattern: list[tuple[float, int]]) -> Path:
    if not path.exists():
        frames = [f for seconds, value in pattern for f in flat_frames(value, round(seconds * FPS))]
        write_video(path, frames, FPS)
    return path


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


def backbone_limit(models: LoadedModels, repeats: int) -> float:
    """Backbone-only frames per second at batch 1 (each snippet covers S frames)."""
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, S, 224, 224)).astype(np.float32)
    name = models.backbone.input_names[0]
    models.backbone.infer({name: x})  # warm up
    t0 = time.perf_counter()
    for _ in range(repeats):
        models.backbone.infer({name: x})
    return repeats * S / (time.perf_counter() - t0)


def bench_throughput(ctx: dict[str, Any], snippets: int) -> dict[str, float]:
    video = _video(ctx["work"] / f"fast-{snippets}.mp4", [(snippets * S / FPS, DARK)])
    limit = backbone_limit(ctx["models"], repeats=max(2, snippets // 2))
    runtime, wall, _ = _run(
        ctx["bundle"], ctx["models"], ctx["broker"], ctx["work"], [("cam0", FileSource(video))]
    )
    fps = runtime.stats.frames["cam0"] / wall
    return {"e2e_fps": fps, "limit_fps": limit, "ratio": fps / limit, "snippets": runtime.scorer.snippets_scored,
            "backbone_calls": runtime.scorer.backbone_calls}  # fmt: skip


def bench_cameras(ctx: dict[str, Any], seconds: float, max_cameras: int) -> dict[str, Any]:
    """Add 30 fps real-time cameras until frames drop; also the CPU share of the one-camera run."""
    video = _video(ctx["work"] / f"live-{seconds:g}.mp4", [(seconds, DARK)])
    sustained, cpu_one, trials = 0, float("nan"), []
    for n in tqdm(range(1, max_cameras + 1), desc="(b) cameras", leave=False):
        sources = [(f"cam{i}", FileSource(video, realtime=True)) for i in range(n)]
        runtime, wall, cpu = _run(ctx["bundle"], ctx["models"], ctx["broker"], ctx["work"], sources)
        dropped = sum(c.capture.stats.frames_dropped for c in runtime.cameras.values())
        trials.append({"cameras": n, "dropped": dropped, "wall_s": round(wall, 2)})
        if n == 1:
            cpu_one = cpu / wall / (os.cpu_count() or 1)
        if dropped:
            break
        sustained = n
    return {"sustained": sustained, "cpu_share_one": cpu_one, "trials": trials}


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


def bench_rescoring(snippets: int) -> dict[str, float]:
    """Backbone passes over ``snippets`` snippets: streaming (1 each) vs re-scoring the last K each time."""
    streaming = snippets
    rescoring = sum(min(i, K) for i in range(1, snippets + 1))
    return {
        "snippets": snippets,
        "streaming": streaming,
        "rescoring": rescoring,
        "saving": rescoring / streaming,
    }


def _cameras(b: dict[str, Any]) -> str:
    trials = " ".join(f"{t['cameras']}:{t['dropped']}" for t in b["trials"])
    capped = b["trials"] and b["trials"][-1]["dropped"] == 0
    return f"{b['sustained']}{'+ (cap reached)' if capped else ''}; dropped frames per trial {trials}"


def _table(res: dict[str, Any], cores: int) -> str:
    a, b, d, e = res["a"], res["b"], res["d"], res["e"]
    rows = [
        ("(a) end-to-end fps / backbone-only fps", f"{a['e2e_fps']:.1f} / {a['limit_fps']:.1f} = {a['ratio']:.0%}",
         ">= 50%", a["ratio"] >= 0.5),
        ("(b) 30 fps cameras without drops", _cameras(b), ">= 8", b["sustained"] >= 8),
        ("(c) CPU share of one live 30 fps camera", f"{b['cpu_share_one']:.0%} of {cores} cores", "<= 15%",
         b["cpu_share_one"] <= 0.15),
        ("(d) last frame -> MQTT start, p50 / p95", f"{d['p50_ms']:.0f} / {d['p95_ms']:.0f} ms ({d['events']} events)",
         "p95 <= 250 ms", d["p95_ms"] <= 250),
        (f"(e) backbone passes, {e['snippets']} snippets, K={K}", f"streaming {e['streaming']} vs re-scoring "
         f"{e['rescoring']} ({e['saving']:.1f}x fewer)", "-", True),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  {'result':<58} {'goal':<14} met", "-" * (width + 80)]
    lines += [f"{m:<{width}}  {r:<58} {g:<14} {'yes' if ok else 'NO'}" for m, r, g, ok in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.runtime", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a few snippets, <= 3 cameras)")
    parser.add_argument(
        "--work", type=Path, help="folder for the bundle and videos (kept; default: a temp dir)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    work = args.work or Path(tempfile.mkdtemp(prefix="i3dmtn-bench-runtime-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(build_bundle(work))
    models = load_models(bundle, backend="openvino", device="CPU")
    log.info("models: %s %s", models.backend, models.precision)
    quick = args.quick
    res: dict[str, Any] = {}
    with LocalBroker() as broker:
        ctx = {"bundle": bundle, "models": models, "broker": broker, "work": work}
        with tqdm(total=4, desc="runtime benchmark") as bar:
            res["a"] = bench_throughput(ctx, snippets=6 if quick else 16)
            bar.update()
            res["b"] = bench_cameras(ctx, seconds=3.0 if quick else 8.0, max_cameras=3 if quick else 10)
            bar.update()
            res["d"] = bench_latency(ctx, events=2 if quick else 6)
            bar.update()
            res["e"] = bench_rescoring(res["a"]["snippets"] if quick else 100)
            bar.update()
    models.close()
    cores = os.cpu_count() or 1
    print(f"\nruntime benchmark: I3D full width, {S}x224x224 snippets, K={K}, OpenVINO {models.precision} "
          f"on CPU, {cores} cores{' (quick)' if quick else ''}")  # fmt: skip
    print(_table(res, cores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
