"""Event clips end to end: ``edge-runtime`` with a profile's ``[clips]`` records the clip of a real event,
its ``end`` carries the clip (only once the file is complete), the clip endpoint serves it, and
``i3dmtn alerts --save-clips`` fetches it and checks its SHA-256. Real broker, real videos, real encoder."""

from __future__ import annotations

import json
import signal

import pytest

from edge_runtime.broker import LocalBroker, free_port
from edge_runtime.bundle import sha256_file
from edge_runtime.schema import event_clip, validate_event
from tests.alert_consumer.helpers import AlertsProcess
from tests.edge_runtime.runtime_helpers import (
    BRIGHT,
    CROP,
    DARK,
    FPS,
    Subscriber,
    finish,
    make_bundle,
    make_video,
    runtime_argv,
    start_runtime,
)

av = pytest.importorskip("av", reason="event clips need PyAV (the 'clips' extra)")

TOKEN = "clip-token-for-the-tests-0123"


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runtime_clips")
    bundle = make_bundle(folder)
    video = make_video(folder / "fight.mp4", [(1, DARK), (1.5, BRIGHT), (6, DARK)])
    port = free_port()
    profile = folder / "test-clips.toml"
    profile.write_text(
        f'[device]\nname = "test"\n[model]\nbackend = "onnxruntime"\ntarget = "onnx"\nprecision = "fp32"\n'
        f'input_size = {CROP}\n[clips]\nfolder = "{folder / "clips"}"\npre_s = 1.0\npost_s = 1.0\n'
        f'http_bind = "127.0.0.1:{port}"\n'
    )
    saved = folder / "saved"
    with LocalBroker() as broker:
        sub = Subscriber(broker.port)
        watcher = AlertsProcess(
            "--broker", f"127.0.0.1:{broker.port}", "--json", "--save-clips", str(saved),
            "--clip-server", f"http://127.0.0.1:{port}", env={"I3DMTN_CLIP_TOKEN": TOKEN},
        ).wait_subscribed()  # fmt: skip
        argv = runtime_argv(bundle, broker.port, folder / "outbox.sqlite", [f"door={video}"], "--realtime",
                            "--device-profile", str(profile))  # fmt: skip
        proc = start_runtime(argv, env={"I3DMTN_CLIP_TOKEN": TOKEN})
        ended = sub.wait_for(lambda s: any(e["type"] == "end" for e in s.events()), timeout=60)
        clip_saved = ended and _wait(lambda: any(saved.rglob("*.mp4")), 30)
        code, err = finish(proc, sig=signal.SIGTERM)
        watcher.interrupt()
        sub.close()
    return {"code": code, "stderr": err, "events": sub.events(), "folder": folder / "clips", "saved": saved,
            "clip_saved": clip_saved, "watcher": watcher}  # fmt: skip


def _wait(predicate, timeout):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _end(run):
    ends = [e for e in run["events"] if e["type"] == "end"]
    assert len(ends) == 1, run["stderr"][-3000:]
    return validate_event(ends[0])


def test_the_end_carries_the_clip_of_the_event_and_the_file_matches_it(clip_run):
    assert clip_run["code"] == 0, clip_run["stderr"][-3000:]
    end = _end(clip_run)
    clip = event_clip(end)
    assert clip is not None, end
    path = clip_run["folder"] / clip["file"]
    assert path.name == f"{end['event_id']}.mp4"
    assert clip["sha256"] == sha256_file(path) and clip["size_bytes"] == path.stat().st_size
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == clip["frames"]


def test_the_clip_spans_pre_capture_to_post_capture(clip_run):
    end = _end(clip_run)
    clip = event_clip(end)
    assert abs(clip["started_at"] - (end["started_at"] - 1.0)) <= 1 / FPS + 1e-6
    clip_end = clip["started_at"] + clip["duration_s"]
    assert end["ended_at"] + 1.0 - 2 / FPS <= clip_end <= end["ended_at"] + 1.0 + 2 / FPS


def test_only_the_end_speaks_of_the_clip_and_no_partial_file_is_left(clip_run):
    assert all("clip" not in e for e in clip_run["events"] if e["type"] != "end")
    assert [p.name for p in clip_run["folder"].iterdir() if p.name.startswith(".")] == []


def test_the_watcher_saved_the_clip_with_its_sha256_checked(clip_run):
    end = _end(clip_run)
    assert clip_run["clip_saved"], "\n".join(clip_run["watcher"].stderr[-20:])
    saved = clip_run["saved"] / end["device_id"] / event_clip(end)["file"]
    assert sha256_file(saved) == event_clip(end)["sha256"]
    assert any("SHA-256 checked" in line for line in clip_run["watcher"].stderr)
    printed = [json.loads(line) for line in clip_run["watcher"].stdout]
    assert any(e["type"] == "end" and e["clip"]["file"] == saved.name for e in printed)
