"""The folder of a device's event clips: atomic publication, a disk budget and a retention age.

A clip is written as ``.<event_id>.<ext>.part`` and renamed to ``<event_id>.<ext>`` only once it is complete
and flushed to disk (:meth:`ClipStore.publish`), so a clip that has a final name is whole; a writer killed
half-way leaves a ``.part`` file, which the next start deletes (:meth:`ClipStore.remove_partials`) and which
nothing ever announces. After each clip (and at start) :meth:`ClipStore.enforce` deletes clips older than
``max_age_s``, then the oldest clips while the folder holds more than ``budget_bytes``: a deletion forced by
the budget is one warning line (the budget is too small for the events this camera sees).

The clip's description in the ``end`` event (``i3dmtn.clip/1``, see :data:`edge_runtime.schema.CLIP_SCHEMA`)
is made by :func:`clip_info`, with the project's one SHA-256 (:func:`edge_runtime.bundle.sha256_file`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import sha256_file
from .schema import CLIP_FILE_RE, CLIP_SCHEMA

__all__ = ["ClipStore", "clip_info", "clip_missing"]

log = logging.getLogger(__name__)

_PART = ".part"


def clip_info(path: Path, *, duration_s: float, frames: int, width: int, height: int, started_at: float,
              codec: str) -> dict[str, Any]:  # fmt: skip
    """The ``clip`` field of an ``end`` event for the published clip at ``path``."""
    return {
        "schema": CLIP_SCHEMA,
        "exists": True,
        "file": path.name,
        "codec": codec,
        "started_at": started_at,  # time of the clip's first frame (pre-capture included)
        "duration_s": round(duration_s, 3),
        "frames": frames,
        "width": width,
        "height": height,
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def clip_missing(reason: str) -> dict[str, Any]:
    """The ``clip`` field of an ``end`` event whose clip could not be written (one line saying why)."""
    return {"schema": CLIP_SCHEMA, "exists": False, "error": reason[:200]}


@dataclass
class StoreStats:
    written: int = 0
    failed: int = 0
    deleted_age: int = 0
    deleted_budget: int = 0


class ClipStore:
    """Clips of one device in ``folder``; safe to use from several writer threads."""

    def __init__(self, folder: Path, *, budget_bytes: int, max_age_s: float) -> None:
        if budget_bytes <= 0 or max_age_s <= 0:
            raise ValueError(f"clip store {folder}: budget and max age must be > 0")
        self.folder = Path(folder)
        self.budget_bytes, self.max_age_s = int(budget_bytes), float(max_age_s)
        self.stats = StoreStats()
        self._lock = threading.Lock()
        self.folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, settings: Any, folder: Path | None) -> ClipStore:
        """The store of ``settings`` (:class:`devices.clip_settings.ClipSettings`) in ``folder`` (the
        settings' folder as resolved for the device id): ``.part`` files of a killed run deleted, retention
        applied."""
        if folder is None:
            raise ValueError("a clip store needs a folder")
        store = cls(
            folder, budget_bytes=int(settings.budget_mb * 1e6), max_age_s=settings.max_age_days * 86400
        )
        store.remove_partials()
        store.enforce()
        return store

    def part_path(self, name: str) -> Path:
        """Where the clip ``name`` is written before it is published."""
        if not CLIP_FILE_RE.fullmatch(name):
            raise ValueError(f"not a clip name: {name!r}")
        return self.folder / f".{name}{_PART}"

    def publish(self, name: str) -> Path:
        """Flush the written ``.part`` file to disk and give it its final name (atomic on one file system)."""
        part, final = self.part_path(name), self.folder / name
        with open(part, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part, final)
        try:  # the rename itself survives a power cut once the folder is flushed
            fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:  # a file system without directory fsync
            pass
        with self._lock:
            self.stats.written += 1
        return final

    def discard(self, name: str) -> None:
        """Delete a clip's ``.part`` file (its writer failed)."""
        self.part_path(name).unlink(missing_ok=True)
        with self._lock:
            self.stats.failed += 1

    def remove_partials(self) -> int:
        """Delete the ``.part`` files a killed writer left; how many."""
        removed = 0
        for path in self.folder.glob(f".*{_PART}"):
            path.unlink(missing_ok=True)
            removed += 1
        if removed:
            log.info("clips %s: deleted %d partial clip(s) of an interrupted run", self.folder, removed)
        return removed

    def clips(self) -> list[os.DirEntry[str]]:
        """The published clips, oldest first (by modification time)."""
        with os.scandir(self.folder) as it:
            entries = [e for e in it if CLIP_FILE_RE.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
        return sorted(entries, key=lambda e: (e.stat(follow_symlinks=False).st_mtime, e.name))

    def enforce(self, now: float | None = None, *, protect: str | None = None) -> list[str]:
        """Delete clips past the retention age, then the oldest while over the budget; the names deleted.
        ``protect`` (the clip just written, about to be announced) is never deleted here: the folder may
        then exceed the budget by that one clip until the next call."""
        now = time.time() if now is None else now
        deleted: list[str] = []
        with self._lock:
            entries = [e for e in self.clips() if e.name != protect]
            kept = []
            for entry in entries:
                if now - entry.stat(follow_symlinks=False).st_mtime > self.max_age_s:
                    Path(entry.path).unlink(missing_ok=True)
                    deleted.append(entry.name)
                    self.stats.deleted_age += 1
                else:
                    kept.append(entry)
            total = sum(e.stat(follow_symlinks=False).st_size for e in kept)
            if protect is not None and (self.folder / protect).is_file():
                total += (self.folder / protect).stat().st_size
            while kept and total > self.budget_bytes:
                oldest = kept.pop(0)
                size = oldest.stat(follow_symlinks=False).st_size
                Path(oldest.path).unlink(missing_ok=True)
                total -= size
                deleted.append(oldest.name)
                self.stats.deleted_budget += 1
                log.warning(
                    "clips %s: over the disk budget of %.1f MB: deleted the oldest clip %s (%.1f MB)",
                    self.folder, self.budget_bytes / 1e6, oldest.name, size / 1e6,
                )  # fmt: skip
        return deleted
