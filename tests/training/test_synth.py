"""The synthetic video generator and ``i3dmtn synth``: real mp4 files, labels, determinism, a non-trivial task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from edge_runtime.video import probe_video, read_frames
from training.synth import SPLITS, SynthConfig, SynthError, generate_dataset

W, H, FRAMES, FPS = 64, 48, 24, 25.0
I3DMTN = Path(sys.executable).parent / "i3dmtn"


def _tiny(out: Path, seed: int = 0, videos: tuple[int, ...] = (1, 1, 0, 0, 0, 0), **kw) -> SynthConfig:
    return SynthConfig(out=out, seed=seed, videos=videos, frames=FRAMES, size=(W, H), fps=FPS, **kw)


def _records(out: Path, split: str = "train") -> list[dict]:
    return json.loads((out / split / "annotations.json").read_text())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 normal + 12 anomalous training videos, 1 + 1 for val and test."""
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(_tiny(out, seed=7, videos=(12, 12, 1, 1, 1, 1)), progress=False)
    return out


@pytest.fixture(scope="module")
def frame_stats(dataset: Path) -> dict[str, np.ndarray]:
    """Per training frame: label, mean brightness, motion (mean abs grey difference to the previous frame,
    divided by the video's median so that per-video contrast and noise cancel), and the video it is from."""
    labels, brightness, motion, video = [], [], [], []
    for k, rec in enumerate(_records(dataset)):
        grey = read_frames(dataset / "train" / rec["video_path"]).astype(np.float32).mean(axis=3)
        diff = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
        diff = np.concatenate([diff[:1], diff])
        labels += rec["frame_annotations"]
        brightness += grey.mean(axis=(1, 2)).tolist()
        motion += (diff / np.median(diff)).tolist()
        video += [k] * len(diff)
    return {
        k: np.asarray(v)
        for k, v in dict(labels=labels, brightness=brightness, motion=motion, video=video).items()
    }


def test_layout_has_every_split_class_folder_and_annotations(dataset: Path) -> None:
    for split in SPLITS:
        records = _records(dataset, split)
        files = sorted(p.relative_to(dataset / split).as_posix() for p in (dataset / split).glob("*/*.mp4"))
        assert sorted(r["video_path"] for r in records) == files
        for rec in records:
            folder = rec["video_path"].split("/")[0]
            assert folder == ("anomaly" if rec["label"] == 1 else "normal")
            assert set(rec) == {"video_path", "label", "num_frames", "fps", "frame_annotations"}


def test_videos_decode_to_the_asked_frame_count_size_and_fps(dataset: Path) -> None:
    for rec in _records(dataset)[::5]:
        path = dataset / "train" / rec["video_path"]
        info = probe_video(path)
        assert (info.num_frames, info.width, info.height) == (FRAMES, W, H)
        assert info.fps == pytest.approx(FPS)
        assert read_frames(path).shape == (FRAMES, H, W, 3)
        assert rec["num_frames"] == FRAMES and len(rec["frame_annotations"]) == FRAMES


def test_normal_videos_have_all_zero_frame_labels(dataset: Path) -> None:
    normal = [r for s in SPLITS for r in _records(dataset, s) if r["label"] == 0]
    assert len(normal) == 14
    assert all(set(r["frame_annotations"]) == {0} for r in normal)


