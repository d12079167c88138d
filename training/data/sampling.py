"""Which ``K`` snippets of a video a training item holds: a contiguous window, or RTFM's uniform segments.

Two modes (config key ``snippet_sampling``):

- ``"window"`` (:func:`sample_window`): ``K`` *consecutive* snippets, at a random start during training and
  the middle window otherwise. This is what the device sees: its ring holds the last ``K`` snippets in a row,
  so a head trained on windows learns the same temporal spacing it is run on.
- ``"segments"`` (:func:`sample_segments`, RTFM for long untrimmed videos): the video is cut into ``K``
  segments of (nearly) equal length and one snippet is taken from each, a random one during training, the
  middle one otherwise. RTFM averages the features inside each segment instead; picking one keeps end-to-end
  training (from pixels) and head-only training (from cached features) on exactly the same snippets.

In both, a video shorter than ``K`` snippets repeats its snippets in order (RTFM pads short videos the same
way).

>>> sample_snippets(10, 4).tolist()
[0, 3, 5, 8]
>>> sample_snippets(2, 4).tolist()
[0, 0, 1, 1]
>>> sample_snippets(10, 4, mode="window").tolist()
[3, 4, 5, 6]
"""

from __future__ import annotations

import numpy as np

from edge_runtime.snippets import snippet_frame_indices

__all__ = ["SAMPLING_MODES", "sample_segments", "sample_snippets", "sample_window", "snippets_frame_indices"]

SAMPLING_MODES = ("window", "segments")


def _check(n: int, k: int) -> None:
    if n <= 0:
        raise ValueError(f"a video needs at least one snippet, got {n}")
    if k <= 0:
        raise ValueError(f"the number of snippets per item must be positive, got {k}")


def sample_segments(n: int, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``k`` snippet indices of a video of ``n`` snippets, one per uniform segment, in temporal order.

    Step 1: segment boundaries ``b_j = j * n // k`` (``j = 0..k``).
    Step 2: from segment ``[b_j, b_{j+1})`` take a random snippet (``rng`` given) or its middle one.
    When ``n < k`` step 1 would give empty segments, so snippet ``floor(j * n / k)`` is taken instead.
    """
    _check(n, k)
    j = np.arange(k)
    if n < k:
        return (j * n) // k
    lo = (j * n) // k
    hi = ((j + 1) * n) // k  # exclusive, > lo because n >= k
    if rng is None:
        return (lo + hi - 1) // 2
    return rng.integers(lo, hi)


def sample_window(n: int, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``k`` consecutive snippet indices ``[a, a + k)`` of a video of ``n`` snippets.

    ``a`` is uniform in ``[0, n - k]`` (``rng`` given) or ``(n - k) // 2``. When ``n < k`` the whole video is
    taken, each snippet repeated in order (``floor(j * n / k)``), as :func:`sample_segments` does.
    """
    _check(n, k)
    if n < k:
        return (np.arange(k) * n) // k
    start = int(rng.integers(0, n - k + 1)) if rng is not None else (n - k) // 2
    return np.arange(start, start + k)


def sample_snippets(
    n: int, k: int, rng: np.random.Generator | None = None, *, mode: str = "segments"
) -> np.ndarray:
    """``k`` snippet indices of a video of ``n`` snippets, in temporal order, by ``mode`` (see the module)."""
    if mode == "window":
        return sample_window(n, k, rng)
    if mode == "segments":
        return sample_segments(n, k, rng)
    raise ValueError(f"snippet_sampling must be one of {SAMPLING_MODES}, got {mode!r}")


def snippets_frame_indices(
    snippets: np.ndarray, num_frames: int, snippet_length: int, stride: int = 1
) -> np.ndarray:
    """Frame indices of the given snippets, concatenated: ``(len(snippets) * S,)``."""
    return np.concatenate(
        [snippet_frame_indices(int(i), num_frames, snippet_length, stride) for i in snippets]
    ).astype(np.int64)
