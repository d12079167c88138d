"""Clip frames: the viewing size (scaled down from the frame as decoded, never up, even sides), the clip's frame
rate by timestamp, and the JPEG they are kept as, decoded back for the encoder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.clip_frames import ClipFramer, clip_size


def _scene(h: int, w: int) -> np.ndarray:
    """A smooth picture (JPEG keeps it closely): two gradients and a dark square."""
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h) + 64], axis=-1).astype(np.uint8)
    cv2.rectangle(image, (w // 4, h // 4), (w // 2, h // 2), (20, 20, 20), -1)
    return image


@pytest.mark.parametrize(
    "source, max_height, expected",
    [((1920, 1080), 480, (854, 480)), ((640, 360), 480, (640, 360)), ((1280, 720), 0, (1280, 720)),
     ((2560, 1440), 481, (854, 480)), ((63, 47), 0, (62, 46)), ((320, 240), 240, (320, 240))],
)  # fmt: skip
def test_clip_size_is_at_most_max_height_never_larger_and_even(source, max_height, expected):
    assert clip_size(*source, max_height) == expected


def test_a_larger_frame_is_scaled_down_to_the_clip_size_and_decodes_to_it():
    source = _scene(180, 320)
    frame = ClipFramer(max_height=120, fps=0).frame(5.0, source)
    assert (frame.timestamp, frame.width, frame.height) == (5.0, 214, 120)
    yuv = frame.yuv()
    assert yuv.shape == (180, 214)  # I420: height * 3 / 2 rows
    decoded = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420).astype(np.float32)
    expected = cv2.resize(source, (214, 120), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(decoded - expected).mean() < 4.0  # the same picture, up to JPEG and 4:2:0
    assert frame.nbytes == len(frame.jpeg) < 214 * 120 * 3 // 2 // 4  # JPEG: a fraction of I420


def test_a_smaller_frame_keeps_its_size():
    frame = ClipFramer(max_height=480, fps=0).frame(0.0, _scene(90, 160))
    assert (frame.width, frame.height) == (160, 90)


def test_the_clip_rate_takes_frames_by_timestamp():
    framer = ClipFramer(max_height=0, fps=15.0)
    image = _scene(24, 32)
    taken = [framer(1000.0 + i / 30, image) is not None for i in range(30)]  # 1 s of a 30 fps camera
    assert taken == [True, False] * 15
    every = ClipFramer(max_height=0, fps=0)
    assert all(every(1000.0 + i / 30, image) is not None for i in range(10))
