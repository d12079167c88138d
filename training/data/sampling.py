"""Which ``K`` snippets of a video a training item holds (RTFM-style uniform segments).

A video of ``n`` snippets (:func:`edge_runtime.snippets.num_snippets`) is cut into ``K`` segments of (nearly)
equal length and one snippet is taken from each: a random one during training, the middle one otherwise.
A video shorter than ``K`` snippets repeats its snippets in order (RTFM pads short videos the same way).
RTFM averages the features inside each segment instead; picking one keeps end-to-end training (from pixels)
and head-only training (from cached features) on exactly the same snippets.

>>> sample_snippets(10, 4).tolist()
[0, 3, 5, 8]
>>> sample_snippets(2, 4).tolist()
[0, 0, 1, 1]
"""

from __future__ import annotations

import numpy as np

from edge_runtime.snippets import snippet_frame_indices

__all__ = ["sample_snippets", "snippets_frame_indices"]


def sample_snippets(n: int, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``k`` snippet indices of a video of ``n`` snippets, in temporal order.

    Step 1: segment boundaries ``b_j = j * n // k`` (``j = 0..k``).
    Step 2: from segment ``[b_j, b_{j+1})`` take a random snippet (``rng`` given) or its middle one.
    When ``n < k`` step 1 would give empty segments, so snippet ``floor(j * n / k)`` is taken instead.
    """
    if n <= 0:
        raise ValueError(f"a video needs at least one snippet, got {n}")
    if k <= 0:
        raise ValueError(f"the number of snippets per item must be positive, got {k}")
    j = np.arange(k)
    if n < k:
        return (j * n) // k
    lo = (j * n) // k
    hi = ((j + 1) * n) // k  # exclusive, > lo because n >= k
    if rng is None:
        return (lo + hi - 1) // 2
    return rng.integers(lo, hi)


def snippets_frame_indices(
    snippets: np.ndarray, num_frames: int, snippet_length: int, stride: int = 1
) -> np.ndarray:
    """Frame indices of the given snippets, concatenated: ``(len(snippets) * S,)``."""
    return np.concatenate(
        [snippet_frame_indices(int(i), num_frames, snippet_length, stride) for i in snippets]
    ).astype(np.int64)
