"""The checks of the forests' config keys: the motion forest and, beside it, the pose forest.

A forest's other keys act only when it has trees: with ``*_trees`` 0 they must keep their defaults, or the
config is refused naming the key (:func:`_only_with_trees`), so no setting is silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from training.presets import DEFAULT as _DEFAULT

__all__ = ["MOTION_FOREST_DATA", "check_motion_forest", "check_pose_forest"]

Fail = Callable[[str, str], None]
MOTION_FOREST_DATA = (
    "train+val",
    "train",
)  # training.motion_forest: the videos the shipped forests are fitted on
_POSE_ALIGN = 32  # edge_runtime.pose_model: MoveNet's input sides are multiples of 32


def _only_with_trees(cfg: dict[str, Any], fail: Fail, trees: str, key: str, does: str) -> None:
    if not cfg[trees] and cfg[key] != _DEFAULT[key]:
        fail(key, f"{_DEFAULT[key]!r} (the default) with {trees} 0: it {does}")


def check_motion_forest(cfg: dict[str, Any], fail: Fail) -> None:
    """The motion forest: flow input only, and its other keys only with trees."""
    if cfg["motion_forest_trees"] < 0:
        fail("motion_forest_trees", "an integer >= 0 (0: no motion forest)")
    if cfg["motion_forest_trees"] and cfg["input_modality"] != "flow":
        fail(
            "motion_forest_trees", "0 with input_modality 'rgb' (the motion statistics are of the input flow)"
        )
    if cfg["motion_forest_data"] not in MOTION_FOREST_DATA:
        fail("motion_forest_data", f"one of {MOTION_FOREST_DATA}")
    if cfg["motion_forest_leaf"] < 1:
        fail("motion_forest_leaf", "an integer >= 1 (the fewest training windows in a leaf of the forest)")
    if not 0 <= cfg["motion_weight"] <= 1:
        fail("motion_weight", "in [0, 1] (the forest's share of the fused score)")
    if cfg["motion_crops"] not in (1, 3):
        fail("motion_crops", "1 or 3 (the crop positions the motion forest scores)")
    for key, does in (
        ("motion_forest_leaf", "shapes the forest"),
        ("motion_weight", "weighs the forest"),
        ("motion_crops", "places the forest's crops"),
    ):
        _only_with_trees(cfg, fail, "motion_forest_trees", key, does)


def check_pose_forest(cfg: dict[str, Any], fail: Fail) -> None:
    """The pose forest: beside a motion forest, a pose frame in every snippet, and its other keys only with
    trees."""
    if cfg["pose_forest_trees"] < 0:
        fail("pose_forest_trees", "an integer >= 0 (0: no pose forest)")
    if cfg["pose_forest_trees"] and not cfg["motion_forest_trees"]:
        fail(
            "pose_forest_trees",
            "0 with motion_forest_trees 0 (the pose forest is fused beside the motion forest)",
        )
    if cfg["pose_forest_leaf"] < 1:
        fail("pose_forest_leaf", "an integer >= 1 (the fewest training windows in a leaf of the pose forest)")
    if not 0 <= cfg["pose_weight"] <= 1:
        fail("pose_weight", "in [0, 1] (the pose forest's share of the score)")
    if cfg["pose_forest_trees"] and cfg["frame_stride"] != 1:
        fail(
            "frame_stride",
            "1 with a pose forest (a snippet's pose frames are those of its consecutive frames)",
        )
    if not 1 <= cfg["pose_every"] <= cfg["clip_length"]:
        fail("pose_every", f"in [1, clip_length = {cfg['clip_length']}] (every snippet needs a pose frame)")
    if cfg["pose_height"] < _POSE_ALIGN or cfg["pose_height"] % _POSE_ALIGN:
        fail("pose_height", f"a multiple of {_POSE_ALIGN}, >= {_POSE_ALIGN} (the pose model's input height)")
    for key, does in (
        ("pose_forest_leaf", "shapes the pose forest"),
        ("pose_weight", "weighs the pose forest"),
        ("pose_every", "chooses the posed frames"),
        ("pose_height", "sizes the posed frames"),
        ("pose_model", "names the pose model"),
    ):
        _only_with_trees(cfg, fail, "pose_forest_trees", key, does)
