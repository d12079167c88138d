"""Frame sources and the [NAME=]SOURCE specification."""

import numpy as np
import pytest

from edge_runtime.source_specs import parse_source_spec, parse_source_specs
from edge_runtime.sources import (
    CameraSource,
    FileSource,
    GStreamerSource,
    SourceEnded,
    SourceError,
    SourceSpecError,
)
from edge_runtime.stream_decoders import opencv_has_gstreamer
from edge_runtime.stream_source import StreamClock, StreamSource
from edge_runtime.urls import redact_url
from edge_runtime.video import write_video


@pytest.fixture
def clip(tmp_path):
    frames = [np.full((24, 32, 3), 20 * i, np.uint8) for i in range(5)]
    path = tmp_path / "front door (1).mp4"
    write_video(path, frames, fps=10)
    return path


def test_camera_index_gets_a_positional_default_name():
    name, source = parse_source_spec("0", position=2)
    assert name == "cam2" and isinstance(source, CameraSource) and source.device == "/dev/video0"


def test_dev_video_path_is_a_camera():
    assert parse_source_spec("/dev/video3")[1].index == 3
    assert parse_source_spec("/dev/v4l/by-id/usb-cam")[1].device == "/dev/v4l/by-id/usb-cam"


def test_named_stream_keeps_equals_signs_of_its_query():
    name, source = parse_source_spec("yard=rtsp://10.0.0.5/live?channel=1")
    assert name == "yard" and isinstance(source, StreamSource)
    assert source.url == "rtsp://10.0.0.5/live?channel=1"
    unnamed, stream = parse_source_spec("http://10.0.0.5/cam.mjpg?x=1")
    assert unnamed == "cam0" and stream.url.endswith("?x=1")


def test_file_gets_its_stem_made_safe_as_name(clip):
    name, source = parse_source_spec(str(clip), realtime=True, loop=True)
    assert name == "front_door_1_" and isinstance(source, FileSource)
    assert source.realtime and source.loop and source.live


def test_gstreamer_pipeline_is_recognised():
    _, source = parse_source_spec("gst:videotestsrc ! videoconvert ! appsink")
    assert isinstance(source, GStreamerSource) and source.pipeline.startswith("videotestsrc")


@pytest.mark.parametrize(
    "spec,message",
    [
        ("bad name=0", "camera name 'bad name' is not allowed"),
        ("door#1=0", "camera name 'door#1' is not allowed"),
        ("door=", "nothing after 'door='"),
        ("", "empty source"),
        ("missing.mp4", "is not a camera index, /dev/video path, stream URL"),
        ("ftp://host/x", "must start with one of"),
        ("gst:videotestsrc", "must end in 'appsink'"),
    ],
)
def test_bad_specs_are_one_line_usage_errors(spec, message):
    with pytest.raises(SourceSpecError, match=message) as info:
        parse_source_spec(spec)
    assert "\n" not in str(info.value)


def test_duplicate_names_are_refused_without_leaking_passwords():
    with pytest.raises(SourceSpecError, match="two sources are named 'cam'") as info:
        parse_source_specs(["cam=0", "cam=rtsp://admin:hunter2@10.0.0.5/s"])
    assert "hunter2" not in str(info.value)


def test_several_specs_get_positional_names():
    assert [n for n, _ in parse_source_specs(["0", "1", "door=2"])] == ["cam0", "cam1", "door"]


def test_passwords_are_masked_in_descriptions():
    source = StreamSource("rtsp://admin:hunter2@10.0.0.5:554/s")
    assert "hunter2" not in source.description and "admin:***@10.0.0.5:554" in source.description
    assert redact_url("rtsp://10.0.0.5/s") == "rtsp://10.0.0.5/s"


def test_missing_camera_is_a_one_line_error_naming_the_device():
    source = CameraSource(97)
    with pytest.raises(SourceError, match=r"^cannot open camera 97 \(/dev/video97\): ") as info:
        source.open()
    assert "\n" not in str(info.value)


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer")
def test_gstreamer_without_support_says_so():
    with pytest.raises(SourceError, match="built without GStreamer"):
        GStreamerSource("videotestsrc ! appsink").open()


def test_file_source_reads_every_frame_then_ends(clip):
    source = FileSource(clip)
    source.open()
    frames = []
    with pytest.raises(SourceEnded):
        while True:
            frames.append(source.read())
    assert len(frames) == 5 and frames[0].shape == (24, 32, 3)
    assert not source.live


def test_file_timestamps_follow_the_videos_fps(clip):
    source = FileSource(clip)
    source.open()
    stamps = []
    for _ in range(3):
        source.read()
        stamps.append(source.timestamp())
    np.testing.assert_allclose(np.diff(stamps), [0.1, 0.1], atol=1e-6)  # epoch-second floats


def test_looping_file_restarts(clip):
    source = FileSource(clip, loop=True)
    source.open()
    frames = [source.read() for _ in range(7)]
    np.testing.assert_array_equal(frames[5], frames[0])


def test_missing_file_fails_at_open(tmp_path):
    with pytest.raises(SourceError, match="video file not found"):
        FileSource(tmp_path / "gone.mp4").open()


