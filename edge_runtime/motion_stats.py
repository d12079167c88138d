"""Hand-made statistics of the model's own input flow, per snippet and per window (the motion forest's input).

:func:`snippet_motion_stats` turns one flow snippet ``(2, S, H, W)`` of the preprocessing contract (each
component in [-1, 1], times :data:`~edge_runtime.preprocess.FLOW_BOUND` = pixels per frame) into
:data:`STATS_SIZE` numbers, in three groups:

- ``base`` (19): magnitude percentiles 50 / 90 / 99; the share of pixels moving more than 1 and 3 px; a
  magnitude-weighted histogram of 8 directions; percentiles 50 / 90 / 99 and mean of the frame-to-frame change
  of the magnitude ("violent flows"); spread and peak of the per-frame mean magnitude;
- ``cells`` (9): on a 4 x 4 grid, the most active cell's mean magnitude, its concentration (top / mean cell),
  its frame-to-frame change, spread and peak, the entropy of its 8 directions, the second / first cell ratio and
  its magnitude percentiles 90 / 99;
- ``chaos`` (10): divergence and curl (99th percentile and mean over moving pixels, each), the orientation
  change between frames weighted by magnitude, the acceleration's percentiles 90 / 99 and its mean over moving
  pixels, and the 90 / 99th percentiles of the flow's spread in 8 x 8 blocks.

They work from the snippet the model gets, whatever made it. A window's vector (:func:`window_motion_stats`)
is the mean and the max over its snippets' vectors, so a filling ring (fewer than ``K`` snippets) has one too.
The numbers are versioned (:data:`STATS_VERSION`): a forest trained on one version is refused on another.

>>> snippet = np.zeros((2, 8, 16, 16), np.float32)
>>> snippet[0] = 2 / 16  # every pixel moves 2 px to the right
>>> stats = snippet_motion_stats(snippet)
>>> stats.shape == (STATS_SIZE,), float(stats[0])  # the median magnitude, in pixels
(True, 2.0)
"""

from __future__ import annotations

import numpy as np

from .preprocess import FLOW_BOUND

__all__ = [
    "STATS_SIZE",
    "STATS_VERSION",
    "WINDOW_STATS_SIZE",
    "MotionStatsError",
    "snippet_motion_stats",
    "snippets_motion_stats",
    "window_motion_stats",
]

STATS_VERSION = "motion-stats/1"
_EPS = 1e-6
_MOVING_PX = 1.0  # pixels per frame above which a pixel counts as moving
_DIRECTIONS = 8
_GRID = 4  # cells per side of the activity grid
_BLOCK = 8  # pixels per side of the blocks whose flow spread is measured


class MotionStatsError(ValueError):
    """A snippet that is not flow of the contract's layout."""


def _direction_histogram(ang: np.ndarray, mag: np.ndarray) -> np.ndarray:
    bins = ((ang + np.pi) / (2 * np.pi) * _DIRECTIONS).astype(np.int64) % _DIRECTIONS
    hist = np.bincount(bins.ravel(), weights=mag.ravel(), minlength=_DIRECTIONS)
    return hist / (hist.sum() + _EPS)


def _base(mag: np.ndarray, ang: np.ndarray) -> list[float]:
    change = np.abs(np.diff(mag, axis=0)) if len(mag) > 1 else np.zeros_like(mag)
    per_frame = mag.mean(axis=(1, 2))
    return [
        *np.percentile(mag, [50, 90, 99]),
        float((mag > 1).mean()),
        float((mag > 3).mean()),
        *_direction_histogram(ang, mag),
        *np.percentile(change, [50, 90, 99]),
        float(change.mean()),
        float(per_frame.std()),
        float(per_frame.max()),
    ]


