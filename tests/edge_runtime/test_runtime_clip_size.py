"""Event clips at a viewing size: made from the frames as decoded (not the model's shrunk input), or from the
camera's record stream when it has one, scaled to ``[clips] max_height``; the ring within its bound; a bad
``max_height`` is one line. Real videos larger than the model's input, the real encoder, a real broker."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys

import pytest

from edge_runtime.broker import LocalBroker
from edge_runtime.capture import CaptureThread
from edge_runtime.clip_frames import ClipFramer
from edge_runtime.clips import RING_MAX_BYTES
from edge_runtime.preprocess import PreprocessConfig, resize_frame
from edge_runtime.record import RecordStream
from edge_runtime.schema import event_clip, validate_event
from edge_runtime.sources import FileSource
from tests.edge_runtime.runtime_helpers import (
    BRIGHT,
    CROP,
    DARK,
    FRAME,
    ROOT,
    Subscriber,
    finish,
    make_bundle,
    make_video,
    runtime_argv,
    start_runtime,
)

av = pytest.importorskip("av", reason="event clips need PyAV (the 'clips' extra)")

PATTERN = [(1, DARK), (1.5, BRIGHT), (6, DARK)]  # one event
MAX_HEIGHT = 48
LARGE = (72, 96)  # h, w: a 96x72 camera gives 64x48 clips (the model sees CROP x CROP)
RECORD = (96, 128)  # the record stream of a camera whose detect stream is FRAME (32x24): 64x48 clips


def _profile(folder, clips_folder, extra=""):
    path = folder / "clips.toml"
    path.write_text(
        f'[device]\nname = "test"\n[model]\nbackend = "onnxruntime"\ntarget = "onnx"\nprecision = "fp32"\n'
        f'input_size = {CROP}\n[clips]\nfolder = "{clips_folder}"\npre_s = 1.0\npost_s = 1.0\n{extra}'
    )
    return path


@pytest.fixture(scope="module")
def sized_run(tmp_path_factory):
    """One runtime, two cameras: ``door`` a 96x72 file; ``yard`` a 32x24 detect stream with a 128x96 record
    stream (files played in real time, as live streams are)."""
    folder = tmp_path_factory.mktemp("clip_size")
    bundle = make_bundle(folder)
    door = make_video(folder / "door.mp4", PATTERN, frame=LARGE)
    yard_sub = make_video(folder / "yard_sub.mp4", PATTERN)
    yard_main = make_video(folder / "yard_main.mp4", PATTERN, frame=RECORD)
    profile = _profile(folder, folder / "clips", f"max_height = {MAX_HEIGHT}\n")
    with LocalBroker() as broker:
        sub = Subscriber(broker.port)
        sources = [f"door={door}", f"yard={yard_sub}|record={yard_main}"]
        argv = runtime_argv(bundle, broker.port, folder / "outbox.sqlite", sources, "--realtime",
                            "--device-profile", str(profile))  # fmt: skip
        proc = start_runtime(argv)
        sub.wait_for(lambda s: len([e for e in s.events() if e["type"] == "end"]) >= 2, timeout=60)
        code, err = finish(proc, sig=signal.SIGTERM)
        sub.close()
    stats = [json.loads(p) for p in sub.payloads("/stats")]
    return {"code": code, "stderr": err, "events": sub.events(), "stats": stats, "folder": folder / "clips"}


def _clip_of(run, camera):
    ends = [validate_event(e) for e in run["events"] if e["type"] == "end" and e["camera"] == camera]
    assert len(ends) == 1, run["stderr"][-3000:]
    clip = event_clip(ends[0])
    assert clip is not None and clip["exists"], ends[0]
    return ends[0], clip


def _decoded_sizes(path):
    with av.open(str(path)) as container:
        return {(f.width, f.height) for f in container.decode(video=0)}


def test_the_clip_is_at_the_clip_size_from_the_frames_as_decoded_not_the_models(sized_run):
    assert sized_run["code"] == 0, sized_run["stderr"][-3000:]
    _, clip = _clip_of(sized_run, "door")
    assert (clip["width"], clip["height"]) == (64, 48) != (CROP, CROP)
    assert _decoded_sizes(sized_run["folder"] / clip["file"]) == {(64, 48)}


def test_with_a_record_stream_the_clip_comes_from_it_aligned_by_timestamp(sized_run):
    end, clip = _clip_of(sized_run, "yard")
    assert (clip["width"], clip["height"]) == (64, 48)  # the detect stream is 32x24: its clip would be that
    assert _decoded_sizes(sized_run["folder"] / clip["file"]) == {(64, 48)}
    # the record stream's clock: its file opened a moment after the detect stream's
    assert abs(clip["started_at"] - (end["started_at"] - 1.0)) <= 0.5
    record = sized_run["stats"][-1]["cameras"]["yard"]["record"]
    assert record["clip_frames"] > 0 and record["last_error"] is None


def test_the_clip_rings_stay_within_their_bound(sized_run):
    rings = [s["clips"]["ring_mb"] for s in sized_run["stats"]]
    assert rings and 0 < max(rings) <= 2 * RING_MAX_BYTES / 1e6


def test_the_capture_thread_makes_clip_frames_before_the_models_shrink(tmp_path):
    video = make_video(tmp_path / "large.mp4", [(0.4, DARK)], frame=LARGE)
    cfg = PreprocessConfig.square(CROP)
    capture = CaptureThread(FileSource(video), "door", shrink=lambda f: resize_frame(f, cfg),
                            clip_frame=ClipFramer(MAX_HEIGHT, 0))  # fmt: skip
    with capture:
        frames = [f for f in iter(lambda: capture.get(timeout=10), None)]
    assert len(frames) == 10
    assert all(f.image.shape[0] == CROP and (f.clip.width, f.clip.height) == (64, 48) for f in frames)
    assert [f.clip.timestamp for f in frames] == [f.timestamp for f in frames]


def test_a_record_stream_makes_clip_frames_at_its_own_resolution(tmp_path):
    video = make_video(tmp_path / "main.mp4", [(0.8, DARK)], frame=RECORD)
    record = RecordStream(FileSource(video), "yard", clip_frame=ClipFramer(MAX_HEIGHT, 12.5)).start()
    assert record.join(10)
    frames = record.take_clip_frames()
    assert len(frames) == 10  # 20 frames at 25 fps, taken at 12.5 fps
    assert {(f.width, f.height) for f in frames} == {(64, 48)} and record.take_clip_frames() == []
    assert all(
        b.timestamp - a.timestamp == pytest.approx(0.08, abs=1e-4) for a, b in itertools.pairwise(frames)
    )
    assert record.stats.clip_frames == 10


def test_a_bad_max_height_is_one_line_naming_the_key(tmp_path):
    video = make_video(tmp_path / "calm.mp4", [(0.2, DARK)], frame=FRAME)
    profile = _profile(tmp_path, tmp_path / "clips", "max_height = 7\n")
    argv = [sys.executable, "-m", "edge_runtime.cli", "--bundle", str(make_bundle(tmp_path)), "--device-id",
            "dev1", "--source", str(video), "--device-profile", str(profile)]  # fmt: skip
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("edge-runtime: error: ")]
    assert result.returncode == 1 and errors == lines[-1:] and "Traceback" not in result.stderr, result.stderr
    assert "clips.toml" in errors[0] and "[clips] max_height must be" in errors[0]
