"""Where clips come from: ``[clips] mode`` (copy refused by name for a camera without an RTSP H.264 stream),
the packet ring's key-frame bound, and when a clip source counts as down and up again. No server: the RTSP
tests are in test_clip_copy.py."""

from __future__ import annotations

import argparse
from fractions import Fraction

import pytest

from devices.clip_settings import ClipSettings
from edge_runtime.clip_options import clip_settings
from edge_runtime.clip_sources import DOWN_AFTER_S, UP_AFTER_S, ClipModeError, SourceHealth, packet_url
from edge_runtime.packet_stream import PacketFormat, PacketRing, StreamPacket
from edge_runtime.source_specs import parse_source_spec
from edge_runtime.usage import UsageError

pytest.importorskip("av", reason="event clips need PyAV (the 'clips' extra)")

FMT = PacketFormat("h264", 64, 48, Fraction(1, 90000), b"", 1)
GOP = 10  # packets per group of pictures in these tests
FPS = 30


def _packet(i: int, fmt: PacketFormat = FMT) -> StreamPacket:
    return StreamPacket(100.0 + i / FPS, i * 3000, i * 3000, i % GOP == 0, bytes(100), fmt)


def _source(spec: str):
    return parse_source_spec(spec, 0)[1]


def test_auto_copies_the_record_stream_else_the_rtsp_detect_stream_else_reencodes():
    both = _source("door=rtsp://cam/sub|record=rtsp://cam/main")
    assert packet_url("door", both, "auto") == "rtsp://cam/main"
    assert packet_url("door", _source("door=rtsp://cam/sub"), "auto") == "rtsp://cam/sub"
    assert (
        packet_url("door", _source("door=rtsp://cam/sub|record=http://cam/main"), "copy") == "rtsp://cam/sub"
    )
    assert packet_url("door", _source("door=http://cam/mjpeg"), "auto") is None
    assert packet_url("door", both, "reencode") is None


@pytest.mark.parametrize("spec", ["door=http://cam/video.mjpg", "door={tmp}/video.mp4"])
def test_copy_is_refused_by_name_for_a_camera_without_an_rtsp_stream(spec, tmp_path):
    (tmp_path / "video.mp4").write_bytes(b"not opened here")
    with pytest.raises(ClipModeError) as info:
        packet_url("door", _source(spec.format(tmp=tmp_path)), "copy")
    message = str(info.value)
    assert "\n" not in message and message.startswith('camera door: [clips] mode = "copy" needs an RTSP')


def test_clip_mode_option_overrides_the_profile_and_copy_is_checked_at_start(tmp_path):
    args = argparse.Namespace(clips_dir=str(tmp_path), clip_mode="copy")
    with pytest.raises(ClipModeError, match="camera door"):
        clip_settings(args, None, "dev", cameras=[("door", _source("door=http://cam/video.mjpg"))])
    settings, _ = clip_settings(args, None, "dev", cameras=[("door", _source("door=rtsp://cam/sub"))])
    assert settings == ClipSettings(mode="copy")
    with pytest.raises(UsageError, match="--clip-mode needs clips"):
        clip_settings(argparse.Namespace(clips_dir=None, clip_mode="copy"), None, "dev")


def test_packet_ring_starts_at_a_key_frame_and_keeps_its_seconds_plus_one_group():
    ring = PacketRing(seconds=1.0, max_bytes=10**9)
    for i in range(3, 200):  # begins between key frames: those packets decode to nothing and are not kept
        ring.push(_packet(i))
    packets = list(ring.since(0.0))
    assert packets[0].keyframe
    newest = packets[-1].timestamp
    assert newest - 1.0 - GOP / FPS < packets[0].timestamp <= newest - 1.0  # 1 s, plus under one group


@pytest.mark.parametrize("offset", [0, 3, 9])
def test_a_copied_clip_begins_at_most_one_group_of_pictures_before_its_start(offset):
    ring = PacketRing(seconds=5.0, max_bytes=10**9)
    for i in range(150):
        ring.push(_packet(i))
    start = _packet(100 + offset).timestamp  # `started_at - pre_s`
    first = ring.since(start)[0]
    assert first.keyframe and start - GOP / FPS < first.timestamp <= start


def test_packet_ring_bound_drops_whole_groups_and_a_new_connection_empties_it():
    ring = PacketRing(seconds=60.0, max_bytes=25 * 100)
    for i in range(100):
        ring.push(_packet(i))
        assert ring.nbytes <= 25 * 100 or len(ring) <= GOP
    assert ring.since(0.0)[0].keyframe
    other = PacketFormat("h264", 64, 48, Fraction(1, 90000), b"", 2)
    ring.push(_packet(101, other))  # not a key frame of the new connection: nothing to keep yet
    assert len(ring) == 0


def test_a_source_is_down_after_two_silent_seconds_and_up_after_three_of_delivery():
    health = SourceHealth()
    assert not health.update(False, 0.0)
    assert health.update(True, 0.1)  # the first time: up at its first delivery
    assert health.update(False, 0.1 + DOWN_AFTER_S - 0.05)
    assert not health.update(False, 0.1 + DOWN_AFTER_S + 0.05)  # silent for 2 s: down
    t = 10.0
    for step in range(int(UP_AFTER_S / 0.1)):  # delivering again: still down until 3 s of it
        assert not health.update(True, t + step * 0.1)
    assert health.update(True, t + UP_AFTER_S + 0.01)
