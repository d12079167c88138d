"""Crash recovery: SIGKILL at random moments never corrupts the outbox, the feature cache or a bundle.

- The producer (the runtime's publishing path) runs a tight write loop, so a kill lands inside an outbox
  write (fsync) or an ack most of the time; after every kill the SQLite file passes ``PRAGMA integrity_check``
  and, in the end, every message logged as put is delivered.
- ``i3dmtn features`` is killed mid-run on tiny real videos; the rerun writes only the missing videos and
  the final cache equals an uninterrupted run's, array for array.
- ``write_bundle`` is killed while copying a large model file; no folder appears at ``out_dir`` and a rerun
  writes a bundle that loads, leaving no temp folder behind.

Default: 5 kills each. ``--long`` / ``I3DMTN_LONG=1``: 25 producer kills, 10 bundle-writer kills.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.broker import LocalBroker
from edge_runtime.bundle import load_bundle

from .helpers import (
    DEVICE,
    ROOT,
    RecordingSubscriber,
    check_delivery,
    read_produced,
    start_producer,
    wait_for,
)

SEED = 7031


def _integrity(path: Path) -> list[str]:
    """``PRAGMA integrity_check`` of the outbox from a fresh connection (replays the WAL like a restart)."""
    db = sqlite3.connect(str(path))
    try:
        return [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
    finally:
        db.close()


def _backlog(path: Path) -> int:
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        db.close()


def test_sigkilled_producer_keeps_its_outbox_intact_and_loses_no_event(tmp_path, long_run):
    kills = 25 if long_run else 5
    rng = random.Random(SEED)
    outbox, log_path = tmp_path / "outbox.sqlite", tmp_path / "produced.jsonl"
    checks, backlogs = [], []
    with LocalBroker() as broker:
        sub = RecordingSubscriber(broker.host, broker.port, f"i3dmtn/{DEVICE}/events", persistent=False)
        for i in range(kills):
            before = len(read_produced(log_path))
            proc = start_producer(broker.port, outbox, log_path, messages=0, seed=SEED + i)
            wait_for(
                lambda n=before, p=proc: p.poll() is not None or len(read_produced(log_path)) > n,
                60,
                f"producer {i} to put its first message",
            )
            time.sleep(rng.uniform(0.0, 0.5))  # somewhere in the tight put / ack loop
            os.kill(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL, f"producer {i} ended on its own: {stderr[-2000:]}"
            checks.append(_integrity(outbox))
            backlogs.append(_backlog(outbox))
        drain = start_producer(broker.port, outbox, log_path, messages=-1, seed=0)
        stdout, stderr = drain.communicate(timeout=120)
        assert drain.returncode == 0, f"the draining restart failed: {stderr[-2000:]}"
        produced = read_produced(log_path)
        wait_for(
            lambda: {(p["event_id"], p["seq"]) for p in produced} <= sub.keys(),
            60,
            "every logged message at the subscriber",
        )
        sub.close()
    report = check_delivery(produced, sub.events())
    print(
        "\n[producer SIGKILL] "
        + report.line(
            kills=kills,
            integrity_ok=sum(c == ["ok"] for c in checks),
            pending_after_kills=backlogs,
            delivered_put_but_unlogged=report.unlogged,
        )
    )
    assert checks == [["ok"]] * kills
    assert json.loads(stdout.strip().splitlines()[-1])["backlog"] == 0
    assert report.lost == []
    assert report.out_of_order == []


# ---- the feature cache -----------------------------------------------------------------------------------

_TINY = {  # tests/training/tiny_data.py's tiny config: S=4, 32 px frames, a 1/16-width backbone
    "clip_length": 4,
    "num_snippets": 4,
    "frame_size": 32,
    "resize_short_side": 32,
    "width_multiplier": 0.0625,
    "mtn_hidden_dim": 16,
    "mil_attention_dim": 8,
    "seed": 3,
}


def _features_cmd(data: Path, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "training.cli", "features", "--config", "debug"]
    for key, value in _TINY.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd + ["--data_path", str(data), "--out", str(out), "--batch-size", "2"]


def _feature_files(out: Path) -> dict[str, Path]:
    return {
        p.relative_to(out).as_posix(): p
        for p in out.rglob("*.npy")
        if not p.name.endswith(".labels.npy") and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    from training.synth import SynthConfig, generate_dataset

    out = tmp_path_factory.mktemp("crash_videos")
    generate_dataset(
        SynthConfig(out=out, seed=5, videos=(8, 8, 0, 0, 0, 0), frames=32, size=(64, 48)), progress=False
    )
    return out


def test_killed_feature_extraction_resumes_and_equals_an_uninterrupted_run(tmp_path, videos):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    reference = tmp_path / "reference"
    subprocess.run(_features_cmd(videos, reference), cwd=ROOT, env=env, check=True, capture_output=True)
    expected = _feature_files(reference)
    assert len(expected) == 16

    out = tmp_path / "interrupted"
    target = random.Random(SEED).randint(2, len(expected) - 4)
    proc = subprocess.Popen(
        _features_cmd(videos, out), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    while proc.poll() is None and (not out.is_dir() or len(_feature_files(out)) < target):
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the extraction ended before it could be killed"
    done_at_kill = len(_feature_files(out))
    leftovers = sorted(p.name for p in out.rglob(".*.tmp"))

    rerun = subprocess.run(_features_cmd(videos, out), cwd=ROOT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = re.search(r"features: (\d+) written, (\d+) already cached", rerun.stdout)
    assert summary, rerun.stdout
    written, cached = int(summary.group(1)), int(summary.group(2))
    print(
        f"\n[features SIGKILL] videos={len(expected)} done_at_kill={done_at_kill} rerun_written={written} "
        f"rerun_cached={cached} temp_leftovers={len(leftovers)}"
    )
    assert 0 < done_at_kill < len(expected)
    assert (written, cached) == (len(expected) - done_at_kill, done_at_kill)
    got = _feature_files(out)
    assert sorted(got) == sorted(expected)
    for key, path in expected.items():
        assert np.array_equal(np.load(got[key]), np.load(path)), key
        labels = key[: -len(".npy")] + ".labels.npy"
        assert np.array_equal(np.load(out / labels), np.load(reference / labels)), labels
    index, ref_index = (json.loads((d / "index.json").read_text()) for d in (out, reference))
    assert index == ref_index


# ---- the bundle writer ------------------------------------------------------------------------------------

_WRITER = """
import sys
from pathlib import Path
from tests.export.test_bundle_writer import make_sources
from export.bundle import write_bundle

