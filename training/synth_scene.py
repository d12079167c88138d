"""Where the synthetic people are, frame by frame: smooth walkers, a calm meeting, a fight, a gym class.

Each function returns :class:`Figure` tracks (one value per frame) that :mod:`training.synth` draws. All
lengths are relative to the frame size and a person's height, speeds are in body heights per second.
Angles are radians: limbs from hanging straight down, turning toward where the person faces; the body's
lean from upright.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Figure", "walker", "meeting_pair", "fight_pair", "jumper"]


@dataclass
class Figure:
    """One person's appearance and per-frame pose over a video of ``T`` frames."""

    height: float  # px, feet to top of head
    shirt: tuple[float, float, float]  # BGR
    pants: tuple[float, float, float]
    skin: tuple[float, float, float]
    x: np.ndarray  # (T,) hip x, px
    feet: np.ndarray  # (T,) feet y, px (depth order: larger is nearer)
    facing: np.ndarray  # (T,) +1 right, -1 left
    lean: np.ndarray  # (T,)
    legs: np.ndarray  # (T, 2) leg angles
    arms: np.ndarray  # (T, 2, 2) (upper arm, forearm) angles per arm


_SKINS = ((60, 80, 110), (90, 120, 170), (120, 160, 210), (150, 190, 230), (40, 55, 80))


