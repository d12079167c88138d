"""H.264 over RTSP from a real server (GStreamer's RTSP server on loopback), as IP cameras serve it.

The server (tests/rtsp_server.py) needs GStreamer's Python bindings, which scripts/install-system-deps.sh
installs; without them these tests skip and say so.
"""

from __future__ import annotations

import itertools
import json
import logging
import time

import cv2
import numpy as np
import pytest

from edge_runtime.capture import BackoffPolicy, CaptureThread
from edge_runtime.clip_frames import ClipFramer
from edge_runtime.record import RecordStream
from edge_runtime.sources import SourceError
from edge_runtime.stream_source import StreamSource
from tests.edge_runtime.runtime_helpers import (
    Subscriber,
    finish,
    json_logs,
    make_bundle,
    runtime_argv,
    start_runtime,
)
from tests.rtsp_helpers import RtspServer, encode_h264, gst_python_or_reason

python, why = gst_python_or_reason()
pytestmark = pytest.mark.skipif(python is None, reason=why)

FAST = BackoffPolicy(initial=0.05, factor=2, max=0.4)
PASSWORD = "n0t-in-any-log"


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """5 s of generated 320x240 30 fps H.264 (baseline, a key frame every second) in an mp4."""
    return encode_h264(tmp_path_factory.mktemp("rtsp") / "ball.mp4", size="320x240", fps=30, seconds=5)


@pytest.fixture
def server(clip):
    with RtspServer({"/cam": clip}) as s:
        yield s


def _stream_fps(sub, camera):
    """The newest ``stream_fps`` of ``camera`` in the runtime's /stats messages (0 before any)."""
    stats = [json.loads(p) for p in sub.payloads("/stats")]
    return stats[-1]["cameras"][camera]["stream_fps"] if stats else 0.0


def _stream(url):
    return StreamSource(url, open_timeout_s=5, read_timeout_s=3)


def test_frames_arrive_at_the_streams_own_rate(server):
    with CaptureThread(_stream(server.url("/cam")), "door", max_queue=300) as cap:
        _wait_for(lambda: cap.stats.frames_read >= 60)
        stats = cap.stats
        frames = [cap.get(timeout=0) for _ in range(60)]
    assert stats.frames_read >= 60 and stats.frames_dropped == 0
    assert {f.image.shape for f in frames} == {(240, 320, 3)}
    assert stats.declared_fps == 30.0
    assert 27.0 <= stats.stream_fps <= 33.0  # timed by the stream's presentation times
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(frames)]
    assert min(gaps) >= 0 and abs(sum(gaps) / len(gaps) - 1 / 30) < 0.005
    assert frames[-1].timestamp <= time.time()  # never stamped later than it arrived


def test_a_server_restart_is_survived_and_counted(server):
    cap = CaptureThread(_stream(server.url("/cam")), "door", max_queue=300, reconnect=FAST).start()
    try:
        _wait_for(lambda: cap.stats.frames_read >= 10)
        server.stop()
        before = cap.stats
        _wait_for(lambda: cap.stats.reconnect_attempts >= before.reconnect_attempts + 2)
        down = cap.stats  # no server: reopening fails, with a reason
        assert down.last_error and "rtsp://127.0.0.1" in down.last_error
        server.start()
        _wait_for(
            lambda: cap.stats.reconnects > down.reconnects and cap.stats.frames_read >= down.frames_read + 10
        )
        after = cap.stats
        frames = [f for f in iter(lambda: cap.get(timeout=0), None)]
    finally:
        cap.stop()
    assert after.reconnects > down.reconnects and after.frames_read >= down.frames_read + 10
    assert frames[-1].segment > frames[0].segment  # the runtime restarts its snippet window there


def test_a_wrong_path_is_one_line_naming_the_stream(server):
    source = _stream(server.url("/no-such-camera"))
    with pytest.raises(SourceError) as err:
        source.open()
    message = str(err.value)
    assert "\n" not in message and message.startswith("cannot open stream rtsp://127.0.0.1:")
    assert "/no-such-camera" in message


