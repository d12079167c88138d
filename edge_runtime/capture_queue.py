"""How many frames a camera's capture queue holds by default (:func:`default_queue`), and the time a queue of
frames holds (:func:`queue_seconds`); ``edge-runtime --max-queue`` sets it instead."""

from __future__ import annotations

import math

from .bundle import Bundle
from .cli_options import MAX_QUEUE

__all__ = ["default_queue", "queue_seconds"]

_MIN_QUEUE = 32  # frames a camera's queue holds at least
_QUEUE_SNIPPETS = 1.5  # ... and by default this many snippets' frames
_CAMERA_FPS = 30.0  # a bundle without a frame rate takes every frame of a camera at (commonly) this rate


def default_queue(bundle: Bundle) -> int:
    """Frames a camera's capture queue holds by default: 1.5 snippets, at least 32, at most ``MAX_QUEUE``.

    The capture thread queues frames at the contract's rate (it skips the others before converting them), so
    1.5 snippets of frames are 1.5 snippets' time, at any camera rate at or above the contract's (a slower
    camera's frames are repeated: they hold more). The loop sends the snippets completed in one pass to one
    backbone call, and cameras started together complete theirs together; near full load that call lasts up
    to a snippet's time while every camera keeps capturing. A queue shorter than that drops frames with CPU
    to spare: the ``kinetics`` bundle's 2.1-s snippets dropped frames at 5 cameras of 2 cores while the loop
    was idle 63 % of the time with 4, with a queue of 32 frames of a 30 fps camera.
    """
    w = bundle.window
    return min(MAX_QUEUE, max(_MIN_QUEUE, math.ceil(_QUEUE_SNIPPETS * w.snippet_length * w.frame_stride)))


def queue_seconds(bundle: Bundle, frames: int) -> float:
    """The time a capture queue of ``frames`` holds: frames at the contract's rate (a bundle without one:
    a 30 fps camera's)."""
    return frames / (bundle.preprocess.frame_rate or _CAMERA_FPS)
