"""``--show``: a local OpenCV window per camera with the newest score drawn on the frame (for setting up a camera).

Only when a display exists and this OpenCV has a GUI (``opencv-python-headless`` has none); otherwise one
warning and the runtime carries on without it.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

__all__ = ["ScoreDisplay", "display_available"]

log = logging.getLogger(__name__)


def display_available() -> tuple[bool, str]:
    """``(True, "")`` when a window can be opened, else ``(False, why not)``."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False, "no display (DISPLAY / WAYLAND_DISPLAY is not set)"
    import cv2

    try:
        cv2.namedWindow("i3dmtn-probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("i3dmtn-probe")
    except cv2.error:
        return False, f"this OpenCV ({cv2.__version__}) has no GUI support (a headless build)"
    return True, ""


class ScoreDisplay:
    """Shows each camera's newest snippet frame with its score; red above the on-threshold."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        ok, why = display_available()
        self.enabled = ok
        if not ok:
            log.warning("--show: cannot open a window: %s; running without it", why)

    def show(self, camera: str, frame: np.ndarray, score: float, active: bool) -> None:
        if not self.enabled:
            return
        import cv2

        image = frame.copy()
        colour = (0, 0, 255) if score >= self.threshold or active else (0, 200, 0)
        text = f"{camera} score {score:.2f}" + (" ALERT" if active else "")
        cv2.putText(image, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, colour, 2, cv2.LINE_AA)
        cv2.imshow(f"edge-runtime {camera}", image)
        cv2.waitKey(1)

    def close(self) -> None:
        if self.enabled:
            import cv2

            cv2.destroyAllWindows()
