"""Capture thread: bounded queues, no drops for files, reconnects with backoff, counters."""

import functools
import http.server
import threading
import time

import numpy as np
import pytest

from edge_runtime.capture import FULL_FRAMES_KEPT, START_BACKLOG, BackoffPolicy, CaptureThread
from edge_runtime.clip_frames import ClipFramer
from edge_runtime.preprocess import PreprocessConfig, resize_frame
from edge_runtime.resample import FrameResampler
from edge_runtime.sources import CameraSource, FileSource, FrameSource, SourceEnded, SourceError
from edge_runtime.stream_source import StreamSource
from edge_runtime.video import write_video

FAST = BackoffPolicy(initial=0.01, factor=2, max=0.05)


def _image(value, h=8, w=8):
    return np.full((h, w, 3), value, np.uint8)


def _wait_for(predicate, timeout=20.0):
    """Poll until ``predicate()``; the test fails on the assertion after it, not on the time taken."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


class ScriptedSource(FrameSource):
    """A live source playing a script: arrays are frames, None is an empty frame, "fail" a read error, an
    event a pause until it is set."""

    kind = "scripted"

    def __init__(self, script, *, live=True, open_failures=0):
        self.script, self._live, self.open_failures = list(script), live, open_failures
        self.opens = 0

    @property
    def description(self):
        return "scripted source"

    @property
    def live(self):
        return self._live

    def open(self):
        self.opens += 1
        if self.opens > 1 and self.open_failures > 0:
            self.open_failures -= 1
            raise SourceError("scripted source: device busy")

    def read(self):
        if not self.script:
            raise SourceEnded("script")
        item = self.script.pop(0)
        while isinstance(item, threading.Event):
            assert item.wait(10), "the test never set its event"
            item = self.script.pop(0)
        if isinstance(item, str):
            raise SourceError(f"scripted source: {item}")
        return item

    def release(self):
        pass


def _drain(cap):
    frames = []
    while (frame := cap.get(timeout=5)) is not None:
        frames.append(frame)
    return frames


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, [_image(10 * i, 16, 16) for i in range(20)], fps=50)
    return path


def test_file_without_realtime_never_drops(clip):
    with CaptureThread(FileSource(clip), "door", max_queue=2) as cap:
        frames = []
        while not cap.finished:
            frame = cap.get(timeout=5)
            if frame is not None:
                frames.append(frame)
                time.sleep(0.002)  # a slow consumer: the reader must wait, not drop
    assert [f.index for f in frames] == list(range(20))
    assert cap.stats.frames_dropped == 0 and cap.stats.frames_read == 20
    assert all(f.camera == "door" for f in frames)


def test_live_source_keeps_only_the_newest_frames():
    go = threading.Event()
    cap = CaptureThread(
        ScriptedSource([_image(0), go] + [_image(i) for i in range(1, 51)]), "cam0", max_queue=3
    )
    assert cap.start().get(timeout=5).index == 0  # the consumer has started
    go.set()
    assert cap.join(timeout=20)
    assert [f.index for f in _drain(cap)] == [48, 49, 50]
    assert cap.stats.frames_dropped == 47 and cap.finished


def test_frames_read_before_the_consumer_starts_wait_for_it_up_to_the_start_backlog():
    # a runtime's first camera reads while the others open: those frames are not dropped ...
    cap = CaptureThread(ScriptedSource([_image(i % 256) for i in range(60)]), "cam0", max_queue=3).start()
    assert cap.join(timeout=20)
    assert [f.index for f in _drain(cap)] == list(range(60)) and cap.stats.frames_dropped == 0
    # ... up to START_BACKLOG of them; and once the consumer drained the backlog, max_queue holds again
    go = threading.Event()
    script = [_image(i % 256) for i in range(START_BACKLOG + 10)] + [go] + [_image(1)] * 20
    cap = CaptureThread(ScriptedSource(script), "cam0", max_queue=3).start()
    _wait_for(lambda: cap.stats.frames_read == START_BACKLOG + 10)  # then it waits at the pause
    backlog = [cap.get(timeout=5) for _ in range(START_BACKLOG)]
    assert backlog[0].index == 10 and cap.stats.frames_dropped == 10  # the oldest went
    go.set()
    assert cap.join(timeout=20)
    assert len(_drain(cap)) == 3 and cap.stats.frames_dropped == 10 + 17


def test_realtime_file_is_live_and_timestamps_follow_its_fps(clip):
    with CaptureThread(FileSource(clip, realtime=True), "cam0", max_queue=64) as cap:
        assert cap.join(timeout=20)
        frames = _drain(cap)
    assert [f.index for f in frames] == list(range(20))
    np.testing.assert_allclose(np.diff([f.timestamp for f in frames]), 0.02, atol=1e-6)


def test_looping_file_runs_until_stopped(clip):
    cap = CaptureThread(FileSource(clip, loop=True), "cam0", max_queue=4).start()
    frames = [cap.get(timeout=5) for _ in range(45)]
    cap.stop()
    assert [f.index for f in frames] == list(range(45)) and cap.ended


def test_empty_frames_are_counted_and_skipped():
    script = [_image(1), None, np.zeros((0, 0, 3), np.uint8), _image(2)]
    cap = CaptureThread(ScriptedSource(script), "cam0").start()
    cap.join(timeout=20)
    frames = _drain(cap)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2]
    assert cap.stats.empty_frames == 2 and cap.stats.frames_read == 2


def test_resolution_changes_are_counted_and_frames_kept():
    script = [_image(1, 8, 8), _image(2, 8, 8), _image(3, 12, 6), _image(4, 8, 8)]
    cap = CaptureThread(ScriptedSource(script), "cam0").start()
    cap.join(timeout=20)
    assert [f.image.shape[:2] for f in _drain(cap)] == [(8, 8), (8, 8), (12, 6), (8, 8)]
    assert cap.stats.resolution_changes == 2


def test_grayscale_frames_become_bgr():
    cap = CaptureThread(ScriptedSource([np.full((4, 5), 7, np.uint8)]), "cam0").start()
    cap.join(timeout=20)
    assert _drain(cap)[0].image.shape == (4, 5, 3)


def test_read_failure_reconnects_with_backoff_and_marks_the_segment():
    source = ScriptedSource([_image(1), "unplugged", _image(2)], open_failures=2)
    cap = CaptureThread(source, "cam0", reconnect=FAST).start()
    cap.join(timeout=20)
    frames = _drain(cap)
    stats = cap.stats
    assert [f.segment for f in frames] == [0, 1]
    assert stats.reconnects == 1 and stats.reconnect_attempts == 3 and source.opens == 4
    assert stats.last_error == "scripted source: device busy"


def test_stall_triggers_a_reconnect():
    source = ScriptedSource([_image(1)] + [None] * 100_000)
    cap = CaptureThread(source, "cam0", reconnect=FAST, stall_timeout=0.05).start()
    _wait_for(lambda: cap.stats.reconnects >= 1)
    cap.stop()
    assert cap.stats.reconnects >= 1 and "no frame for 0.05 s" in cap.stats.last_error


def test_file_error_ends_the_capture_without_reconnecting(tmp_path):
    source = ScriptedSource([_image(1), "truncated"], live=False)
    cap = CaptureThread(source, "cam0", reconnect=FAST).start()
    assert cap.join(timeout=20)
    assert len(_drain(cap)) == 1 and cap.stats.reconnect_attempts == 0
    assert cap.stats.last_error == "scripted source: truncated" and cap.finished


def test_first_open_failure_is_raised_by_start():
    with pytest.raises(SourceError, match=r"cannot open camera 97 \(/dev/video97\)"):
        CaptureThread(CameraSource(97), "cam0").start()


def test_backoff_grows_to_its_maximum():
    policy = BackoffPolicy(initial=0.5, factor=2, max=30)
    assert [policy.delay(a) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    with pytest.raises(ValueError, match="bad backoff policy"):
        BackoffPolicy(initial=1, factor=0.5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(folder, port=0):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(_QuietHandler, directory=folder)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_http_stream_reconnects_after_the_server_comes_back(clip):
    server = _serve(str(clip.parent))
    port = server.server_address[1]
    source = StreamSource(f"http://127.0.0.1:{port}/{clip.name}", open_timeout_s=2, read_timeout_s=2)
    cap = CaptureThread(source, "cam0", max_queue=100, reconnect=FAST).start()
    try:
        _wait_for(lambda: cap.stats.frames_read >= 20)  # the whole clip, then the stream ends
        server.shutdown()
        server.server_close()
        gone = cap.stats
        _wait_for(lambda: cap.stats.reconnect_attempts >= gone.reconnect_attempts + 3)
        down = cap.stats  # the server is gone: reopening fails (but for one that raced the shutdown)
        assert down.reconnects <= gone.reconnects + 1 and down.last_error
        server = _serve(str(clip.parent), port)
        _wait_for(lambda: cap.stats.frames_read >= down.frames_read + 20)
    finally:
        cap.stop()
        server.shutdown()
        server.server_close()
    assert cap.stats.frames_read >= down.frames_read + 20 and cap.stats.reconnects > down.reconnects


SMALL = PreprocessConfig.square(8)


def test_shrink_queues_small_frames_and_keeps_only_the_newest_full_ones_of_a_live_source():
    big = [_image(i, 90, 160) for i in range(6)]
    shrink = functools.partial(resize_frame, cfg=SMALL)
    cap = CaptureThread(ScriptedSource(big), "cam0", max_queue=10, shrink=shrink).start()
    assert cap.join(timeout=20)
    frames = _drain(cap)
    assert [f.image.shape for f in frames] == [(8, 14, 3)] * 6 and all(f.shrunk for f in frames)
    kept = [f.index for f in frames if f.full is not None]
    assert kept == [6 - FULL_FRAMES_KEPT + i for i in range(FULL_FRAMES_KEPT)]
    assert all(
        f.full.shape == (90, 160, 3) and f.full[0, 0, 0] == f.index for f in frames if f.full is not None
    )
    assert cap.newest_full() is big[-1]


def test_a_file_played_as_fast_as_possible_keeps_every_full_frame(clip):
    shrink = functools.partial(resize_frame, cfg=SMALL)
    with CaptureThread(FileSource(clip), "cam0", max_queue=32, shrink=shrink) as cap:
        assert cap.join(timeout=20)
        frames = _drain(cap)
    assert len(frames) == 20 and all(f.full is not None and f.full.shape == (16, 16, 3) for f in frames)
    assert {f.image.shape for f in frames} == {(8, 8, 3)}


def test_without_shrink_a_frame_is_its_own_full_image():
    cap = CaptureThread(ScriptedSource([_image(3, 20, 30)]), "cam0").start()
    cap.join(timeout=20)
    frame = _drain(cap)[0]
    assert frame.full is frame.image and not frame.shrunk


def _source_indices(frames, fps):
    """Each frame's position in the video, from its timestamp (a file's frames are ``1 / fps`` apart)."""
    return [round((f.timestamp - frames[0].timestamp) * fps) for f in frames]


def test_with_a_frame_rate_the_frames_it_skips_are_neither_shrunk_nor_queued(clip):
    shrunk = []
    shrink = functools.partial(resize_frame, cfg=SMALL)
    with CaptureThread(FileSource(clip), "cam0", shrink=lambda f: shrunk.append(f) or shrink(f),
                       frame_rate=25.0) as cap:  # fmt: skip
        assert cap.join(timeout=20)
        frames = _drain(cap)
    assert _source_indices(frames, 50) == list(range(0, 20, 2))  # 50 fps -> 25 fps: every other frame
    assert [f.samples for f in frames] == [1] * 10 and all(f.shrunk for f in frames)
    assert len(shrunk) == 10 and (cap.stats.frames_read, cap.stats.frames_skipped) == (20, 10)


def test_a_source_slower_than_the_frame_rate_has_its_frames_fill_several_samples(clip):
    with CaptureThread(FileSource(clip), "cam0", frame_rate=100.0) as cap:
        assert cap.join(timeout=20)
        frames = _drain(cap)
    assert [f.samples for f in frames] == [1] + [2] * 19 and cap.stats.frames_skipped == 0


def test_a_frame_the_rate_skips_is_still_queued_for_its_clip_frame_and_not_shrunk(clip):
    shrink = functools.partial(resize_frame, cfg=SMALL)
    framer = ClipFramer(max_height=16, fps=10.0)  # every fifth frame of the 50 fps video
    with CaptureThread(FileSource(clip), "cam0", shrink=shrink, clip_frame=framer, frame_rate=25.0) as cap:
        assert cap.join(timeout=20)
        frames = _drain(cap)
    taken = {i: f for i, f in zip(_source_indices(frames, 50), frames, strict=True)}
    assert sorted(taken) == sorted(set(range(0, 20, 2)) | {5, 15})
    assert [i for i, f in taken.items() if f.clip is not None] == [0, 5, 10, 15]
    assert {i for i, f in taken.items() if f.samples == 0} == {5, 15}
    assert all(f.shrunk == (f.samples == 1) for f in frames)
    assert taken[5].image.size == 0 and taken[5].full is None  # the queue holds no picture for it
    assert cap.stats.frames_skipped == 20 - len(frames)


class TimedScript(ScriptedSource):
    """A scripted source whose frames are ``1 / fps`` apart."""

    def __init__(self, script, fps):
        super().__init__(script, live=False)
        self.fps, self.served = fps, 0

    def grab(self):
        super().grab()
        self.served += 1

    def timestamp(self):
        return (self.served - 1) / self.fps


def test_an_empty_frames_samples_go_to_the_next_good_frame_as_the_windows_resampler_gives_them():
    script = [_image(i) for i in range(8)]
    script[2] = None  # 30 fps -> 15 fps takes frames 0, 2, 4, 6; frame 2 is empty
    cap = CaptureThread(TimedScript(script, 30.0), "cam0", frame_rate=15.0).start()
    assert cap.join(timeout=20)
    frames = _drain(cap)
    assert [(int(f.image[0, 0, 0]), f.samples) for f in frames] == [(0, 1), (3, 1), (4, 1), (6, 1)]
    window = FrameResampler(15.0)  # what the window counted from every good frame's timestamp
    assert [window.count(i / 30) for i in (0, 1, 3, 4, 5, 6, 7)] == [1, 0, 1, 1, 0, 1, 0]
    assert (cap.stats.empty_frames, cap.stats.frames_skipped) == (1, 3)
