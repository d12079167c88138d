"""Storage faults for the tests: a disk that fills up and frees again, and one that turns read-only.

Two ways to make a disk full, both real SQLite ``database or disk is full`` errors:

- ``tmpfs``: a small real file system (``mount -t tmpfs -o size=...``, needs root) filled with a filler file
  until the kernel says ``ENOSPC``; freed by deleting the filler. The outbox, its WAL and its lock file live
  on it, so every write SQLite makes meets the full disk, as on a device.
- ``page_limit``: where mounting is not allowed, SQLite's ``PRAGMA max_page_count`` set to the file's current
  size on the outbox's writing connection: SQLite then fails a write that needs a new page with the same
  error code (``SQLITE_FULL``). Only that connection sees the limit.

And what the outbox tests on such disks share: an outbox with rows in it, puts until the disk refuses one,
and the rows a restart would find.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

__all__ = [
    "SmallDisk",
    "PageLimitDisk",
    "mount_tmpfs",
    "outbox_with_rows",
    "put_until_full",
    "rows_on_disk",
]

_FILLER = "filler.bin"


def mount_tmpfs(path: Path, size_kib: int) -> str | None:
    """Mount a tmpfs of ``size_kib`` KiB at ``path``; None when done, else why it cannot be (not root...)."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return "no mount command"
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0777", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return f"mounting a tmpfs needs root here ({(proc.stderr or proc.stdout).strip()})"
    return None


class SmallDisk:
    """A small tmpfs at ``folder``: :meth:`fill` it to the last byte, :meth:`free` it, make it read-only."""

    kind = "tmpfs"

    def __init__(self, folder: Path, size_kib: int = 2048) -> None:
        self.folder = folder
        self.size_kib = size_kib
        self.mounted = False

    def mount(self) -> str | None:
        why = mount_tmpfs(self.folder, self.size_kib)
        self.mounted = why is None
        return why

    def fill(self, outbox: Any = None) -> int:
        """Write a filler file until the file system is full; how many bytes it took."""
        fd = os.open(self.folder / _FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        written = 0
        try:
            for size in (65536, 4096, 512, 1):  # down to the last byte
                block = b"\0" * size
                while True:
                    try:
                        written += os.write(fd, block)
                    except OSError as err:
                        if err.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def free(self, outbox: Any = None) -> None:
        (self.folder / _FILLER).unlink(missing_ok=True)

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True)

    def writable(self) -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(self.folder)], check=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=False)
            self.mounted = False


class PageLimitDisk:
    """The fallback: a folder whose outbox is held at its current size by ``PRAGMA max_page_count``."""

    kind = "page_limit"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _writer(outbox: Any) -> sqlite3.Connection:
        box = getattr(outbox, "outbox", outbox)  # an Outbox, or a FallbackOutbox holding one
        return box._db  # the writing connection: the limit is per connection

    def fill(self, outbox: Any) -> int:
        db = self._writer(outbox)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {int(pages)}")
        return 0

    def free(self, outbox: Any) -> None:
        self._writer(outbox).execute("PRAGMA max_page_count = 1073741823")

    def unmount(self) -> None:
        pass


def outbox_with_rows(path: Path, rows: int = 400) -> int:
    """An outbox at ``path`` holding ``rows`` start messages of 300 bytes; the file's size."""
    from edge_runtime.outbox import Outbox, OutboxMessage

    with Outbox(path) as box:
        box.put_many([OutboxMessage("i3dmtn/dev1/events", b"z" * 300, kind="start")] * rows)
    return path.stat().st_size


def put_until_full(box: Any, limit: int = 20000) -> sqlite3.Error:
    """Put start rows until the disk refuses one; the error it raised."""
    for _ in range(limit):
        try:
            box.put("i3dmtn/dev/events", b"x" * 400, kind="start")
        except sqlite3.Error as err:
            return err
    raise AssertionError(f"{limit} puts on a full disk all succeeded")


def rows_on_disk(path: Path) -> list[int]:
    """The ids in the outbox file, read by a separate connection (what a restart would find)."""
    db = sqlite3.connect(str(path))
    try:
        return [r[0] for r in db.execute("SELECT id FROM outbox ORDER BY id")]
    finally:
        db.close()
