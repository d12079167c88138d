"""The pose model runner: the frame it feeds (size, channel order, type) and its errors, on a real OpenVINO
model that echoes its input."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.pose_model import PoseModel, PoseModelError, pose_frame, pose_input_size
from edge_runtime.pose_stats import MAX_PEOPLE, POSE_SIZE

from .pose_helpers import write_echo_pose_model

ov = pytest.importorskip("openvino", reason="the pose model runs on OpenVINO")


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory) -> str:
    return str(write_echo_pose_model(tmp_path_factory.mktemp("pose") / "echo.xml"))


def test_a_frame_is_fed_as_rgb_int32_at_the_pose_height_keeping_its_aspect(echo_model):
    model = PoseModel(echo_model, height=256)
    bgr = np.empty((480, 640, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30
    poses = model(bgr)
    assert poses.shape == (MAX_PEOPLE, POSE_SIZE) and poses.dtype == np.float32
    np.testing.assert_allclose(poses[0, :7], [30, 20, 10, 1, 256, 352, 3])  # R, G, B means; 4:3 -> 341 -> 352


def test_the_input_size_keeps_the_aspect_in_multiples_of_32():
    assert pose_input_size(1920, 1080, 384) == (672, 384)
    assert pose_input_size(320, 240, 384) == (512, 384)
    assert pose_input_size(10, 1000, 384) == (32, 384)  # never narrower than 32
    with pytest.raises(PoseModelError, match="pose_height must be a multiple of 32"):
        pose_input_size(640, 480, 300)


def test_a_video_is_posed_on_every_nth_frame_of_the_contract(echo_model):
    model = PoseModel(echo_model, height=64)
    frames = np.zeros((7, 48, 64, 3), np.uint8)
    frames[:, :, :, 2] = np.arange(7)[:, None, None] * 10  # red = 10 x the frame's index
    poses = model.video(frames, every=3)
    assert [float(p[0, 0]) for p in poses] == [0.0, 30.0, 60.0]  # frames 0, 3, 6
    assert [pose_frame(i, 3) for i in range(4)] == [True, False, False, True]


def test_a_missing_model_or_a_bad_frame_is_one_line(tmp_path, echo_model):
    with pytest.raises(PoseModelError, match=r"does not exist \(`i3dmtn pose fetch` writes one\)"):
        PoseModel(tmp_path / "nothing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<net>")
    with pytest.raises(PoseModelError, match="cannot be loaded"):
        PoseModel(bad)
    with pytest.raises(PoseModelError, match="uint8 \\(h, w, 3\\) BGR"):
        PoseModel(echo_model)(np.zeros((4, 4), np.uint8))
