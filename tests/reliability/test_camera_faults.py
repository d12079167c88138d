"""Camera faults: a source that stalls, hangs, sends empty frames, changes resolution or disappears.

The :class:`~edge_runtime.capture.CaptureThread` must keep running through all of them, reopen the source with
backoff, and count each fault in its stats. Two kinds of sources: :class:`FaultySource` (a ``FrameSource``
whose behaviour the test switches at run time) and a real HTTP MJPEG stream served on loopback and read by
:class:`~edge_runtime.stream_source.StreamSource` through OpenCV's FFmpeg backend.
"""

from __future__ import annotations

import http.server
import logging
import random
import re
import threading
import time

import cv2
import numpy as np
import pytest

from edge_runtime.capture import BackoffPolicy, CaptureThread
from edge_runtime.sources import FrameSource, SourceError
from edge_runtime.stream_source import StreamSource

from .helpers import wait_for

FAST = BackoffPolicy(initial=0.02, factor=2.0, max=0.2)
SEED = 4242


class FaultySource(FrameSource):
    """A live synthetic camera whose ``mode`` the test switches: ``frames`` (at ``size``), ``empty``
    (reads give no image), ``stall`` (no image until it is reopened), ``hang`` (a read blocks, then fails
    like OpenCV's read timeout, until reopened), ``gone`` (unplugged: reads and opens fail)."""

    kind = "faulty"

    def __init__(self, size: tuple[int, int] = (32, 24)) -> None:
        self.mode = "frames"
        self.size = size
        self.opens = 0
        self.open_failures = 0
        self._open = False
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return "faulty test camera"

    def set(self, mode: str, size: tuple[int, int] | None = None) -> None:
        with self._lock:
            self.mode = mode
            self.size = size or self.size

    def open(self) -> None:
        with self._lock:
            self.opens += 1
            if self.mode == "gone":
                self.open_failures += 1
                raise SourceError("faulty test camera: no such device")
            if self.mode in ("stall", "hang"):  # it answers again after a reconnect
                self.mode = "frames"
            self._open = True

    def read(self) -> np.ndarray | None:
        with self._lock:
            mode, (w, h), is_open = self.mode, self.size, self._open
        if not is_open or mode == "gone":
            raise SourceError("faulty test camera: read failed (unplugged)")
        if mode == "hang":
            time.sleep(0.05)  # OpenCV's read blocks until its read timeout, then reports a failed read
            raise SourceError("faulty test camera: read timed out")
        time.sleep(0.002)  # ~500 fps: a live clock, without spinning a shared CPU
        if mode in ("empty", "stall"):
            return None
        return np.full((h, w, 3), 128, np.uint8)

    def release(self) -> None:
        with self._lock:
            self._open = False


def _frames_flow(cap: CaptureThread, more: int = 10) -> None:
    start = cap.stats.frames_read
    wait_for(lambda: cap.stats.frames_read >= start + more, 20, f"{more} more frames")
    while cap.get(timeout=0) is not None:  # keep the queue short
        pass


@pytest.fixture
def faulty():
    source = FaultySource()
    cap = CaptureThread(source, "cam-faulty", max_queue=8, reconnect=FAST, stall_timeout=0.3).start()
    _frames_flow(cap)
    yield source, cap
    cap.stop()


def test_empty_frames_are_counted_and_capture_goes_on(faulty):
    source, cap = faulty
    source.set("empty")
    wait_for(lambda: cap.stats.empty_frames >= 20, 20, "empty frames counted")
    source.set("frames")
    _frames_flow(cap)
    assert not cap.ended and cap.stats.reconnects == 0


def test_stalled_camera_is_reopened_after_the_stall_timeout(faulty):
    source, cap = faulty
    source.set("stall")  # frames stop coming for longer than stall_timeout
    wait_for(lambda: cap.stats.reconnects >= 1, 20, "a reconnect after the stall")
    _frames_flow(cap)
    stats = cap.stats
    assert not cap.ended and stats.reconnects >= 1 and "no frame for" in (stats.last_error or "")


