"""Frames taken at the contract's frame rate, by timestamp: the same time per snippet at 12 and at 30 fps.

Cameras and files run at their own rates (12 to 30 fps are common), and a snippet of ``S`` frames spans
``S / fps`` seconds: without resampling, a model trained on 30 fps video sees a 12 fps fight in slow motion.
The preprocessing contract therefore names a frame rate, and every frame source (training videos,
calibration clips, the export report, the device's cameras) goes through :class:`FrameResampler`.

The rule: sample times are ``t0 + k / rate`` (``t0`` the first frame's timestamp); a frame with timestamp
``t`` is taken once for every sample time in ``(t_prev, t]``, where ``t_prev`` is the previous frame's
timestamp: each sample is served by the first frame at or after its time, which a live camera can apply
without waiting for the next frame. A faster source has frames dropped, a slower one has frames repeated, and a source at exactly the
contract's rate keeps every frame. ``rate`` 0 (a bundle written before the contract had a frame rate) keeps
every frame, as those bundles did.

>>> r = FrameResampler(15.0)
>>> [r.count(i / 30) for i in range(6)]   # 30 fps -> 15 fps: every other frame
[1, 0, 1, 0, 1, 0]
>>> r = FrameResampler(15.0)
>>> [r.count(i / 10) for i in range(4)]   # 10 fps -> 15 fps: some frames twice
[1, 1, 2, 1]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ASSUMED_FPS", "FrameResampler", "file_fps", "resample_indices"]

ASSUMED_FPS = 25.0  # a file whose container states no frame rate is timed at this rate


def file_fps(fps: float) -> float:
    """The frame rate a video file is timed at: its container's, or :data:`ASSUMED_FPS` when it states none."""
    return float(fps) if fps and fps > 0 else ASSUMED_FPS


# Timestamps are floats from containers (i / fps) and wall clocks (1.7e9 s, so about 1e-7 s of resolution): a
# sample time that a frame's timestamp misses by less than this share of a sample interval counts as reached,
# so 30 -> 15 fps never loses a frame to rounding and a file and a camera streaming it agree.
_EPS = 1e-3


class FrameResampler:
    """Streaming resampler: for each incoming frame's timestamp, how many times to take that frame.

    Args:
        rate: the contract's frame rate in frames per second; 0 keeps every frame.
    """

    def __init__(self, rate: float) -> None:
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"frame rate must be a finite number >= 0 (0 keeps every frame), got {rate}")
        self.rate = float(rate)
        self.reset()

    def reset(self) -> None:
        """Start over (a camera reconnect): the next frame is sample 0."""
        self._next_k = 0  # index of the next sample time not yet taken
        self._t0: float | None = None
        self._last: float | None = None

    def count(self, timestamp: float) -> int:
        """How many samples the frame at ``timestamp`` (seconds) fills: 0 (dropped), 1, or more (repeated).

        A timestamp that goes backwards (a camera's clock reset) restarts the sampling at that frame.
        """
        t = float(timestamp)
        if self.rate == 0:
            return 1
        if self._t0 is None or (self._last is not None and t < self._last):
            self._t0, self._next_k = t, 0
        self._last = t
        # samples k with t0 + k / rate <= t, i.e. k <= (t - t0) * rate
        last_k = math.floor((t - self._t0) * self.rate + _EPS)
        taken = max(0, last_k - self._next_k + 1)
        self._next_k = max(self._next_k, last_k + 1)
        return taken


def resample_indices(num_frames: int, fps: float, rate: float) -> np.ndarray:
    """Which frames of a file with ``num_frames`` frames at ``fps`` the contract takes, in order (repeats
    included), by :class:`FrameResampler` over the timestamps ``i / fps`` (``fps`` through :func:`file_fps`).
    ``rate`` 0 keeps every frame.

    >>> resample_indices(6, 30.0, 15.0).tolist()
    [0, 2, 4]
    """
    if num_frames < 0:
        raise ValueError(f"frame count must be >= 0, got {num_frames}")
    if rate == 0:
        return np.arange(num_frames)
    resampler = FrameResampler(rate)
    fps = file_fps(fps)
    counts = [resampler.count(i / fps) for i in range(num_frames)]
    return np.repeat(np.arange(num_frames), counts)