def _cells(mag: np.ndarray, ang: np.ndarray) -> list[float]:
    t, h, w = mag.shape
    hs, ws = max(h // _GRID, 1), max(w // _GRID, 1)
    ny, nx = min(_GRID, h), min(_GRID, w)
    cells = (
        mag[:, : hs * ny, : ws * nx].reshape(t, ny, hs, nx, ws).mean(axis=(2, 4)).reshape(t, -1)
    )  # (T, cells)
    total = cells.mean(0)
    top = int(np.argmax(total))
    top_series = cells[:, top]
    r, c = divmod(top, nx)
    region = (slice(None), slice(r * hs, (r + 1) * hs), slice(c * ws, (c + 1) * ws))
    hist = _direction_histogram(ang[region], mag[region])
    ranked = np.sort(total)[::-1]
    second = ranked[1] if len(ranked) > 1 else 0.0
    return [
        float(total.max()),
        float(total.max() / (total.mean() + _EPS)),
        float(np.abs(np.diff(top_series)).mean()) if t > 1 else 0.0,
        float(top_series.std()),
        float(top_series.max()),
        float(-(hist * np.log(hist + 1e-9)).sum()),
        float(second / (ranked[0] + _EPS)),
        *np.percentile(mag[region], [90, 99]),
    ]


def _chaos(flow: np.ndarray, mag: np.ndarray, ang: np.ndarray) -> list[float]:
    u, v = flow[..., 0], flow[..., 1]
    du = np.gradient(u, axis=(1, 2)) if min(u.shape[1:]) > 1 else (np.zeros_like(u),) * 2
    dv = np.gradient(v, axis=(1, 2)) if min(v.shape[1:]) > 1 else (np.zeros_like(v),) * 2
    moving = mag > _MOVING_PX
    out: list[float] = []
    for field in (du[1] + dv[0], dv[1] - du[0]):  # divergence, curl
        size = np.abs(field)
        out += [float(np.percentile(size, 99)), float(size[moving].mean()) if moving.any() else 0.0]
    if len(flow) > 1:
        turn = np.abs((ang[1:] - ang[:-1] + np.pi) % (2 * np.pi) - np.pi)  # wrapped to [0, pi]
        weight = np.minimum(mag[1:], mag[:-1])
        out.append(float((turn * weight).sum() / (weight.sum() + _EPS)))
        accel = np.hypot(flow[1:, ..., 0] - flow[:-1, ..., 0], flow[1:, ..., 1] - flow[:-1, ..., 1])
        still_moving = moving[1:]
        out += [
            *np.percentile(accel, [90, 99]),
            float(accel[still_moving].mean()) if still_moving.any() else 0.0,
        ]
    else:
        out += [0.0, 0.0, 0.0, 0.0]
    t, h, w, _ = flow.shape
    b = min(_BLOCK, h, w)
    blocks = flow[:, : h // b * b, : w // b * b].reshape(t, h // b, b, w // b, b, 2)
    spread = blocks.std(axis=(2, 4)).sum(-1)  # (T, h/b, w/b)
    out += list(np.percentile(spread, [90, 99]))
    return out


def snippet_motion_stats(snippet: np.ndarray) -> np.ndarray:
    """The :data:`STATS_SIZE` statistics (float32) of one flow snippet ``(2, S, H, W)`` in [-1, 1]."""
    arr = np.asarray(snippet)
    if arr.ndim != 4 or arr.shape[0] != 2 or min(arr.shape[1:]) < 1:
        raise MotionStatsError(
            f"motion statistics need a flow snippet (2, S, H, W) (input_modality 'flow'), got shape {arr.shape}"
        )
    flow = np.moveaxis(arr.astype(np.float64), 0, -1) * FLOW_BOUND  # (S, H, W, 2) pixels per frame
    mag = np.hypot(flow[..., 0], flow[..., 1])
    ang = np.arctan2(flow[..., 1], flow[..., 0])
    stats = np.asarray(_base(mag, ang) + _cells(mag, ang) + _chaos(flow, mag, ang), np.float32)
    return np.nan_to_num(stats, nan=0.0, posinf=0.0, neginf=0.0)


def snippets_motion_stats(snippets: np.ndarray) -> np.ndarray:
    """Statistics ``(N, STATS_SIZE)`` of a batch of flow snippets ``(N, 2, S, H, W)``."""
    batch = np.asarray(snippets)
    if batch.ndim != 5:
        raise MotionStatsError(f"motion statistics need snippets (N, 2, S, H, W), got shape {batch.shape}")
    return (
        np.stack([snippet_motion_stats(s) for s in batch])
        if len(batch)
        else np.zeros((0, STATS_SIZE), np.float32)
    )


def window_motion_stats(stats: np.ndarray) -> np.ndarray:
    """Per position ``j`` of windows ``(n, K', STATS_SIZE)``: the mean and max over snippets ``0..j``,
    ``(n, K', 2 * STATS_SIZE)`` float32. Position ``K' - 1`` is the whole window's vector; the others are those
    of its prefixes (the windows of a filling ring), so the fused head is causal as the MTN is."""
    s = np.asarray(stats, np.float32)
    if s.ndim != 3 or s.shape[-1] != STATS_SIZE:
        raise MotionStatsError(f"window statistics need (n, K', {STATS_SIZE}), got shape {s.shape}")
    count = np.arange(1, s.shape[1] + 1, dtype=np.float32)[None, :, None]
    mean = np.cumsum(s, axis=1, dtype=np.float32) / count
    return np.concatenate([mean, np.maximum.accumulate(s, axis=1)], axis=-1)


STATS_SIZE = 38  # 19 base + 9 cells + 10 chaos
WINDOW_STATS_SIZE = 2 * STATS_SIZE  # mean and max over the window
