"""Hardware stream decoders: the GStreamer pipelines they run, and the one-line refusal of an OpenCV without
GStreamer (the pip wheel these tests run with has none, so the refusal is the real one).

Jetson's and Intel's decoders cannot run here; the pipeline around them (rtspsrc, depayload, parse, BGR,
appsink) is played for real from the real RTSP server with GStreamer's software H.264 decoder in their place.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from devices.profiles import STREAM_DECODERS, load_profile
from edge_runtime.source_specs import parse_source_spec
from edge_runtime.sources import SourceError, SourceSpecError
from edge_runtime.stream_decoders import (
    DECODERS,
    SOFTWARE,
    DecoderError,
    check_decoder,
    opencv_has_gstreamer,
    stream_pipeline,
)
from edge_runtime.stream_source import StreamSource
from tests.edge_runtime.runtime_helpers import ROOT, make_bundle
from tests.rtsp_helpers import RtspServer, encode_h264, gst_python_or_reason, play_pipeline

URL = "rtsp://viewer:s3cret@10.0.0.5:554/sub"
no_gstreamer = pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer")


def test_the_profile_keys_are_the_decoders_built_here():
    assert set(STREAM_DECODERS) == {SOFTWARE, *DECODERS}


def test_jetson_pipeline_decodes_with_nvv4l2decoder_and_copies_out_of_nvmm():
    elements = stream_pipeline(URL, "nvv4l2decoder", timeout_s=5).split(" ! ")
    assert elements[0] == f'rtspsrc location="{URL}" protocols=tcp latency=200 tcp-timeout=5000000'
    assert elements[1:8] == ["rtph264depay", "h264parse", "nvv4l2decoder", "nvvidconv",
                             "video/x-raw,format=BGRx", "videoconvert", "video/x-raw,format=BGR"]  # fmt: skip
    assert elements[-1].startswith("appsink ")


def test_vaapi_pipeline_follows_the_codec():
    h265 = stream_pipeline(URL, "vaapi", "h265").split(" ! ")
    assert h265[1:4] == ["rtph265depay", "h265parse", "vah265dec"]
    assert "vah264dec" in stream_pipeline(URL, "vaapi", "h264")


@pytest.mark.parametrize(
    ("url", "decoder", "codec", "says"),
    [("http://cam/stream", "vaapi", "h264", "rtsp:// and rtsps://"),
     ('rtsp://cam/a" ! fakesink', "vaapi", "h264", "spaces, quotes"),
     (URL, "vaapi", "mjpeg", "h264, h265"),
     (URL, "cuda", "h264", "known: nvv4l2decoder, vaapi")],
)  # fmt: skip
def test_what_a_pipeline_cannot_carry_is_refused_in_one_line(url, decoder, codec, says):
    with pytest.raises(DecoderError, match=says) as err:
        stream_pipeline(url, decoder, codec)
    assert "\n" not in str(err.value)


def test_software_decoding_needs_nothing_and_an_unknown_decoder_is_named():
    check_decoder(SOFTWARE)
    with pytest.raises(DecoderError, match="unknown stream decoder 'cuda'; known: software, nvv4l2decoder"):
        check_decoder("cuda")


@no_gstreamer
@pytest.mark.parametrize("decoder", ["nvv4l2decoder", "vaapi"])
def test_an_opencv_without_gstreamer_is_refused_saying_what_to_install(decoder):
    with pytest.raises(DecoderError) as err:
        check_decoder(decoder)
    message = str(err.value)
    assert "\n" not in message and "built without GStreamer" in message
    assert DECODERS[decoder].needs in message and "--stream-decoder software" in message


@no_gstreamer
def test_a_stream_with_a_hardware_decoder_is_refused_when_made_not_at_each_open():
    with pytest.raises(SourceError) as err:
        parse_source_spec(f"door={URL}", decoder="nvv4l2decoder")
    message = str(err.value)
    assert message.startswith("stream rtsp://viewer:***@10.0.0.5:554/sub: stream decoder 'nvv4l2decoder'")
    assert "s3cret" not in message and "\n" not in message


def test_a_bad_url_for_a_hardware_decoder_is_a_usage_error_naming_the_stream():
    with pytest.raises(
        SourceSpecError, match=r"^stream rtsp://viewer:\*\*\*@10\.0\.0\.5:554/sub: .*h264, h265"
    ):
        StreamSource(URL, decoder="vaapi", codec="vp8")


def test_http_streams_and_software_decoding_stay_on_ffmpeg():
    _, http = parse_source_spec("cam=http://cam/video.mjpg", decoder="vaapi")
    _, rtsp = parse_source_spec(f"cam={URL}")
    assert http.pipeline is None and rtsp.pipeline is None and rtsp.decoder == SOFTWARE


@no_gstreamer
@pytest.mark.parametrize(
    ("options", "decoder"),
    [(["--stream-decoder", "vaapi"], "vaapi"), (["--device-profile", "jetson-orin-nano"], "nvv4l2decoder")],
)
def test_the_runtime_refuses_to_start_in_one_line(options, decoder, tmp_path):
    argv = ["--bundle", str(make_bundle(tmp_path)), "--device-id", "dev1", "--source", f"door={URL}", *options,
            "--outbox", str(tmp_path / "o.sqlite"), "--broker", "127.0.0.1:9"]  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", *argv], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("edge-runtime: error: stream rtsp://viewer:***@") and decoder in lines[0]
    assert "s3cret" not in result.stderr


def test_shipped_profiles_choose_the_boards_decoder():
    chosen = {n: load_profile(n).streams.decoder for n in ("jetson-orin-nano", "jetson-agx-orin", "intel-nuc",
                                                          "intel-nuc-gpu", "generic-cpu")}  # fmt: skip
    assert chosen == {"jetson-orin-nano": "nvv4l2decoder", "jetson-agx-orin": "nvv4l2decoder",
                      "intel-nuc": "vaapi", "intel-nuc-gpu": "vaapi", "generic-cpu": "software"}  # fmt: skip


@pytest.mark.skipif(gst_python_or_reason()[0] is None, reason=gst_python_or_reason()[1])
def test_the_pipeline_around_the_decoder_plays_the_real_server_into_bgr_frames(tmp_path):
    clip = encode_h264(tmp_path / "ball.mp4", size="320x240", fps=30, seconds=2)
    with RtspServer({"/cam": clip}) as server:
        pipeline = stream_pipeline(server.url("/cam"), "vaapi")
        software = pipeline.replace("vah264dec", "openh264dec")  # GStreamer's software H.264 decoder
        assert software != pipeline
        report = play_pipeline(software, frames=20)
    assert report == "frames 20 320x240 BGR"