def test_hanging_read_is_reopened(faulty):
    source, cap = faulty
    source.set("hang")
    wait_for(lambda: cap.stats.reconnects >= 1, 20, "a reconnect after the hung read")
    _frames_flow(cap)
    assert not cap.ended and "timed out" in (cap.stats.last_error or "")


def test_resolution_change_mid_stream_is_counted_and_new_frames_keep_their_size(faulty):
    source, cap = faulty
    source.set("frames", (48, 36))
    wait_for(lambda: cap.stats.resolution_changes >= 1, 20, "the resolution change")
    frame = cap.get(timeout=5)
    while frame is not None and frame.image.shape != (36, 48, 3):
        frame = cap.get(timeout=5)
    assert frame is not None and cap.stats.resolution_changes == 1 and not cap.ended


def test_unplugged_camera_is_retried_with_growing_backoff_until_it_returns(faulty, caplog):
    source, cap = faulty
    caplog.set_level(logging.WARNING, logger="edge_runtime.capture")
    source.set("gone")
    wait_for(lambda: source.open_failures >= 4, 20, "four failed reopen attempts")
    source.set("frames")
    _frames_flow(cap)
    delays = [float(d) for d in re.findall(r"reconnect attempt \d+ in ([0-9.]+) s", caplog.text)]
    stats = cap.stats
    assert stats.reconnects == 1 and stats.reconnect_attempts == len(delays) >= 5
    assert delays == sorted(delays) and delays[-1] > delays[0]  # 0.02, 0.04, 0.08, ... (backoff)
    assert not cap.ended


def test_random_fault_sequence_is_survived_and_every_fault_counted(faulty):
    source, cap = faulty
    rng = random.Random(SEED)
    injected = {"empty": 0, "stall": 0, "hang": 0, "gone": 0, "resize": 0}
    sizes = [(32, 24), (48, 36), (64, 48), (40, 30)]
    size = source.size
    for _ in range(12):
        fault = rng.choice(sorted(injected))
        before = cap.stats
        if fault == "resize":
            size = rng.choice([s for s in sizes if s != size])
            source.set("frames", size)
            wait_for(lambda b=before: cap.stats.resolution_changes > b.resolution_changes, 20, "resize")
        elif fault == "empty":
            source.set("empty")
            wait_for(lambda b=before: cap.stats.empty_frames >= b.empty_frames + 5, 20, "empty frames")
            source.set("frames")
        elif fault == "stall":
            source.set("stall")
            wait_for(lambda b=before: cap.stats.reconnects > b.reconnects, 20, "stall reopened")
        elif fault == "hang":
            source.set("hang")
            wait_for(lambda b=before: cap.stats.reconnects > b.reconnects, 20, "hang reopened")
        else:
            source.set("gone")
            wait_for(lambda b=before: cap.stats.reconnect_attempts >= b.reconnect_attempts + 2, 20, "gone")
            source.set("frames")
        injected[fault] += 1
        _frames_flow(cap, 5)
    stats = cap.stats
    print(
        f"\n[camera faults] injected={injected} frames_read={stats.frames_read} empty_frames={stats.empty_frames} "
        f"resolution_changes={stats.resolution_changes} reconnects={stats.reconnects} "
        f"reconnect_attempts={stats.reconnect_attempts} frames_dropped={stats.frames_dropped}"
    )
    assert not cap.ended
    assert stats.resolution_changes == injected["resize"]
    assert stats.reconnects == injected["stall"] + injected["hang"] + injected["gone"]
    assert stats.reconnect_attempts >= stats.reconnects + injected["gone"]
    assert stats.empty_frames >= 5 * injected["empty"]


# ---- a real MJPEG stream over HTTP ------------------------------------------------------------------------