def test_credentials_in_the_url_never_reach_a_log(clip, tmp_path, caplog, broker):
    with RtspServer({"/cam": clip}, user="viewer", password=PASSWORD) as server:
        wrong = _stream(server.url("/cam", user="viewer", password=PASSWORD + "x"))
        with pytest.raises(SourceError) as err:
            wrong.open()  # refused by the server: the error shows the user, not the password
        assert PASSWORD not in str(err.value) and "viewer:***@" in str(err.value)
        sub = Subscriber(broker.port)
        url = server.url("/cam", user="viewer", password=PASSWORD)
        argv = runtime_argv(make_bundle(tmp_path), broker.port, tmp_path / "outbox.sqlite", [f"door={url}"],
                            "--log-level", "debug")  # fmt: skip
        proc = start_runtime(argv)
        ok = sub.wait_for(lambda s: 27 <= _stream_fps(s, "door") <= 33, timeout=30)
        code, stderr = finish(proc, sig=15)
        sub.close()
        with caplog.at_level(logging.DEBUG):  # in-process too: the capture thread's own messages
            cap = CaptureThread(wrong, "door", reconnect=FAST).start()
            _wait_for(lambda: cap.stats.reconnect_attempts >= 2)
            cap.stop()
    assert ok, stderr[-2000:]  # frames came through the authenticated stream, at about 30 fps
    assert code == 0 and PASSWORD not in stderr and "viewer:***@" in stderr
    assert not [p for p in sub.payloads("") if PASSWORD.encode() in p]
    finished = [r for r in json_logs(stderr) if r["message"].startswith("finished")]
    assert finished and finished[-1]["frames"] > 0
    assert "viewer:***@" in caplog.text and PASSWORD not in caplog.text


@pytest.fixture(scope="module")
def two_streams():
    """A camera's two streams, as an IP camera serves them: one live scene at 640x360 and at 320x180."""
    with RtspServer({}, live={"/main": "640x360", "/sub": "320x180"}) as server:
        yield server


def test_detect_and_record_streams_are_aligned_by_timestamps(two_streams):
    detect = CaptureThread(_stream(two_streams.url("/sub")), "door", max_queue=300)
    record = RecordStream(_stream(two_streams.url("/main")), "door", keep_every_s=0.1)
    detect.start(), record.start()
    try:
        _wait_for(lambda: detect.stats.frames_read >= 75 and record.stats.kept >= 5)
    finally:
        record.stop(), detect.stop()
    frames = list(iter(lambda: detect.get(timeout=0), None))
    near = record.frame_near(float("inf"))  # the newest full-resolution frame kept
    assert near is not None and near[1].shape == (360, 640, 3)
    rec_ts, rec_image = near
    # The detect frame that shows the same moment (the ball in the same place) has about the same timestamp:
    # within the runtime's alignment window (on a loaded 2-core machine offsets of 0.25-0.5 s were seen).
    small = cv2.resize(rec_image, (320, 180), interpolation=cv2.INTER_AREA).astype(np.float32)
    same = min(frames, key=lambda f: float(np.mean((f.image.astype(np.float32) - small) ** 2)))
    assert abs(same.timestamp - rec_ts) <= 1.0, (same.timestamp - rec_ts, same.index, len(frames))
    assert record.stats.stream_fps > 20 and record.stats.frames > record.stats.kept


def test_a_record_stream_makes_clip_frames_at_its_resolution_and_the_clip_rate(two_streams):
    record = RecordStream(_stream(two_streams.url("/main")), "door", clip_frame=ClipFramer(480, 15.0)).start()
    try:
        _wait_for(lambda: record.stats.clip_frames >= 30)
    finally:
        record.stop()
        record.join(5)
    frames = record.take_clip_frames()
    assert len(frames) >= 30 and {(f.width, f.height) for f in frames} == {(640, 360)}  # the record stream's
    gaps = sorted(b.timestamp - a.timestamp for a, b in itertools.pairwise(frames))
    assert 1 / 18 <= gaps[len(gaps) // 2] <= 1 / 12  # 15 a second of the stream's 30, by its own clock
    assert record.stats.frames > record.stats.clip_frames


def test_the_runtime_reads_a_record_stream_beside_the_detect_stream(two_streams, tmp_path, broker):
    sub = Subscriber(broker.port)
    spec = f"door={two_streams.url('/sub')}|record={two_streams.url('/main')}"
    argv = runtime_argv(make_bundle(tmp_path), broker.port, tmp_path / "outbox.sqlite", [spec])
    proc = start_runtime(argv)

    def record_stats(s):
        stats = [json.loads(p) for p in s.payloads("/stats")]
        return stats[-1]["cameras"]["door"].get("record", {}) if stats else {}

    ok = sub.wait_for(
        lambda s: record_stats(s).get("frames", 0) > 30 and record_stats(s)["offset_ms"] is not None
    )
    code, stderr = finish(proc, sig=15)
    sub.close()
    assert ok and code == 0, stderr[-2000:]
    rec = record_stats(sub)
    assert rec["last_error"] is None and 25 <= rec["stream_fps"] <= 35 and abs(rec["offset_ms"]) <= 1000
