"""Snippet window and feature ring: the streaming buffers match the whole-clip snippet math."""

import numpy as np
import pytest

from edge_runtime.preprocess import PreprocessConfig, preprocess_clip, resize_frame
from edge_runtime.snippets import complete_snippets, snippet_frame_indices
from edge_runtime.window import FeatureRing, SnippetWindow

CFG = PreprocessConfig(crop_size=(8, 8), resize_short_side=8)


def _frames(n, h=12, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _stream(window, frames):
    return [s for t, f in enumerate(frames) if (s := window.push(f, float(t))) is not None]


@pytest.mark.parametrize("length,stride", [(4, 1), (3, 2), (2, 3)])
def test_snippets_equal_the_whole_clip_sampling(length, stride):
    frames = _frames(3 * length * stride)
    snippets = _stream(SnippetWindow(CFG, length, stride), frames)
    assert [s.index for s in snippets] == [0, 1, 2]
    for i, snippet in enumerate(snippets):
        idx = snippet_frame_indices(i, len(frames), length, stride)
        np.testing.assert_array_equal(snippet.array, preprocess_clip(frames[idx], CFG))


def test_snippet_is_ready_on_its_last_sampled_frame_and_carries_it():
    frames = _frames(12)
    window = SnippetWindow(CFG, snippet_length=3, frame_stride=2)
    ready = [t for t, f in enumerate(frames) if window.push(f, float(t)) is not None]
    assert ready == [4, 10]  # frames 0,2,4 then 6,8,10
    window.reset()
    snippet = _stream(window, frames)[0]
    assert (snippet.first_ts, snippet.last_ts) == (0.0, 4.0)
    np.testing.assert_array_equal(snippet.last_frame, frames[4])


def test_frames_between_strides_are_never_preprocessed():
    window = SnippetWindow(CFG, snippet_length=2, frame_stride=2)
    window.push(_frames(1)[0], 0.0)
    window.push(np.zeros((1,), np.uint8), 1.0)  # skipped: a bad frame here would fail preprocessing
    assert window.pending == 1


def test_any_frame_size_is_accepted():
    window = SnippetWindow(CFG, snippet_length=2)
    window.push(_frames(1, 12, 16)[0], 0.0)
    snippet = window.push(_frames(1, 30, 20)[0], 1.0)
    assert snippet.array.shape == (3, 2, 8, 8)


def test_reset_drops_the_partial_snippet():
    window = SnippetWindow(CFG, snippet_length=3)
    frames = _frames(5)
    window.push(frames[0], 0.0)
    window.reset()
    snippet = _stream(window, frames[1:4])[0]
    np.testing.assert_array_equal(snippet.array, preprocess_clip(frames[1:4], CFG))
    assert snippet.index == 0


def test_bad_window_parameters_are_refused():
    with pytest.raises(ValueError, match="snippet length must be positive"):
        SnippetWindow(CFG, snippet_length=0)
    with pytest.raises(ValueError, match="frame stride must be positive"):
        SnippetWindow(CFG, snippet_length=2, frame_stride=0)


def test_ring_grows_then_keeps_the_newest_in_time_order():
    ring = FeatureRing(num_snippets=3, feature_dim=2)
    seen = []
    for v in range(7):
        ring.append(np.array([v, -v], np.float32))
        seen.append(ring.window()[:, 0].tolist())
    assert seen[:3] == [[0], [0, 1], [0, 1, 2]]
    assert seen[-1] == [4, 5, 6]
    assert ring.full and len(ring) == 3


def test_ring_window_is_a_copy():
    ring = FeatureRing(2, 2)
    ring.append(np.ones(2, np.float32))
    ring.window()[0, 0] = 99
    assert ring.window()[0, 0] == 1


def test_ring_refuses_a_feature_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"shape \(4,\), got \(3,\)"):
        FeatureRing(2, 4).append(np.zeros(3))


def test_ring_reset_empties_it():
    ring = FeatureRing(2, 1)
    ring.append(np.ones(1))
    ring.reset()
    assert len(ring) == 0 and not ring.full and ring.window().shape == (0, 1)


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_frames_shrunk_by_the_capture_give_the_same_snippets(modality):
    cfg = PreprocessConfig(crop_size=(16, 16), resize_short_side=16, modality=modality)
    frames = _frames(8, 48, 64)
    full = _stream(SnippetWindow(cfg, 4), frames)
    small_window = SnippetWindow(cfg, 4)
    small = [
        s for t, f in enumerate(frames) if (s := small_window.push(resize_frame(f, cfg), t, resized=True))
    ]
    assert len(full) == len(small) == 2
    for a, b in zip(full, small, strict=True):
        np.testing.assert_array_equal(a.array, b.array)
    assert small[-1].last_frame.shape == (16, 21, 3)


@pytest.mark.parametrize("fps,frames", [(12.0, 25), (25.0, 50), (30.0, 61), (30.0, 64), (15.0, 7)])
def test_complete_snippets_counts_what_a_stream_of_the_file_hands_out(fps, frames):
    # the device plays a file as a camera: its unfinished tail is never padded, so it scores the whole
    # snippets only, one fewer than whole-clip scoring when the last one is padded
    cfg = PreprocessConfig(crop_size=(8, 8), resize_short_side=8, frame_rate=15.0)
    window = SnippetWindow(cfg, 4)
    handed = [s for i, f in enumerate(_frames(frames)) if (s := window.push(f, i / fps)) is not None]
    whole = complete_snippets(frames, 4, fps=fps, rate=15.0)
    assert len(handed) == whole