class MjpegServer:
    """``multipart/x-mixed-replace`` JPEG stream on loopback; ``stop()`` cuts every client, ``pause`` stalls."""

    def __init__(self, port: int = 0) -> None:
        self.paused = threading.Event()
        self._stopping = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not server._stopping.is_set():
                        if server.paused.is_set():  # the connection stays open, no bytes come
                            time.sleep(0.02)
                            continue
                        ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), i % 250, np.uint8))
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg.tobytes() + b"\r\n")
                        i += 1
                        time.sleep(0.02)
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def stop(self) -> None:
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _serve_again(port: int) -> MjpegServer:
    """A new server on the old port (the stream "comes back"), retrying while the port is still taken."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return MjpegServer(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_mjpeg_stream_that_disappears_and_comes_back_is_reconnected():
    server = MjpegServer()
    port = server.port
    source = StreamSource(server.url, open_timeout_s=1, read_timeout_s=1)
    cap = CaptureThread(source, "cam-http", max_queue=8, reconnect=FAST, stall_timeout=2).start()
    try:
        _frames_flow(cap)
        server.stop()
        wait_for(lambda: cap.stats.reconnect_attempts >= 3, 30, "failing reconnect attempts while it is gone")
        down = cap.stats
        server = _serve_again(port)
        wait_for(lambda: cap.stats.reconnects > down.reconnects, 30, "the reconnect once it is back")
        _frames_flow(cap)
        alive = not cap.ended
    finally:
        cap.stop()
        server.stop()
    stats = cap.stats
    print(f"\n[mjpeg gone/back] reconnect_attempts={stats.reconnect_attempts} reconnects={stats.reconnects}")
    assert alive and stats.reconnects >= 1 and stats.reconnect_attempts > stats.reconnects


def test_mjpeg_stream_that_is_down_at_start_is_opened_once_it_comes_up():
    server = MjpegServer()
    port = server.port
    server.stop()  # the camera boots after the device: nothing listens on its port yet
    source = StreamSource(f"http://127.0.0.1:{port}/stream.mjpg", open_timeout_s=1, read_timeout_s=1)
    cap = CaptureThread(source, "cam-late", max_queue=8, reconnect=FAST, stall_timeout=2).start()  # no raise
    try:
        wait_for(lambda: cap.stats.reconnect_attempts >= 2, 30, "reopen attempts while it is down")
        assert cap.stats.reconnects == 0 and cap.stats.frames_read == 0 and not cap.ended
        server = _serve_again(port)
        wait_for(lambda: cap.stats.reconnects == 1, 30, "the open once it is up")
        _frames_flow(cap)
    finally:
        cap.stop()
        server.stop()


def test_a_camera_that_is_not_there_at_start_is_still_an_error():
    source = FaultySource()
    source.set("gone")
    with pytest.raises(SourceError, match="no such device"):
        CaptureThread(source, "cam-gone", reconnect=FAST).start()
    assert source.opens == 1  # no retry: a local camera or a file does not appear by waiting


def test_mjpeg_stream_that_stalls_is_reopened():
    server = MjpegServer()
    source = StreamSource(server.url, open_timeout_s=1, read_timeout_s=1)
    cap = CaptureThread(source, "cam-http", max_queue=8, reconnect=FAST, stall_timeout=2).start()
    try:
        _frames_flow(cap)
        server.paused.set()  # the socket stays open, nothing arrives: only the read timeout notices
        wait_for(lambda: cap.stats.reconnect_attempts >= 1, 30, "a reconnect after the stall")
        server.paused.clear()
        _frames_flow(cap)
        alive = not cap.ended
    finally:
        cap.stop()
        server.stop()
    stats = cap.stats
    print(f"\n[mjpeg stall] reconnect_attempts={stats.reconnect_attempts} reconnects={stats.reconnects}")
    assert alive and stats.reconnects >= 1 and "read failed" in (stats.last_error or "")
