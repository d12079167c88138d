"""The chain on real surveillance clips (12-30 fps, H.264, 320x240 to 1080p): prepare -> a short train of
the surveillance recipe (flow at 15 fps, shrunk) -> evaluate -> export (OpenVINO INT8) -> edge-runtime
playing the clips as cameras, publishing to a real broker.

It proves the chain runs on real video, not the recipe's quality (benchmarks/real_quality.py measures
that): two epochs on a few clips learn nothing worth asserting.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.resample import resample_indices
from edge_runtime.video import probe_video

from ..edge_runtime.mqtt_helpers import Subscriber, wait_for

pytestmark = pytest.mark.slow

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "surveillance-fight"
TINY = ["epochs=2", "frame_size=32", "resize_short_side=36", "width_multiplier=0.0625", "batch_size=2"]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "training.cli", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


@pytest.fixture(scope="module")
def real_source(tmp_path_factory):
    """8 real clips (a fight and a no-fight clip from each of 4 source videos) in the data set's own layout."""
    if not REAL.is_dir():
        pytest.skip(f"the real clips are not here ({REAL}): a clone without ../shared/data skips this test")
    groups = json.loads((REAL / "groups.json").read_text())
    by_source: dict[str, dict[str, str]] = {}
    for rel, source in sorted(groups.items()):
        by_source.setdefault(source, {}).setdefault(rel.split("/")[0], rel)
    both = [s for s, clips in by_source.items() if len(clips) == 2 and s != "unlisted-surveillance"][:4]
    src = tmp_path_factory.mktemp("real") / "src"
    chosen = {}
    for source in both:
        for rel in by_source[source].values():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).symlink_to(REAL / rel)
            chosen[rel] = source
    (src.parent / "groups.json").write_text(json.dumps(chosen))
    return src


def test_prepare_train_evaluate_export_and_run_on_real_clips(real_source, tmp_path, broker):
    data, run, bundle = tmp_path / "data", tmp_path / "run", tmp_path / "bundle"
    groups = real_source.parent / "groups.json"
    out = _cli("data", "prepare", str(real_source), "--out", str(data), "--groups", str(groups),
               "--val", "0.25", "--test", "0.25").stdout  # fmt: skip
    assert "no group spans two splits" in out
    sets = [a for kv in TINY for a in ("--set", kv)]
    _cli(
        "train",
        "--config",
        "surveillance",
        "--data_path",
        str(data),
        "--output",
        str(run),
        "--no-progress",
        *sets,
    )
    assert len(list((data / ".frame_cache").glob("*.npy"))) == 6  # train + val clips, decoded once

    _cli("evaluate", "--model_path", str(run / "best.pt"), "--test_path", str(data / "test"), "--no-progress")
    report = json.loads((run / "eval_test" / "report.json").read_text())
    assert report["video_metrics"]["n_videos"] == 2 and report["config"]["input_modality"] == "flow"

    _cli("export", "--checkpoint", str(run / "best.pt"), "--target", "openvino", "--calib-data", str(data),
         "--out", str(bundle), "--calib-snippets", "8", "--allow-accuracy-drop", "--allow-event-loss")  # fmt: skip
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["preprocess"]["modality"] == "flow" and manifest["preprocess"]["frame_rate"] == 15.0

    clips = sorted(p.resolve() for p in data.glob("*/*/*.mp4"))
    sources = [a for i, p in enumerate(clips) for a in ("--source", f"cam{i}={p}")]
    sub = Subscriber("127.0.0.1", broker.port, "i3dmtn/real1/#")
    try:
        runtime = subprocess.run(
            [str(Path(sys.executable).parent / "edge-runtime"), "--bundle", str(bundle), *sources,
             "--device-id", "real1", "--broker", f"127.0.0.1:{broker.port}", "--outbox", str(tmp_path / "o.db")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert runtime.returncode == 0, runtime.stderr[-3000:]
        wait_for(lambda: sub.payloads("/stats"), what="stats from the runtime")
        for event in sub.events():  # whatever the tiny model raised, every event follows the schema
            assert event["device_id"] == "real1"
    finally:
        sub.close()
    # every clip was played at the bundle's 15 fps: the runtime's snippets are the clips' whole snippets
    expected = 0
    for p in clips:
        info = probe_video(p)
        expected += len(resample_indices(info.num_frames, info.fps, 15.0)) // 8
    finished = re.search(
        r"finished: frames=(\d+) skipped_frames=(\d+) snippets=(\d+) dropped_frames=(\d+)", runtime.stderr
    )
    assert finished, runtime.stderr[-2000:]
    frames, skipped, snippets, dropped = map(int, finished.groups())
    # every frame read: the ones 15 fps takes went to the model, the others were skipped before conversion
    assert frames + skipped == sum(probe_video(p).num_frames for p in clips) and dropped == 0
    assert skipped > 0  # the clips of more than 15 fps
    assert snippets == expected
