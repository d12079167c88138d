"""The user's cache folder of i3dmtn: where what is fetched once (the pose model, the I3D weights) and what is
computed once per video (the pose cache) is kept between runs.

:func:`cache_dir` is ``$I3DMTN_CACHE_DIR``, else ``$XDG_CACHE_HOME/i3d-mtn-edge``, else
``~/.cache/i3d-mtn-edge``; never a folder relative to the working directory. Standard library only (read by
``--help`` texts).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path

__all__ = ["CACHE_ENV", "build_folder", "cache_dir"]

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


def build_folder(
    folder: Path,
    ours: Collection[str],
    what: str,
    build: Callable[[Path], None],
    error: type[Exception],
) -> None:
    """Make ``folder`` (the own folder of ``what``, e.g. "the pose model", holding only the files ``ours``) by
    ``build(work)`` in a hidden folder beside it, renamed into place when complete: an interrupted fetch never
    leaves a folder that looks complete. A folder holding other files, or one that cannot be made, is an
    ``error`` of one line."""
    if folder.exists() and not folder.is_dir():
        raise error(f"{folder}: exists and is not a folder")
    others = sorted(p.name for p in folder.iterdir() if p.name not in ours) if folder.is_dir() else []
    if others:
        raise error(
            f"{folder}: holds other files ({', '.join(others[:3])}); give an empty or new folder for {what}"
        )
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    except OSError as exc:  # the path it names may be a parent of folder (a file where a folder must be)
        reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else exc
        raise error(f"{folder}: cannot create it ({reason})") from None
    try:
        build(work)
        _put_in_place(work, folder, what, error)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _put_in_place(work: Path, folder: Path, what: str, error: type[Exception]) -> None:
    """Rename the finished ``work`` folder to ``folder``, replacing a previous one (only ours: checked)."""
    work.chmod(0o755)  # mkdtemp made it private
    try:
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(work, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, folder)
    except OSError as exc:
        raise error(f"{folder}: cannot put {what} in place ({exc.strerror or exc})") from None
