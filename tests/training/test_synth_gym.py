"""Gym scenes (``i3dmtn synth --gym N``): calm people doing jumping jacks, the hard normal scenes of the demo's
feedback loop. Big periodic limb motion on the spot, every frame normal, in the seed's layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.video import probe_video, read_frames
from training.synth import SynthConfig, SynthError, generate_gym
from training.synth_scene import jumper, walker

W, H, FRAMES, FPS = 64, 48, 24, 25.0
I3DMTN = Path(sys.executable).parent / "i3dmtn"


def _cfg(out: Path, seed: int = 0) -> SynthConfig:
    return SynthConfig(out=out, seed=seed, frames=FRAMES, size=(W, H), fps=FPS)


def test_gym_scenes_are_normal_videos_in_the_seeds_layout(tmp_path: Path) -> None:
    generate_gym(_cfg(tmp_path), 2, progress=False)
    records = json.loads((tmp_path / "annotations.json").read_text())
    assert [r["video_path"] for r in records] == ["normal/gym_0000.mp4", "normal/gym_0001.mp4"]
    assert all(r["label"] == 0 and r["frame_annotations"] == [0] * FRAMES for r in records)
    info = probe_video(tmp_path / "normal" / "gym_0000.mp4")
    assert (info.num_frames, info.width, info.height) == (FRAMES, W, H)


def test_the_same_seed_gives_the_same_scenes_and_another_seed_others(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_gym(_cfg(tmp_path / name, seed), 1, progress=False)
    a, b, c = (read_frames(tmp_path / n / "normal" / "gym_0000.mp4") for n in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_jumper_stays_on_the_spot_and_swings_arms_overhead_and_back_periodically() -> None:
    rng = np.random.default_rng(0)
    fig = jumper(rng, 100, 128, 128, 25.0)
    arm = fig.arms[:, 0, 0]
    assert np.ptp(fig.x) == 0  # on the spot
    assert arm.min() < 0.3 and arm.max() > 2.3  # from the side to overhead
    assert np.allclose(fig.arms[:, 1], -fig.arms[:, 0])  # both arms at once, one to each side
    crossings = np.sum(np.diff(np.sign(arm - arm.mean())) != 0)
    assert 10 <= crossings <= 19  # 1.4-2.2 jacks per second over 4 s, two crossings each: a rhythm


def test_a_jumpers_limbs_move_more_per_frame_than_a_walkers() -> None:
    rng = np.random.default_rng(1)
    jumps = [np.abs(np.diff(jumper(rng, 50, 128, 128, 25.0).arms, axis=0)).mean() for _ in range(5)]
    walks = [np.abs(np.diff(walker(rng, 50, 128, 128, 25.0).arms, axis=0)).mean() for _ in range(5)]
    assert min(jumps) > 2 * max(walks)


def test_a_non_empty_folder_is_refused_unless_overwrite_which_replaces_the_scenes(tmp_path: Path) -> None:
    generate_gym(_cfg(tmp_path), 2, progress=False)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SynthError, match="not empty"):
        generate_gym(_cfg(tmp_path), 1, progress=False)
    generate_gym(_cfg(tmp_path), 1, progress=False, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "normal").iterdir()) == ["gym_0000.mp4"]
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_cli_gym_writes_the_scenes_and_refuses_the_fight_sets_options(tmp_path: Path) -> None:
    ok = subprocess.run([str(I3DMTN), "synth", "--gym", "1", "--out", str(tmp_path / "g"), "--size", f"{W}x{H}",
                         "--frames", str(FRAMES), "--no-progress"], capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "g" / "normal" / "gym_0000.mp4").is_file()
    bad = subprocess.run([str(I3DMTN), "synth", "--gym", "1", "--videos", "2", "--out", str(tmp_path / "h")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1].endswith("(leave out --videos)")
    assert not (tmp_path / "h").exists()
