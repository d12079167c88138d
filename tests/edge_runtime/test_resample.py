"""Frames at the contract's frame rate, by timestamp (edge_runtime.resample)."""

import numpy as np
import pytest

from edge_runtime.resample import ASSUMED_FPS, FrameResampler, file_fps, resample_indices


@pytest.mark.parametrize("source_fps", [12.0, 25.0, 30.0])
def test_a_second_of_video_gives_rate_samples_whatever_its_fps(source_fps):
    rate = 15.0
    taken = resample_indices(int(source_fps * 4), source_fps, rate)  # 4 s of video
    assert len(taken) == pytest.approx(4 * rate, abs=1)
    # each sample is served by the first frame at or after its time (causal: a live camera needs no lookahead)
    sample_times = np.arange(len(taken)) / rate
    frame_times = taken / source_fps
    assert np.all(frame_times >= sample_times - 1e-9)
    assert np.all(frame_times - sample_times < 1 / source_fps + 1e-9)


def test_twelve_fps_repeats_and_thirty_fps_drops():
    at12 = resample_indices(12, 12.0, 15.0)  # frames at 0 .. 11/12 s: sample times 0 .. 13/15 s
    assert len(at12) == 14 and len(np.unique(at12)) == 12  # 2 frames repeated
    at30 = resample_indices(30, 30.0, 15.0)
    assert at30.tolist() == list(range(0, 30, 2))  # every other frame
    at25 = resample_indices(25, 25.0, 15.0)
    assert len(at25) == 15 and np.all(np.diff(at25) >= 1)  # 10 of 25 dropped, none repeated


def test_the_contract_rate_keeps_every_frame_and_rate_zero_too():
    assert resample_indices(20, 15.0, 15.0).tolist() == list(range(20))
    assert resample_indices(20, 30.0, 0.0).tolist() == list(range(20))


def test_streaming_equals_the_file_rule_with_jittered_live_timestamps():
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.02, 0.05, 200))  # a live camera: uneven frame intervals
    resampler = FrameResampler(15.0)
    counts = [resampler.count(t) for t in times]
    expected = np.floor((times - times[0]) * 15.0 + 1e-3).astype(int)
    # after each frame, every sample time up to that frame's timestamp has been taken exactly once
    assert np.cumsum(counts).tolist() == (expected + 1).tolist()


def test_a_clock_going_back_restarts_sampling():
    resampler = FrameResampler(10.0)
    assert [resampler.count(t) for t in (100.0, 100.1, 100.2)] == [1, 1, 1]
    assert resampler.count(5.0) == 1  # clock reset: this frame is a new sample 0
    assert resampler.count(5.1) == 1


def test_unknown_file_fps_is_timed_at_the_assumed_rate():
    assert file_fps(0.0) == ASSUMED_FPS and file_fps(12.5) == 12.5
    assert len(resample_indices(50, 0.0, 5.0)) == 10  # 50 frames at 25 fps = 2 s = 10 samples at 5 fps


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf")])
def test_bad_rates_are_refused(rate):
    with pytest.raises(ValueError, match="frame rate"):
        FrameResampler(rate)
