"""Tiny downloaded-data-set layouts for the ``data prepare`` tests: real video files (4 frames of 32x32),
written once per session and copied (a few hundred bytes each) into the layout a test asks for."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.video import write_video

_CACHE: dict[str, Path] = {}


def tiny_videos(tmp_path_factory: Any) -> dict[str, Path]:
    """``{".mp4": path, ".avi": path}``: one real 4-frame 32x32 video per container, made once."""
    if not _CACHE:
        folder = tmp_path_factory.mktemp("tiny_videos")
        frames = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
        write_video(folder / "v.mp4", frames, fps=10.0)
        write_video(folder / "v.avi", frames, fps=10.0, fourcc="MJPG")
        _CACHE.update({".mp4": folder / "v.mp4", ".avi": folder / "v.avi"})
    return dict(_CACHE)


def make_source(root: Path, rels: Iterable[str], videos: Mapping[str, Path]) -> Path:
    """Real video files at ``root/rel`` for each relative path (container chosen by its extension)."""
    for rel in rels:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(videos[dest.suffix.lower()], dest)
    return root


def fight_layout(
    root: Path, videos: Mapping[str, Path], n: int = 6, fight: str = "fight", normal: str = "noFight"
):
    """``fight/fi001.mp4 ...`` and ``noFight/nofi001.mp4 ...``, ``n`` of each (the Surveillance Fight layout)."""
    rels = [f"{fight}/fi{i:03d}.mp4" for i in range(1, n + 1)]
    rels += [f"{normal}/nofi{i:03d}.mp4" for i in range(1, n + 1)]
    return make_source(root, rels, videos)


def write_groups(path: Path, groups: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(groups), encoding="utf-8")
    return path


def read_split(out: Path) -> dict[str, Any]:
    return json.loads((out / "split.json").read_text(encoding="utf-8"))
