"""The user's cache folder of i3dmtn: where what is fetched once (the pose model, the I3D weights) and what is
computed once per video (the pose cache) is kept between runs.

:func:`cache_dir` is ``$I3DMTN_CACHE_DIR``, else ``$XDG_CACHE_HOME/i3d-mtn-edge``, else
``~/.cache/i3d-mtn-edge``; never a folder relative to the working directory. Standard library only (read by
``--help`` texts).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_dir"]

CACHE_ENV = "I3DMTN_CACHE_DIR"


def cache_dir() -> Path:
    """``$I3DMTN_CACHE_DIR``, else ``$XDG_CACHE_HOME/i3d-mtn-edge``, else ``~/.cache/i3d-mtn-edge`` (as the
    device's engine cache); never a folder relative to the working directory."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).expanduser().is_absolute() else Path.home() / ".cache"
    return base / "i3d-mtn-edge"
