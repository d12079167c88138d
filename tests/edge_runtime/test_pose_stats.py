"""Pose statistics of a window: what each number measures, on people placed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.pose_stats import POSE_STATS_SIZE, PoseStatsError, window_pose_stats

from .pose_helpers import frame, person

# columns of window_pose_stats (see its module docstring)
COUNT_MEAN, COUNT_MAX, TWO_OR_MORE, ONE_OR_MORE = 0, 1, 2, 3
HEIGHT_MEAN, PAIR_D_MIN, PAIR_IOU_MAX = 7, 14, 16
CONTACT_MIN, CONTACT_SHARE, SPEED_MEAN, LIMB_MAX, LIMBS_PER_FRAME = 18, 19, 20, 26, 28


def test_people_are_counted_per_frame_and_unsure_ones_are_left_out():
    poses = np.stack(
        [
            frame(person(0.1, 0.1, 0.5, 0.2), person(0.1, 0.6, 0.5, 0.7)),
            frame(person(0.1, 0.1, 0.5, 0.2), person(0.1, 0.6, 0.5, 0.7, score=0.1)),  # second unsure
            frame(),
        ]
    )
    s = window_pose_stats(poses, aspect=1.0)
    assert s.shape == (POSE_STATS_SIZE,)
    assert s[COUNT_MEAN] == pytest.approx(1.0) and s[COUNT_MAX] == 2
    assert s[TWO_OR_MORE] == pytest.approx(1 / 3) and s[ONE_OR_MORE] == pytest.approx(2 / 3)
    assert s[HEIGHT_MEAN] == pytest.approx(0.4)


def test_a_wrist_in_another_persons_box_is_contact_and_close_people_overlap():
    apart = frame(person(0.1, 0.1, 0.5, 0.2), person(0.1, 0.7, 0.5, 0.8))
    touching = frame(person(0.1, 0.1, 0.5, 0.3, wrist=(0.3, 0.35)), person(0.1, 0.25, 0.5, 0.45))
    far, near = (window_pose_stats(f[None], aspect=1.0) for f in (apart, touching))
    assert near[CONTACT_MIN] == 0.0 and near[CONTACT_SHARE] > 0
    assert far[CONTACT_MIN] > 1.0 and far[CONTACT_SHARE] == 0.0
    assert near[PAIR_IOU_MAX] > 0 and far[PAIR_IOU_MAX] == 0.0
    assert near[PAIR_D_MIN] < far[PAIR_D_MIN]


def test_moves_are_measured_in_box_heights_between_consecutive_frames():
    still = np.stack([frame(person(0.1, 0.1, 0.5, 0.2))] * 3)
    walking = np.stack([frame(person(0.1, 0.1 + 0.1 * t, 0.5, 0.2 + 0.1 * t)) for t in range(3)])
    s_still, s_walk = (window_pose_stats(p, aspect=1.0) for p in (still, walking))
    assert s_still[SPEED_MEAN] == 0.0 and s_still[LIMB_MAX] == 0.0
    assert s_walk[SPEED_MEAN] == pytest.approx(0.1 / 0.4)  # 0.1 of the frame, boxes 0.4 high
    assert s_walk[LIMBS_PER_FRAME] == pytest.approx(2 * 8 / 3)  # 8 limb keypoints, 2 moves, 3 frames
    wide = window_pose_stats(walking, aspect=2.0)  # x twice as long as y: the same move is twice as far
    assert wide[SPEED_MEAN] == pytest.approx(2 * s_walk[SPEED_MEAN])


def test_nothing_to_measure_is_minus_one():
    s = window_pose_stats(np.stack([frame()] * 2), aspect=1.0)
    assert s[COUNT_MEAN] == 0 and s[ONE_OR_MORE] == 0
    assert s[HEIGHT_MEAN] == -1 and s[SPEED_MEAN] == -1 and s[CONTACT_MIN] == -1


@pytest.mark.parametrize(
    ("poses", "aspect", "message"),
    [
        (np.zeros((0, 6, 56)), 1.0, r"\(T >= 1, 6, 56\)"),
        (np.zeros((2, 6, 51)), 1.0, r"got \(2, 6, 51\)"),
        (np.zeros((2, 6, 56)), 0.0, "aspect"),
    ],
)
def test_bad_poses_are_one_line(poses, aspect, message):
    with pytest.raises(PoseStatsError, match=message):
        window_pose_stats(poses, aspect)
