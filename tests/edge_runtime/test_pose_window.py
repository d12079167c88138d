"""The device's pose frames: a camera's window poses the frames whole-clip scoring poses, block for block."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.pose_fusion import video_pose_blocks
from edge_runtime.pose_model import PoseModel
from edge_runtime.preprocess import PreprocessConfig, resize_frame
from edge_runtime.resample import resample_indices
from edge_runtime.snippets import num_snippets
from edge_runtime.video import read_frames, write_video
from edge_runtime.window import SnippetPoses, SnippetWindow

from .pose_helpers import write_echo_pose_model

pytest.importorskip("openvino", reason="the pose model runs on OpenVINO")

S, EVERY = 4, 3
CFG = PreprocessConfig.square(32, frame_rate=15.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 30 fps video of 45 frames, each a colour of its own, and an echo pose model."""
    root = tmp_path_factory.mktemp("pose_window")
    frames = np.zeros((45, 64, 96, 3), np.uint8)
    frames[..., 2] = (np.arange(45) * 5)[:, None, None]
    frames[..., 1] = 255 - frames[..., 2]
    write_video(root / "clip.mp4", frames, fps=30.0)
    return root / "clip.mp4", PoseModel(write_echo_pose_model(root / "echo.xml"), height=64)


def _expected(path, model) -> np.ndarray:
    taken = read_frames(path, resample_indices(45, 30.0, CFG.frame_rate))  # the contract's 23 frames
    n = num_snippets(len(taken), S)  # 5: whole-clip scoring leaves the 3-frame tail out, as the stream does
    return video_pose_blocks(model.video(taken, EVERY), len(taken), n, span=S, every=EVERY, aspect=1.5)


@pytest.mark.parametrize("shrunk", [False, True])
def test_a_streams_snippets_carry_the_pose_blocks_of_the_whole_clip(setup, shrunk):
    path, model = setup
    window = SnippetWindow(CFG, S, poses=SnippetPoses(model, EVERY, S))
    snippets = []
    for i, frame in enumerate(read_frames(path)):
        small = resize_frame(frame, CFG) if shrunk else frame  # the capture thread shrinks; full = as decoded
        snippet = window.push(small, i / 30.0, resized=shrunk, full=frame if shrunk else None)
        snippets += [snippet] if snippet is not None else []
    assert window.flush() is None  # the unfinished tail: left out, as whole-clip scoring leaves it
    np.testing.assert_array_equal(np.stack([s.poses for s in snippets]), _expected(path, model))


def test_a_stream_shorter_than_a_snippet_flushes_one_padded_snippet_with_its_poses(setup):
    path, model = setup
    window = SnippetWindow(CFG, 16, poses=SnippetPoses(model, EVERY, 16))  # 16 contract frames a snippet
    frames = read_frames(path)[:20]  # 10 contract frames: no complete snippet
    assert all(window.push(f, i / 30.0) is None for i, f in enumerate(frames))
    last = window.flush()
    taken = read_frames(path, resample_indices(20, 30.0, CFG.frame_rate))
    expected = video_pose_blocks(model.video(taken, EVERY), len(taken), 1, span=16, every=EVERY, aspect=1.5)
    assert last is not None and last.array.shape[1] == 16
    np.testing.assert_array_equal(last.poses[None], expected)


def test_a_window_without_poses_carries_none_and_a_resized_frame_needs_its_full_one(setup):
    path, model = setup
    frame = read_frames(path, [0])[0]
    plain = SnippetWindow(CFG, 1)
    assert plain.push(frame, 0.0).poses is None
    posing = SnippetWindow(CFG, S, poses=SnippetPoses(model, EVERY, S))
    with pytest.raises(ValueError, match=r"needs the frame as decoded \(full=\)"):
        posing.push(resize_frame(frame, CFG), 0.0, resized=True)
    with pytest.raises(ValueError, match="pose every must be in"):
        SnippetPoses(model, 5, 4)