def test_a_record_stream_rides_on_its_detect_stream():
    name, source = parse_source_spec(
        "door=rtsp://u:hunter2@10.0.0.5/sub|record=rtsp://u:hunter2@10.0.0.5/main"
    )
    assert name == "door" and source.description == "stream rtsp://u:***@10.0.0.5/sub"
    assert isinstance(source.record, StreamSource) and source.record.description.endswith("/main")
    assert parse_source_spec("yard=rtsp://10.0.0.6/sub")[1].record is None


@pytest.mark.parametrize(
    "spec,message",
    [
        ("door=rtsp://h/sub|record=", "nothing after '|record='"),
        ("door=rtsp://h/sub|record=ftp://h/main", "must start with one of"),
    ],
)
def test_a_bad_record_stream_is_a_one_line_usage_error(spec, message):
    with pytest.raises(SourceSpecError, match=message) as info:
        parse_source_spec(spec)
    assert "\n" not in str(info.value)


def test_detect_and_record_must_both_be_live_or_both_files(clip):
    with pytest.raises(SourceSpecError, match="both be live or both files"):
        parse_source_spec(f"door=rtsp://h:pw@x/sub|record={clip}")


def _session(clock, sent_at, delays):
    """Stamps of frames 30 fps apart, sent from wall time ``sent_at``, arriving ``delays`` seconds later."""
    return [clock.stamp(i / 30, sent_at + i / 30 + d) for i, d in enumerate(delays)]


def test_the_burst_buffered_while_opening_keeps_the_streams_spacing():
    """FFmpeg hands out the frames it buffered while opening all at once: they are stamped by their
    presentation times from the time the open began, not squeezed together, and never later than they
    arrived; timely frames after them keep the stream's own rate."""
    opened = 1000.0
    burst = [0.3 - i / 30 for i in range(9)]  # frames 0-8 arrive together at 1000.3
    stamps = _session(StreamClock(opened), opened, burst + [0.004] * 21)
    steps = np.diff(stamps) - 1 / 30
    # one step, when the opening ends: the open-time anchor was early by the timely frames' 4 ms delay
    end = 9 + StreamClock.STEADY_FRAMES - 1
    np.testing.assert_allclose(steps[end], 0.004, atol=1e-6)
    np.testing.assert_allclose(np.delete(steps, end), 0.0, atol=1e-6)
    assert all(
        ts <= opened + i / 30 + d for i, (ts, d) in enumerate(zip(stamps, burst + [0.004] * 21, strict=False))
    )


def test_the_opening_ends_once_frames_arrive_steadily_not_after_a_fixed_time():
    """A session whose server waited 0.9 s before its first frame, and sent no burst (a copied packet stream):
    its open-time anchor is 0.9 s early for the first :attr:`StreamClock.STEADY_FRAMES` frames only; a reader
    still catching up (each frame less delayed than the last) stays in the opening until ``SETTLE_S``."""
    sent = 1000.0
    late = _session(StreamClock(sent - 0.9), sent, [0.004] * 10)
    steady = StreamClock.STEADY_FRAMES
    np.testing.assert_allclose(late[:steady], sent - 0.9 + np.arange(steady) / 30, atol=1e-6)
    np.testing.assert_allclose(late[steady:], sent + np.arange(steady, 10) / 30 + 0.004, atol=1e-6)
    frames = int(StreamClock.SETTLE_S * 30) + 5
    catching_up = _session(StreamClock(sent - 0.9), sent, [1.0 - 0.01 * i for i in range(frames)])
    settle = int(StreamClock.SETTLE_S * 30)
    np.testing.assert_allclose(catching_up[settle - 1], sent - 0.9 + (settle - 1) / 30, atol=1e-6)
    assert catching_up[settle] > sent + settle / 30  # past SETTLE_S: the least delay (still falling) anchors


def test_two_sessions_agree_after_the_opening_however_long_each_server_took_to_send_its_first_frame():
    """The open-time anchor is early by the server's wait before its first frame (0.9 s in a full test run);
    past the opening (a few frames after the burst) the least delayed arrival sets it, so two sessions of one
    stream agree within their delays, and the burst still kept the stream's spacing before that."""
    sent = 1000.0  # the wall time the stream's frame 0 was sent to both sessions
    frames = int(StreamClock.SETTLE_S * 30) + 30
    prompt = _session(StreamClock(sent - 0.01), sent, [0.004] * frames)
    slow = _session(StreamClock(sent - 0.9), sent, [0.3 - i / 30 for i in range(9)] + [0.02] * (frames - 9))
    assert slow[0] == pytest.approx(sent - 0.9)  # the opening: anchored at the open (the burst's spacing)
    np.testing.assert_allclose(np.diff(slow[:9]), 1 / 30, atol=1e-6)
    settled = 9 + 1 + StreamClock.STEADY_FRAMES  # the burst, the first timely frame, then steady ones
    offsets = np.array(slow[settled:]) - np.array(prompt[settled:])
    assert np.all(np.abs(offsets) <= 0.03), offsets  # the two steady delays' difference, not 0.9 s
    assert np.all(np.diff(slow) >= 0)  # never back in time
    assert all(ts <= sent + i / 30 + 0.3 for i, ts in enumerate(slow))  # never later than it arrived


def test_a_stream_that_restarts_gets_a_new_anchor():
    clock = StreamClock(1000.0)
    before = _session(clock, 1000.0, [0.01] * 5)
    after = clock.stamp(0.0, 1010.0)  # presentation times start again
    assert after == 1010.0 and after > before[-1]