def _colours(rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    skin = np.array(_SKINS[int(rng.integers(len(_SKINS)))]) * rng.uniform(0.85, 1.15)
    return {
        "shirt": tuple(rng.uniform(15, 240, 3).tolist()),
        "pants": tuple(rng.uniform(25, 225, 3).tolist()),
        "skin": tuple(np.clip(skin, 0, 255).tolist()),
    }


def _walk_pose(phase: np.ndarray, amplitude: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth gait: legs swing in opposition, arms against the legs, forearms slightly bent."""
    s = amplitude * np.sin(phase)
    legs = np.stack([s, -s], axis=1)
    upper = np.stack([-0.6 * s, 0.6 * s], axis=1)
    arms = np.stack([upper, upper + 0.3], axis=2)
    return legs, arms, np.full(phase.shape, 0.06)


def walker(rng: np.random.Generator, frames: int, width: int, height: int, fps: float) -> Figure:
    """Someone walking across at a steady speed, with a gait whose cadence follows the speed."""
    h = rng.uniform(0.38, 0.62) * height
    feet_y = rng.uniform(h + 0.03 * height, 0.98 * height)
    speed = rng.uniform(0.25, 1.1)  # body heights per second: strolling to brisk
    direction = float(rng.choice([-1.0, 1.0]))
    t = np.arange(frames, dtype=np.float64)
    x = rng.uniform(-0.1, 1.1) * width + direction * speed * h / fps * t
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * (0.8 + 0.9 * speed) / fps * t
    legs, arms, lean = _walk_pose(phase, rng.uniform(0.3, 0.5))
    feet = feet_y - 0.015 * h * np.abs(np.sin(phase))
    return Figure(
        h, x=x, feet=feet, facing=np.full(frames, direction), lean=lean, legs=legs, arms=arms, **_colours(rng)
    )


def _pair(
    rng: np.random.Generator,
    frames: int,
    width: int,
    height: int,
    fps: float,
    start: int,
    end: int,
    gap: float,
) -> tuple[list[Figure], np.ndarray, float, float]:
    """Two people who walk up to a meeting point (arriving at ``start``) and walk apart after ``end``.

    Returns the figures (poses inside ``[start, end)`` left for the caller), their standing x, the feet y and
    the shared height.
    """
    h0 = rng.uniform(0.5, 0.7) * height
    heights = h0 * rng.uniform(0.92, 1.08, 2)
    feet_y = rng.uniform(heights.max() + 0.03 * height, 0.98 * height)
    meet = rng.uniform(0.35, 0.65) * width
    stand = np.array([meet - gap * h0, meet + gap * h0])  # A on the left faces right, B faces left
    t = np.arange(frames, dtype=np.float64)
    figures = []
    for k, side in enumerate((-1.0, 1.0)):
        speed = rng.uniform(0.4, 1.1) * heights[k] / fps  # px per frame
        leave = float(rng.choice([-1.0, 1.0]))
        x = np.where(t < start, stand[k] + side * speed * (start - t), stand[k])
        x = np.where(t >= end, stand[k] + leave * speed * (t - end + 1), x)
        facing = np.where(t < start, -side, np.where(t >= end, leave, -side))
        phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * 1.5 / fps * t
        legs, arms, lean = _walk_pose(phase, rng.uniform(0.3, 0.5))
        feet = np.full(frames, feet_y + rng.uniform(-0.02, 0.02) * height)
        figures.append(
            Figure(
                heights[k], x=x, feet=feet, facing=facing, lean=lean, legs=legs, arms=arms, **_colours(rng)
            )
        )
    return figures, stand, feet_y, h0


def meeting_pair(
    rng: np.random.Generator, frames: int, width: int, height: int, fps: float, start: int, end: int
) -> list[Figure]:
    """Two people meet and stand talking in ``[start, end)``: close together, slow gestures (normal)."""
    figures, stand, _, h0 = _pair(rng, frames, width, height, fps, start, end, gap=rng.uniform(0.2, 0.3))
    t = np.arange(start, end, dtype=np.float64) / fps
    for k, fig in enumerate(figures):
        sway = 2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 2 * np.pi)
        fig.x[start:end] = stand[k] + 0.015 * h0 * np.sin(sway)
        fig.lean[start:end] = 0.02
        fig.legs[start:end] = (-0.08, 0.08)
        gesture = 0.25 + 0.35 * (1 + np.sin(sway)) / 2
        fig.arms[start:end, 0, 0], fig.arms[start:end, 0, 1] = gesture, gesture + 0.6
        fig.arms[start:end, 1] = (0.05, 0.15)
    return figures


def fight_pair(
    rng: np.random.Generator, frames: int, width: int, height: int, fps: float, start: int, end: int
) -> list[Figure]:
    """Two people close in, then in ``[start, end)`` jitter, lunge, hop and flail fast and erratically."""
    figures, stand, feet_y, h0 = _pair(
        rng, frames, width, height, fps, start, end, gap=rng.uniform(0.14, 0.2)
    )
    n = end - start
    drift = np.cumsum(rng.normal(0, 0.03 * h0, n))  # the brawl wanders a little
    for k, fig in enumerate(figures):
        toward = fig.facing[start]
        fig.x[start:end] = (
            stand[k] + drift + rng.normal(0, 0.1 * h0, n) + toward * rng.uniform(0, 0.2 * h0, n)
        )
        fig.feet[start:end] = feet_y + rng.normal(0, 0.04 * h0, n)
        fig.lean[start:end] = rng.normal(0.15, 0.35, n)
        fig.legs[start:end] = rng.uniform(-0.8, 0.8, (n, 2))
        upper = rng.uniform(0.3, 2.9, (n, 2))
        fig.arms[start:end, :, 0] = upper
        fig.arms[start:end, :, 1] = upper + rng.uniform(-1.2, 1.2, (n, 2))
    return figures


def jumper(rng: np.random.Generator, frames: int, width: int, height: int, fps: float) -> Figure:
    """Someone doing jumping jacks on the spot: arms from the sides to overhead and back, legs apart and
    together, a hop on each beat. Big, fast limb motion like a fight's, but periodic and alone (normal)."""
    h = rng.uniform(0.4, 0.65) * height
    feet_y = rng.uniform(h + 0.03 * height, 0.98 * height)
    t = np.arange(frames, dtype=np.float64) / fps
    beat = 2 * np.pi * rng.uniform(1.4, 2.2) * t + rng.uniform(0, 2 * np.pi)  # 1.4-2.2 jacks per second
    spread = (1 - np.cos(beat)) / 2  # 0: arms down, legs together; 1: arms overhead, legs apart
    upper = 0.15 + rng.uniform(2.3, 2.7) * spread
    arms = np.empty((frames, 2, 2))
    arms[:, 0, 0], arms[:, 0, 1] = upper, upper + 0.2  # one arm to each side: the pose faces the camera
    arms[:, 1, 0], arms[:, 1, 1] = -upper, -upper - 0.2
    legs = np.stack([0.05 + 0.4 * spread, -0.05 - 0.4 * spread], axis=1)
    x = np.full(frames, rng.uniform(0.15, 0.85) * width)
    feet = feet_y - 0.06 * h * np.abs(np.sin(beat))  # off the ground between the beats
    facing = np.full(frames, float(rng.choice([-1.0, 1.0])))
    return Figure(
        h, x=x, feet=feet, facing=facing, lean=np.zeros(frames), legs=legs, arms=arms, **_colours(rng)
    )
