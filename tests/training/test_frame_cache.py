"""The frame cache: decode once, identical items, survives a kill, rebuilt on a parameter change."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from edge_runtime.preprocess import PreprocessConfig, resize_frame
from edge_runtime.resample import resample_indices
from edge_runtime.video import read_frames, write_video
from training.data import AnomalyVideoDataset, scan_videos
from training.data.frame_cache import FrameCache, decode_resized

from .tiny_data import synth_root

FLOW = PreprocessConfig.square(32, frame_rate=15.0, modality="flow")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory) / "train"


def test_cached_frames_are_exactly_the_decoded_resampled_resized_frames(root, tmp_path):
    record = scan_videos(root)[0][0]
    cache = FrameCache(tmp_path / "cache", FLOW)
    cached = cache.frames(record.path)
    assert isinstance(cached, np.memmap) and cached.dtype == np.uint8
    raw = read_frames(record.path)
    taken = resample_indices(len(raw), record.fps, FLOW.frame_rate)
    expected = np.stack([resize_frame(raw[i], FLOW) for i in taken])
    np.testing.assert_array_equal(cached, expected)
    np.testing.assert_array_equal(decode_resized(record.path, FLOW), expected)


def _items(root, cache, train):
    records = scan_videos(root)[0]
    ds = AnomalyVideoDataset(
        root, 8, 32, num_snippets=2, resize_short_side=32, train=train, records=records, seed=5,
        snippet_sampling="window", preprocess=FLOW, frame_cache=cache, augment_crop_jitter=4,
    )  # fmt: skip
    ds.set_epoch(3)
    return [ds[i] for i in range(len(ds))]


@pytest.mark.parametrize("train", [False, True])
def test_items_from_the_cache_equal_items_decoded_every_time(root, tmp_path, train):
    cached = _items(root, FrameCache(tmp_path / "cache", FLOW), train)
    decoded = _items(root, None, train)
    for a, b in zip(cached, decoded, strict=True):
        assert a["clips"].shape == (2, 16, 32, 32)
        torch.testing.assert_close(a["clips"], b["clips"], rtol=0, atol=0)
        assert torch.equal(a["frame_indices"], b["frame_indices"])


def test_a_changed_parameter_or_video_gets_a_new_entry(root, tmp_path):
    record = scan_videos(root)[0][0]
    cache = FrameCache(tmp_path / "cache", FLOW)
    first = cache.entry(record.path)
    cache.frames(record.path)
    other = FrameCache(tmp_path / "cache", PreprocessConfig.square(32, frame_rate=10.0, modality="flow"))
    assert other.entry(record.path) != first
    assert len(other.frames(record.path)) < len(cache.frames(record.path))  # 10 fps holds fewer frames
    copy = tmp_path / "copy.mp4"
    frames = read_frames(record.path)
    write_video(copy, frames[::-1], fps=record.fps)  # the same frames, another video
    assert cache.entry(copy) != first


def test_a_killed_build_leaves_no_half_entry_and_the_rerun_completes(root, tmp_path):
    cache_dir = tmp_path / "cache"
    script = (
        "import os, sys\n"
        "import numpy as np\n"
        "from training.data.frame_cache import FrameCache\n"
        "from training.data import scan_videos\n"
        "from edge_runtime.preprocess import PreprocessConfig\n"
        "cache = FrameCache(sys.argv[1], PreprocessConfig.square(32, frame_rate=15.0, modality='flow'))\n"
        "records = scan_videos(sys.argv[2])[0]\n"
        "real_save = np.save\n"
        "def save(f, a):\n"
        "    if len(os.listdir(sys.argv[1])) > 2:\n"
        "        f.write(b'half'); f.flush(); os.kill(os.getpid(), 9)\n"
        "    real_save(f, a)\n"
        "np.save = save\n"
        "cache.build(records, progress=False)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(cache_dir), str(root)], capture_output=True)
    assert proc.returncode == -9
    entries = sorted(p.name for p in cache_dir.iterdir() if p.suffix == ".npy" and not p.name.startswith("."))
    assert 0 < len(entries) < len(scan_videos(root)[0])  # killed part way
    for name in entries:
        np.load(cache_dir / name)  # every entry that exists is whole
    cache = FrameCache(cache_dir, FLOW)
    records = cache.build(scan_videos(root)[0], progress=False)
    assert len(records) == len(scan_videos(root)[0]) and not cache.skipped
    for record in records:
        np.testing.assert_array_equal(cache.frames(record.path), decode_resized(record.path, FLOW))


def test_a_corrupt_video_is_skipped_and_counted(root, tmp_path):
    records = scan_videos(root)[0]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(records[0].path.read_bytes()[: os.path.getsize(records[0].path) // 3])
    from dataclasses import replace

    cache = FrameCache(tmp_path / "cache", FLOW)
    kept = cache.build([*records, replace(records[0], path=bad)], progress=False)
    assert len(kept) == len(records) and len(cache.skipped) == 1 and cache.skipped[0].path == bad
