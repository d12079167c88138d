"""The bundle's optional pose forest: its ``.npz``, its statistics, share and posing, and the pose model it needs.

The manifest's ``pose_forest`` (beside a ``motion_forest``, which it is fused with)::

    "pose_forest": {"file": "pose_forest.npz", "sha256": "...", "stats_version": "pose-stats/1", "weight": 0.4,
                    "every": 3, "height": 384,
                    "model": {"file": "pose/movenet-multipose.xml", "sha256": "...",
                              "weights": "pose/movenet-multipose.bin", "weights_sha256": "..."}}

The runtime runs ``model`` (OpenVINO IR, :class:`edge_runtime.pose_model.PoseModel`) on every ``every``-th
frame of the contract, ``height`` pixels high (:class:`edge_runtime.window.SnippetPoses`), and fuses the
forest (:mod:`edge_runtime.pose_fusion`). A runtime that computes other pose statistics refuses the bundle by
name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle_manifest import Field, Window, check_relative_path, check_sha256

__all__ = ["PoseForestEntry", "parse_pose_forest"]


@dataclass(frozen=True)
class PoseForestEntry:
    """The manifest's ``pose_forest`` (see the module docstring), paths resolved in the bundle."""

    path: Path
    sha256: str
    weight: float
    every: int
    height: int
    model: Path  # the pose model's IR .xml
    model_sha256: str
    weights: Path  # its .bin
    weights_sha256: str

    @property
    def files(self) -> tuple[tuple[Path, str, str], ...]:
        """``(path, sha256, what)`` of each file the entry names."""
        return (
            (self.path, self.sha256, "pose_forest file"),
            (self.model, self.model_sha256, "pose_forest model file"),
            (self.weights, self.weights_sha256, "pose_forest model weights"),
        )


def _file(f: Field, key: str, suffix: str) -> Path:
    rel = check_relative_path(f.text(key), f.name(key), f.where)
    if rel.suffix != suffix:
        raise f.error(f"{f.name(key)} must end with {suffix}, got {str(rel)!r}")
    return Path(rel)


def parse_pose_forest(obj: Any, root: Path, where: str, window: Window, has_motion: bool) -> PoseForestEntry:
    """The manifest's ``pose_forest``, checked against the ``window`` (a snippet of ``S`` consecutive frames
    needs a pose frame); ``has_motion``: whether the manifest has the ``motion_forest`` it is fused with."""
    from .pose_stats import POSE_STATS_VERSION  # the statistics this runtime computes

    f = Field(obj, "pose_forest", where)
    f.only(("file", "sha256", "stats_version", "weight", "every", "height", "model"))
    if not has_motion:
        raise f.error("pose_forest needs a motion_forest (the pose forest is fused beside it)")
    if window.frame_stride != 1:
        raise f.error(
            f"pose_forest needs window.frame_stride 1 (a snippet's consecutive frames), got {window.frame_stride}"
        )
    version = f.text("stats_version")
    if version != POSE_STATS_VERSION:
        raise f.error(
            f"{f.name('stats_version')} must be {POSE_STATS_VERSION!r} (this runtime's), got {version!r}"
        )
    every = f.positive_int("every", window.snippet_length)
    height = f.positive_int("height", 4096)
    if height % 32:
        raise f.error(f"{f.name('height')} must be a multiple of 32 (the pose model's input), got {height}")
    m = Field(f.get("model", dict), f.name("model"), where)
    m.only(("file", "sha256", "weights", "weights_sha256"))
    return PoseForestEntry(
        path=root / _file(f, "file", ".npz"),
        sha256=check_sha256(f),
        weight=f.number("weight", 0.0, 1.0),
        every=every,
        height=height,
        model=root / _file(m, "file", ".xml"),
        model_sha256=check_sha256(m),
        weights=root / _file(m, "weights", ".bin"),
        weights_sha256=check_sha256(m, "weights_sha256"),
    )
