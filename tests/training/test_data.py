"""Data sets of video folders: layout errors, annotations, sampling, items, augmentation, corrupt files."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from edge_runtime.preprocess import PreprocessConfig, preprocess_clip, resize_frame
from edge_runtime.snippets import num_snippets
from edge_runtime.video import read_frames
from tests.training.tiny_data import synth_root, write_video
from training.data import (
    AnomalyVideoDataset,
    DatasetError,
    find_splits,
    load_annotations,
    preprocess_video,
    sample_snippets,
    scan_videos,
    split_records,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


def _dataset(path, **kw):
    return AnomalyVideoDataset(path, 4, 32, num_snippets=4, **kw)


def test_missing_class_folders_is_a_one_line_error_naming_the_path(tmp_path):
    (tmp_path / "videos").mkdir()
    with pytest.raises(DatasetError, match="normal/ or anomaly/") as info:
        _dataset(tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    assert f"i3dmtn data prepare {tmp_path} --out DIR" in str(info.value)  # the way from a downloaded layout


def test_class_folders_without_videos_are_an_error(tmp_path):
    (tmp_path / "normal").mkdir()
    (tmp_path / "anomaly").mkdir()
    (tmp_path / "anomaly" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no video files"):
        _dataset(tmp_path)


def test_missing_data_path_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        _dataset(tmp_path / "nope")


def test_corrupt_video_is_skipped_counted_and_named(tmp_path, caplog):
    write_video(tmp_path / "normal" / "a.mp4")
    write_video(tmp_path / "anomaly" / "b.avi")
    (tmp_path / "anomaly" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")
    with caplog.at_level(logging.WARNING):
        ds = _dataset(tmp_path)
    assert len(ds) == 2
    assert [s.path.name for s in ds.skipped] == ["broken.mp4"]
    assert "broken.mp4" in caplog.text


def test_all_videos_unreadable_is_an_error(tmp_path):
    (tmp_path / "normal").mkdir()
    (tmp_path / "normal" / "x.mp4").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="none of its 1 videos"):
        _dataset(tmp_path)


def test_annotations_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "annotations.json"
    path.write_text('[{"video_path": "anomaly/x.mp4", ')
    with pytest.raises(DatasetError, match="not valid JSON") as info:
        load_annotations(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"label": 1}, "missing key"),
        ({"video_path": "a.mp4", "label": 2}, "label must be 0 or 1"),
        ({"video_path": "a.mp4", "label": 1, "num_frames": 3, "frame_annotations": [0, 1]}, "has 2 values"),
        ({"video_path": "a.mp4", "label": 1, "frame_annotations": [0, 5]}, "list of 0/1"),
    ],
)
def test_annotation_record_errors_name_file_and_index(tmp_path, record, message):
    path = tmp_path / "annotations.json"
    good = {"video_path": "normal/ok.mp4", "label": 0}
    path.write_text(json.dumps([good, record]))
    with pytest.raises(DatasetError, match=message) as info:
        load_annotations(path)
    assert f"{path}: record 1" in str(info.value)


def test_annotation_label_contradicting_the_folder_is_an_error(tmp_path):
    write_video(tmp_path / "normal" / "a.mp4")
    (tmp_path / "annotations.json").write_text(json.dumps([{"video_path": "normal/a.mp4", "label": 1}]))
    with pytest.raises(DatasetError, match="labelled 1"):
        scan_videos(tmp_path)


def test_frame_labels_come_from_annotations_normal_videos_are_zero(root):
    records, _ = scan_videos(root / "train")
    ann = load_annotations(root / "train" / "annotations.json")
    for r in records:
        assert r.has_frame_labels
        np.testing.assert_array_equal(r.frame_labels, ann[r.key].frame_annotations)
    assert any(r.frame_labels.any() for r in records if r.label == 1)


def test_anomalous_video_without_annotation_has_unknown_frame_labels(tmp_path):
    write_video(tmp_path / "anomaly" / "a.mp4")
    ds = _dataset(tmp_path)
    item = ds[0]
    assert not bool(item["has_frame_labels"]) and item["frame_labels"].sum() == 0


def test_item_layout_and_frame_labels_at_sampled_frames(root):
    ds = _dataset(root / "train")
    records = {str(r.path): r for r in ds.records}
    item = ds[len(ds) - 1]
    assert item["clips"].shape == (3, 16, 32, 32) and item["clips"].dtype == torch.float32
    assert item["frame_indices"].shape == (16,)
    rec = records[item["video"]]
    expected = rec.frame_labels[item["frame_indices"].numpy()]
    np.testing.assert_array_equal(item["frame_labels"].numpy(), expected)
    assert float(item["label"]) == rec.label == 1


def test_eval_item_is_the_one_preprocessing_of_the_sampled_frames(root):
    ds = _dataset(root / "train")
    item = ds[0]
    frames = read_frames(item["video"], item["frame_indices"].numpy())
    expected = preprocess_clip(frames, PreprocessConfig.square(32))
    np.testing.assert_allclose(item["clips"].numpy(), expected)


def test_eval_sampling_is_deterministic_train_sampling_varies_by_epoch(root):
    ev = _dataset(root / "train")
    assert torch.equal(ev[1]["frame_indices"], ev[1]["frame_indices"])
    tr = _dataset(root / "train", train=True, seed=5)
    picks = []
    for epoch in range(4):
        tr.set_epoch(epoch)
        picks.append(tuple(tr[1]["frame_indices"].tolist()))
    assert len(set(picks)) > 1
    tr.set_epoch(0)
    assert tuple(tr[1]["frame_indices"].tolist()) == picks[0]


def _plain(item):
    frames = read_frames(item["video"], item["frame_indices"].numpy())
    return preprocess_clip(frames, PreprocessConfig.square(32))


def test_train_augmentation_changes_pixels_of_the_same_frames(root):
    tr = _dataset(root / "train", train=True, augment_crop_jitter=6, seed=0)
    changed = []
    for epoch in range(3):
        tr.set_epoch(epoch)
        item = tr[0]
        changed.append(not np.allclose(item["clips"].numpy(), _plain(item)))
    assert any(changed)


def test_train_without_flip_jitter_and_zoom_is_the_plain_preprocessing(root):
    off = _dataset(root / "train", train=True, augment_flip=False, augment_crop_jitter=0, augment_zoom=0)
    item = off[0]
    np.testing.assert_allclose(item["clips"].numpy(), _plain(item))


def test_a_jitter_as_large_as_the_frame_puts_the_crop_anywhere_and_zoom_0_keeps_the_size(root):
    ds = _dataset(root / "train", train=True, augment_crop_jitter=1000, augment_zoom=0)
    rng = np.random.default_rng(0)
    draws = [ds._augmentation(32, 56, rng) for _ in range(400)]  # a 32 x 56 resized frame, 32 px crop
    assert {zoom for zoom, _ in draws} == {1.0}
    lefts = np.array([window[1] for _, window in draws])
    assert lefts.min() == 0 and lefts.max() == 56 - 32  # both edges reached
    assert (
        np.histogram(lefts, bins=3)[0].min() > 80
    )  # and the middle as often: uniform, not piled at the edges
    flow = _dataset(root / "train", train=True, augment_crop_jitter=1000, augment_zoom=0,
                    preprocess=PreprocessConfig.square(32, modality="flow", flow_short_side=64))  # fmt: skip
    lefts = [
        flow._augmentation(64, 112, rng)[1][1] for _ in range(200)
    ]  # stored frames at 64 px: 2x the model's
    assert min(lefts) == 0 and max(lefts) == 56 - 32  # the window lies in the model-size frame
    zoomed = _dataset(root / "train", train=True, augment_crop_jitter=0, augment_zoom=0.5)
    zooms = [zoom for zoom, _ in (zoomed._augmentation(32, 56, rng) for _ in range(50))]
    assert 1.0 <= min(zooms) and max(zooms) <= 1.5 and max(zooms) > 1.25


def test_uniform_segment_sampling_covers_the_video():
    rng = np.random.default_rng(0)
    for n, k in [(12, 4), (4, 4), (3, 8), (100, 7)]:
        mid = sample_snippets(n, k)
        rnd = sample_snippets(n, k, rng)
        assert len(mid) == len(rnd) == k
        assert (np.diff(mid) >= 0).all() and (np.diff(rnd) >= 0).all()
        assert 0 <= rnd.min() and rnd.max() < n
        if n >= k:
            assert len(set(rnd.tolist())) == k  # one distinct snippet per segment
        else:
            assert set(mid.tolist()) == set(range(n))  # short video: every snippet, repeated in order


def test_window_sampling_takes_k_consecutive_snippets_anywhere_in_the_video():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        rnd = sample_snippets(12, 4, rng, mode="window")
        assert (np.diff(rnd) == 1).all() and 0 <= rnd[0] and rnd[-1] < 12
        starts.add(int(rnd[0]))
    assert starts == set(range(9))  # every start 0..n-K is drawn
    assert sample_snippets(12, 4, mode="window").tolist() == [4, 5, 6, 7]  # no rng: the middle window


def test_window_sampling_repeats_a_short_video_in_order():
    rnd = sample_snippets(3, 8, np.random.default_rng(0), mode="window")
    assert (np.diff(rnd) >= 0).all() and set(rnd.tolist()) == {0, 1, 2} and len(rnd) == 8


def test_unknown_sampling_mode_is_refused_naming_the_option(root):
    with pytest.raises(ValueError, match="snippet_sampling"):
        _dataset(root / "train", snippet_sampling="random")


def test_window_dataset_items_hold_consecutive_frames(root):
    ds = _dataset(root / "train", train=True, snippet_sampling="window")
    idx = ds[0]["frame_indices"].numpy()  # 32-frame videos, S=4: 8 snippets, a window of K=4
    assert (np.diff(idx) == 1).all()


def test_preprocess_video_holds_every_complete_snippet_and_pads_only_a_short_video(root):
    path = next((root / "test" / "anomaly").glob("*.mp4"))
    frames = read_frames(path)
    cfg = PreprocessConfig.square(32)
    x = preprocess_video(path, 5, frame_size=32).numpy()  # 32 frames: 6 snippets, the 2-frame tail left out
    assert len(frames) == 32 and num_snippets(32, 5) == 6
    assert x.shape == (3, 6 * 5, 32, 32)
    np.testing.assert_allclose(x[:, -1], preprocess_clip(frames[29:30], cfg)[:, 0])
    short = preprocess_video(path, 40, frame_size=32).numpy()  # shorter than one snippet: one, padded
    assert short.shape == (3, 40, 32, 32)
    np.testing.assert_allclose(short[:, 31:], np.repeat(short[:, 31:32], 9, axis=1))
    np.testing.assert_allclose(short[:, -1], preprocess_clip(frames[-1:], cfg)[:, 0])


def test_split_records_is_seeded_and_stratified(root):
    records, _ = scan_videos(root / "train")
    train, val = split_records(records, 0.25, seed=1)
    assert {r.label for r in val} == {0, 1}
    assert len(train) + len(val) == len(records) and not {r.key for r in train} & {r.key for r in val}
    assert [r.key for r in split_records(records, 0.25, seed=1)[1]] == [r.key for r in val]


def test_find_splits_of_a_root_and_of_a_split_folder(root, tmp_path):
    assert set(find_splits(root)) == {"train", "val", "test"}
    assert find_splits(root / "val") == {"": root / "val"}
    with pytest.raises(DatasetError, match="split folders"):
        find_splits(tmp_path)


def test_dataset_accepts_other_video_extensions(tmp_path, root):
    shutil.copy(next((root / "train" / "normal").glob("*.mp4")), tmp_path / "n.mp4")
    (tmp_path / "normal").mkdir()
    shutil.move(tmp_path / "n.mp4", tmp_path / "normal" / "n.MP4")
    write_video(tmp_path / "anomaly" / "a.avi")
    ds = _dataset(tmp_path)
    assert sorted(r.key for r in ds.records) == ["anomaly/a.avi", "normal/n.MP4"]


@pytest.mark.parametrize(("fps", "flow_side"), [(12.0, 0), (25.0, 0), (30.0, 0), (25.0, 48)])
def test_flow_snippets_of_a_file_equal_a_camera_streaming_it_at_its_fps(tmp_path, fps, flow_side):
    from edge_runtime.resample import resample_indices
    from edge_runtime.video import write_video
    from edge_runtime.window import SnippetWindow
    from training.data import iter_video_snippets

    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 2 * i, axis=1) for i in range(int(fps * 2))])  # 2 s of motion
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps)
    cfg = PreprocessConfig.square(32, frame_rate=15.0, modality="flow", flow_short_side=flow_side)
    whole = list(iter_video_snippets(path, 4, cfg))
    window = SnippetWindow(cfg, snippet_length=4)
    t0 = 1_700_000_000.0  # a camera's wall-clock timestamps
    # the capture thread shrinks each frame as soon as it is decoded (resize_frame); the window takes it so
    streamed = [
        s.array
        for i, f in enumerate(read_frames(path))
        if (s := window.push(resize_frame(f, cfg), t0 + i / fps, resized=True))
    ]
    # a camera never pads; whole-clip scoring leaves the unfinished tail out as the camera does
    assert len(whole) == len(streamed) == len(resample_indices(len(frames), fps, 15.0)) // 4
    for a, b in zip(streamed, whole, strict=True):
        np.testing.assert_array_equal(a, b)
    assert whole[1].shape == (2, 4, 32, 32) and np.abs(whole[1]).mean() > 0.02  # the motion is there
