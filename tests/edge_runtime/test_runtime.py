"""The device loop end to end: ``edge-runtime`` on real mp4v videos, a real broker, real ONNX Runtime.

The tiny bundle's "fight" is brightness (see runtime_helpers), so a bright interval is exactly one event.
"""

from __future__ import annotations

import getpass
import itertools
import signal
import time

import cv2
import numpy as np
import pytest

from edge_runtime.broker import LocalBroker, find_mosquitto
from edge_runtime.outbox import Outbox
from edge_runtime.schema import validate_event
from tests.edge_runtime.runtime_helpers import (
    BRIGHT,
    DARK,
    Subscriber,
    dedup,
    finish,
    json_logs,
    make_bundle,
    make_video,
    read_audit,
    runtime_argv,
    start_runtime,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("runtime_bundle"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runtime_videos")
    return {
        "fight": make_video(folder / "fight.mp4", [(1, DARK), (2, BRIGHT), (1, DARK)]),
        "fight2": make_video(folder / "fight2.mp4", [(2, DARK), (1.5, BRIGHT), (0.5, DARK)]),
        "calm": make_video(folder / "calm.mp4", [(4, DARK)]),
        # realtime: two bright spells, so events are produced while the broker is away
        "long": make_video(
            folder / "long.mp4", [(0.5, DARK), (1, BRIGHT), (1.5, DARK), (1, BRIGHT), (2, DARK)]
        ),
        "endless": make_video(folder / "endless.mp4", [(0.5, DARK), (30, BRIGHT)]),
    }


@pytest.fixture(scope="module")
def three_cameras(bundle, videos, tmp_path_factory):
    """One run of three file sources in one process: two with a bright interval, one dark."""
    folder = tmp_path_factory.mktemp("three_cameras")
    with LocalBroker() as broker:
        sub = Subscriber(broker.port)
        outbox = folder / "outbox.sqlite"
        sources = [f"fight={videos['fight']}", f"other={videos['fight2']}", f"calm={videos['calm']}"]
        code, err = finish(start_runtime(runtime_argv(bundle, broker.port, outbox, sources)))
        sub.wait_for(lambda s: sum(e["type"] == "end" for e in s.events()) >= 2, timeout=10)
        sub.close()
    return {"code": code, "stderr": err, "events": sub.events(), "outbox": outbox, "sub": sub}


def _by_camera(events, camera):
    return [e for e in events if e["camera"] == camera]


def test_anomalous_video_gives_start_updates_end_valid_and_in_order(three_cameras):
    events = _by_camera(three_cameras["events"], "fight")
    for e in events:
        validate_event(e)
    types = [e["type"] for e in sorted(events, key=lambda e: e["seq"])]
    assert types[0] == "start" and types[-1] == "end" and "update" in types
    assert len({e["event_id"] for e in events}) == 1
    assert [e["seq"] for e in sorted(events, key=lambda e: e["seq"])] == list(range(len(events)))


def test_normal_video_gives_no_event(three_cameras):
    assert _by_camera(three_cameras["events"], "calm") == []


def test_each_camera_has_its_own_event(three_cameras):
    events = three_cameras["events"]
    ids = {cam: {e["event_id"] for e in _by_camera(events, cam)} for cam in ("fight", "other")}
    assert len(ids["fight"]) == 1 and len(ids["other"]) == 1 and ids["fight"] != ids["other"]


def test_ended_sources_exit_zero_with_an_empty_outbox(three_cameras):
    assert three_cameras["code"] == 0, three_cameras["stderr"][-2000:]
    with Outbox(three_cameras["outbox"]) as box:
        assert box.backlog == 0


def test_snippets_ready_together_share_one_backbone_call(three_cameras):
    final = [d for d in json_logs(three_cameras["stderr"]) if d["message"].startswith("finished:")]
    assert final and final[-1]["max_batch"] > 1 and final[-1]["batched_calls"] > 0
    assert final[-1]["backbone_calls"] < final[-1]["snippets"]


def test_stats_carry_each_cameras_score(three_cameras):
    import json

    stats = [json.loads(p) for p in three_cameras["sub"].payloads("/stats")]
    assert stats, "no stats message arrived"
    last = stats[-1]
    assert set(last["cameras"]) == {"fight", "other", "calm"}
    assert last["cameras"]["calm"]["score"] < 0.5
    assert {"fps", "latency_ms_p95", "dropped_frames", "outbox_backlog", "cpu_percent"} <= set(last)


def test_stats_carry_the_loops_seconds_in_preprocessing_backbone_head_and_idle(three_cameras):
    import json

    stats = [json.loads(p) for p in three_cameras["sub"].payloads("/stats")]
    parts = ("preprocess_s", "backbone_s", "head_s", "idle_s")
    assert stats and all(set(parts) <= set(s) for s in stats)
    last = stats[-1]
    assert (
        all(last[p] > 0 for p in parts[:3]) and last["idle_s"] >= 0
    )  # files as fast as possible: rarely idle
    assert sum(last[p] for p in parts) <= last["uptime_s"] + 0.1  # parts of the loop's time (uptime rounded)
    for earlier, later in itertools.pairwise(stats):  # counted since the start: never decrease
        assert all(later[p] >= earlier[p] for p in parts)
    final = [d for d in json_logs(three_cameras["stderr"]) if d["message"].startswith("finished:")]
    assert final and all(final[-1][p] == last[p] for p in parts)


def test_snapshot_of_the_peak_frame_is_published_on_start(three_cameras):
    jpegs = three_cameras["sub"].payloads("/snapshot/fight")
    assert jpegs
    image = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.mean() > (DARK + BRIGHT) / 2  # the bright (anomalous) frame


def _persistent_broker(tmp_path):
    """Mosquitto that keeps sessions and queued messages across its restart (so the subscriber misses nothing)."""
    store = tmp_path / "broker_store"
    store.mkdir(exist_ok=True)
    # As root, Mosquitto would switch to the 'mosquitto' user, which cannot write the test's folder.
    lines = ["persistence true", f"persistence_location {store}/", f"user {getpass.getuser()}"]
    if find_mosquitto() is None:
        pytest.skip("a persistent broker session across restarts needs Mosquitto")
    return LocalBroker(config_lines=lines)


def test_broker_outage_loses_nothing_and_dedup_gives_each_message_once(bundle, videos, tmp_path):
    broker = _persistent_broker(tmp_path).start()
    try:
        sub = Subscriber(broker.port, client_id="outage-sub", clean=False)
        audit = tmp_path / "audit.jsonl"
        argv = runtime_argv(bundle, broker.port, tmp_path / "outbox.sqlite", [f"yard={videos['long']}"],
                            "--realtime", "--audit-log", str(audit))  # fmt: skip
        proc = start_runtime(argv)
        assert sub.wait_for(lambda s: any(e["type"] == "start" for e in s.events()), timeout=60)
        sub.close()
        broker.stop()  # events keep being produced into the outbox
        deadline = time.monotonic() + 30
        while len({r["event_id"] for r in read_audit(audit)}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        broker.start()
        first, sub = sub, Subscriber(broker.port, client_id="outage-sub", clean=False)
        code, err = finish(proc)
        produced = {(r["event_id"], r["seq"]) for r in read_audit(audit)}
        assert len({e for e, _ in produced}) == 2
        assert sub.wait_for(lambda s: set(dedup(first.events() + s.events())) >= produced, timeout=30)
        assert set(dedup(first.events() + sub.events())) == produced
        assert code == 0, err[-2000:]
        sub.close()
    finally:
        broker.stop()


def test_sigkill_mid_event_then_restart_delivers_the_pending_events(bundle, videos, tmp_path, broker):
    outbox, audit = tmp_path / "outbox.sqlite", tmp_path / "audit.jsonl"
    broker.stop()  # messages pile up in the outbox
    argv = runtime_argv(bundle, broker.port, outbox, [f"hall={videos['endless']}"], "--realtime",
                        "--audit-log", str(audit))  # fmt: skip
    proc = start_runtime(argv)
    deadline = time.monotonic() + 60
    while not any(r["type"] == "update" for r in read_audit(audit)) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    pending = {(r["event_id"], r["seq"]) for r in read_audit(audit)}
    assert pending and {r["type"] for r in read_audit(audit)} >= {"start", "update"}
    broker.start()
    sub = Subscriber(broker.port)
    quiet = make_video(tmp_path / "quiet.mp4", [(1, DARK)])
    code, err = finish(start_runtime(runtime_argv(bundle, broker.port, outbox, [f"hall={quiet}"])))
    assert code == 0, err[-2000:]
    assert sub.wait_for(lambda s: set(dedup(s.events())) >= pending, timeout=20)
    # the event the kill left open is ended by the restart, after its last stored message, at that message's time
    killed = {event_id for event_id, _ in pending}
    assert sub.wait_for(
        lambda s: {e["event_id"] for e in s.events() if e["type"] == "end"} >= killed, timeout=20
    )
    sub.close()
    received = list(dedup(sub.events()).values())  # sub.events() parses anew on each call
    for end in [e for e in received if e["type"] == "end" and e["event_id"] in killed]:
        last = max((e for e in received if e["event_id"] == end["event_id"] and e is not end),
                   key=lambda e: e["seq"])  # fmt: skip
        assert (
            last["type"] != "end" and end["seq"] == last["seq"] + 1 and end["ended_at"] == last["timestamp"]
        )
    assert "was still open when the runtime last stopped" in err


def test_sigterm_mid_event_sends_end_and_exits_zero(bundle, videos, tmp_path, broker):
    sub = Subscriber(broker.port)
    argv = runtime_argv(bundle, broker.port, tmp_path / "outbox.sqlite", [f"gate={videos['endless']}"],
                        "--realtime")  # fmt: skip
    proc = start_runtime(argv)
    assert sub.wait_for(lambda s: any(e["type"] == "start" for e in s.events()), timeout=60)
    code, err = finish(proc, sig=signal.SIGTERM)
    assert code == 0, err[-2000:]
    assert sub.wait_for(lambda s: any(e["type"] == "end" for e in s.events()), timeout=10)
    start = next(e for e in sub.events() if e["type"] == "start")
    end = next(e for e in sub.events() if e["type"] == "end")
    assert end["event_id"] == start["event_id"] and end["ended_at"] >= end["started_at"]
    assert sub.wait_for(lambda s: s.payloads("/status")[-1:] == [b"offline"], timeout=10)
    sub.close()


def test_int8_the_backend_cannot_load_falls_back_to_fp32_with_a_warning(tmp_path, caplog):
    from edge_runtime.bundle import load_bundle
    from edge_runtime.models import load_models

    bundle = load_bundle(make_bundle(tmp_path, broken_int8=True))
    assert bundle.precision == "int8"
    with caplog.at_level("WARNING", logger="edge_runtime.runtime"):
        models = load_models(bundle, backend="onnxruntime")
    assert models.precision == "fp32" and models.backbone.name == "backbone_fp32.onnx"
    assert any("falling back to fp32" in r.getMessage() for r in caplog.records)
    models.close()


def test_a_missing_backend_library_is_raised_not_fallen_back_from(bundle):
    from edge_runtime.backends import BackendUnavailable, is_installed
    from edge_runtime.bundle import load_bundle
    from edge_runtime.models import load_models

    if is_installed("tensorrt"):
        pytest.skip("TensorRT is installed here")
    with pytest.raises(BackendUnavailable, match=r"i3d-mtn-edge\[jetson\]"):
        load_models(load_bundle(bundle), precision="int8", backend="tensorrt")