def test_anomaly_videos_have_one_contiguous_fight_with_normal_frames_around_it(dataset: Path) -> None:
    anomalous = [r for s in SPLITS for r in _records(dataset, s) if r["label"] == 1]
    assert len(anomalous) == 14
    starts = set()
    for rec in anomalous:
        labels = np.asarray(rec["frame_annotations"])
        positive = np.flatnonzero(labels)
        assert positive.size >= 2
        assert np.array_equal(positive, np.arange(positive[0], positive[-1] + 1)), (
            "interval must be contiguous"
        )
        assert labels[0] == 0 and labels[-1] == 0
        starts.add(int(positive[0]))
    assert len(starts) > 1, "interval positions must vary between videos"


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        generate_dataset(_tiny(tmp_path / name, seed=3), progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 5  # 2 videos + 3 annotation files
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_another_seed_gives_different_videos(tmp_path: Path) -> None:
    generate_dataset(_tiny(tmp_path / "a", seed=3), progress=False)
    generate_dataset(_tiny(tmp_path / "b", seed=4), progress=False)
    for rel in ("train/normal/walk_0000.mp4", "train/anomaly/fight_0000.mp4"):
        a, b = read_frames(tmp_path / "a" / rel), read_frames(tmp_path / "b" / rel)
        assert np.abs(a.astype(np.int16) - b).mean() > 10


def test_asking_for_more_videos_keeps_the_existing_ones(tmp_path: Path) -> None:
    generate_dataset(_tiny(tmp_path / "few", videos=(1, 1, 0, 0, 0, 0)), progress=False)
    generate_dataset(_tiny(tmp_path / "more", videos=(2, 2, 1, 1, 0, 0)), progress=False)
    rel = "train/anomaly/fight_0000.mp4"
    assert (tmp_path / "few" / rel).read_bytes() == (tmp_path / "more" / rel).read_bytes()


def test_fight_frames_move_more_than_the_other_frames_of_their_video(frame_stats: dict) -> None:
    labels, motion, video = frame_stats["labels"], frame_stats["motion"], frame_stats["video"]
    for k in np.unique(video[labels == 1]):
        mine = video == k
        assert motion[mine & (labels == 1)].mean() > 1.1 * motion[mine & (labels == 0)].mean(), f"video {k}"


def test_motion_statistics_separate_fight_frames(frame_stats: dict) -> None:
    assert roc_auc_score(frame_stats["labels"], frame_stats["motion"]) > 0.8


def test_per_frame_brightness_does_not_separate_fight_frames(frame_stats: dict) -> None:
    auc = roc_auc_score(frame_stats["labels"], frame_stats["brightness"])
    assert 0.25 < auc < 0.75, f"brightness AUC {auc:.3f}: a threshold on brightness would find the fights"


def test_non_empty_output_is_refused_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SynthError, match="not empty"):
        generate_dataset(_tiny(tmp_path), progress=False)
    assert not (tmp_path / "train").exists()


def test_overwrite_replaces_only_generated_files(tmp_path: Path) -> None:
    generate_dataset(_tiny(tmp_path, videos=(2, 2, 0, 0, 0, 0)), progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    generate_dataset(_tiny(tmp_path, videos=(1, 1, 0, 0, 0, 0)), progress=False, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.glob("train/*/*.mp4")) == ["fight_0000.mp4", "walk_0000.mp4"]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("frames", {"frames": 0}),
        ("size", {"size": (63, 48)}),
        ("videos", {"videos": (1, 1)}),
        ("fps", {"fps": 0}),
    ],
)
def test_config_rejects_bad_values_naming_the_field(tmp_path: Path, field: str, kwargs: dict) -> None:
    args = dict(out=tmp_path, frames=FRAMES, size=(W, H)) | kwargs
    with pytest.raises(SynthError, match=field):
        SynthConfig(**args)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(I3DMTN), "synth", *args], capture_output=True, text=True, timeout=120)


def test_cli_frames_zero_exits_non_zero_with_one_line_naming_frames(tmp_path: Path) -> None:
    result = _cli("--out", str(tmp_path / "o"), "--frames", "0")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--frames" in lines[0], result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("size", ["64", "63x48", "0x0", "axb"])
def test_cli_bad_size_exits_non_zero_with_one_line_naming_size(tmp_path: Path, size: str) -> None:
    result = _cli("--out", str(tmp_path / "o"), "--size", size)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--size" in lines[0], result.stderr


def test_cli_help_explains_the_options() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for option in (
        "--out",
        "--seed",
        "--videos",
        "--frames",
        "--size",
        "--fps",
        "--fight-fraction",
        "--force",
    ):
        assert option in result.stdout


def test_cli_writes_a_data_set_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = _cli(
        "--out",
        str(out),
        "--videos",
        "1,1,1,0,0,1",
        "--frames",
        "16",
        "--size",
        "64x48",
        "--seed",
        "5",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 4 videos" in result.stdout and str(out) in result.stdout
    assert [len(_records(out, s)) for s in SPLITS] == [2, 1, 1]
    assert probe_video(out / "test" / "anomaly" / "fight_0000.mp4").num_frames == 16


def test_cli_refuses_a_non_empty_output_without_force(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = _cli("--out", str(tmp_path), "--videos", "1,0,0,0,0,0", "--frames", "8", "--size", "32x32")
    assert result.returncode != 0
    assert "--force" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = _cli(
        "--out",
        str(tmp_path),
        "--videos",
        "1,0,0,0,0,0",
        "--frames",
        "8",
        "--size",
        "32x32",
        "--force",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