src, out, size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
manifest, specs, extras = make_sources(src)
big = src / "backbone.fp32.onnx"
with open(big, "wb") as fh:  # a large model file: the copy takes a while
    block = bytes(range(256)) * 4096
    for _ in range(size // len(block)):
        fh.write(block)
print("start", flush=True)
write_bundle(out, manifest=manifest, files=specs, extras=extras)
print("done", flush=True)
"""


def test_killed_bundle_writer_never_leaves_a_half_bundle(tmp_path, long_run):
    kills = 10 if long_run else 5
    size = 96 << 20
    rng = random.Random(SEED)
    out = tmp_path / "bundle"
    mid_copy = 0
    for i in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path / f"src{i}"), str(out), str(size)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "start", proc.stderr
        copied = _wait_for_copy(tmp_path, proc)
        time.sleep(rng.uniform(0.0, 0.2))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        if proc.returncode == -signal.SIGKILL and copied:
            mid_copy += 1
        if out.exists():
            # The copy finished before the kill landed: what is there must be a whole, verified bundle.
            assert load_bundle(out).precision == "int8", f"kill {i}: a half bundle at {out}"
            shutil.rmtree(out)
        (tmp_path / f"src{i}").joinpath("backbone.fp32.onnx").unlink()  # keep the disk use bounded

    rerun = subprocess.run(
        [sys.executable, "-c", _WRITER, str(tmp_path / "final"), str(out), str(1 << 20)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle.")]
    print(
        f"\n[bundle writer SIGKILL] kills={kills} mid_copy={mid_copy} half_bundles=0 leftovers_after_rerun={len(leftovers)}"
    )
    assert load_bundle(out).precision == "int8"
    assert leftovers == []
    assert mid_copy >= 1


def _wait_for_copy(parent: Path, proc: subprocess.Popen) -> bool:
    """Wait until the writer's temp folder holds part of the large file; True if seen mid-copy."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        for tmp in parent.glob(".bundle.tmp-*"):
            part = tmp / "backbone.fp32.onnx"
            if part.exists() and part.stat().st_size > 0:
                return True
        time.sleep(0.002)
    return False
