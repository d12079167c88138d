"""The pose cache: the pose model on exactly the contract's pose frames, computed once, keyed by what shapes it."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.video import write_video
from training.data.pose_cache import PoseCache, video_aspect
from training.data.records import VideoRecord

from ..edge_runtime.pose_helpers import write_echo_pose_model

pytest.importorskip("openvino", reason="the pose model runs on OpenVINO")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_echo_pose_model(tmp_path_factory.mktemp("pose") / "echo.xml")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """20 frames at 30 fps, 96 x 64, each frame's red channel 10 x its index."""
    frames = np.zeros((20, 64, 96, 3), np.uint8)
    frames[..., 2] = (np.arange(20) * 10)[:, None, None]
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    write_video(path, frames, fps=30.0)
    return path


def test_poses_are_those_of_every_nth_frame_at_the_contracts_rate(tmp_path, model, video):
    cache = PoseCache(tmp_path, model, frame_rate=15.0, every=3, height=64)
    poses = cache.poses(video)  # 30 -> 15 fps: source frames 0, 2, ..., 18; every 3rd: 0, 6, 12, 18
    assert poses.shape == (4, 6, 56) and poses.dtype == np.float32
    np.testing.assert_allclose(poses[:, 0, 0], [0, 60, 120, 180], atol=4)  # red means (mp4v is lossy)
    np.testing.assert_allclose(poses[0, 0, 4:6], [64, 96])  # posed 64 px high, 96 wide
    assert video_aspect(video) == pytest.approx(1.5)


def test_a_second_cache_reads_the_entry_without_the_model_and_a_parameter_change_computes_again(
    tmp_path, model, video
):
    first = PoseCache(tmp_path, model, frame_rate=15.0, every=3, height=64)
    expected = np.array(first.poses(video))
    again = PoseCache(tmp_path, model, frame_rate=15.0, every=3, height=64)
    np.testing.assert_array_equal(again.poses(video), expected)
    assert again._model is None  # read from disk: the pose model never loaded
    other = PoseCache(tmp_path, model, frame_rate=15.0, every=2, height=64)
    assert other.entry(video) != first.entry(video)
    assert other.poses(video).shape == (5, 6, 56)  # 10 samples, every 2nd


def test_an_unreadable_video_is_skipped_and_counted(tmp_path, model, video):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    cache = PoseCache(tmp_path / "cache", model, frame_rate=15.0, every=3, height=64)
    records = [VideoRecord(p, p.name, label, 20, 30.0, None) for p, label in ((video, 0), (bad, 1))]
    kept = cache.build(records, progress=False)
    assert [r.path for r in kept] == [video]
    assert [s.path for s in cache.skipped] == [bad]
