"""The outbox's file: opened with every check a device needs at start, each problem one line naming the file.

:func:`connect` opens (or creates) the SQLite file of an :class:`~edge_runtime.outbox.Outbox` and checks, in
this order, that it is a file (not a folder), that its folder can be made, that it is an SQLite database, that
it is an outbox (a database of another program is refused rather than written into), that it is not damaged
(``PRAGMA quick_check``) and that this process may write it (a write transaction is begun and rolled back:
a read-only file, folder or file system is refused here, not at the first event). Each problem raises
:class:`OutboxError`, a ``ValueError`` with one line: ``outbox '<path>': <cause>``. ``OutboxError.full`` says
that the cause is a full disk, which the runtime survives (see :mod:`edge_runtime.outbox_fallback`) instead of
refusing to start. :class:`OutboxLock` keeps a second runtime off an outbox in use (it would send events of
the first one's device under its event ids), naming the holder's pid.

Example::

    db = connect(Path("/var/lib/i3dmtn/outbox.sqlite"), schema=[...])
    # OutboxError: outbox '/var/lib/i3dmtn/outbox.sqlite': not an SQLite database (file is not a database)
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path

__all__ = ["OutboxError", "OutboxLock", "connect", "check_writable", "error_is_full", "OUTBOX_COLUMNS"]

log = logging.getLogger(__name__)

OUTBOX_COLUMNS = ("id", "topic", "payload", "qos", "retain", "kind", "created_at")
# SQLite's primary result codes (the low byte of an extended code)
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_NEARLY_FULL_BYTES = 64 * 1024  # SQLite reports some writes on a full disk as an I/O error (its -shm file)


class OutboxError(ValueError):
    """The outbox cannot be used; ``full`` when the cause is a full disk (the runtime then runs without it)."""

    def __init__(self, message: str, *, full: bool = False) -> None:
        super().__init__(message)
        self.full = full


def error_is_full(err: BaseException, folder: Path) -> bool:
    """Whether ``err`` (SQLite's or the OS's) means the disk holding ``folder`` is full."""
    if isinstance(err, OSError):
        return err.errno in _FULL_ERRNOS
    code = getattr(err, "sqlite_errorcode", 0) & 0xFF
    if code == _FULL:
        return True
    if code == _IOERR:
        try:
            return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
        except OSError:
            return False
    return False


def _cause(err: sqlite3.Error, folder: Path) -> str:
    code = getattr(err, "sqlite_errorcode", 0) & 0xFF
    text = str(err)
    if error_is_full(err, folder):
        return f"the disk is full ({text})"
    if code == _NOTADB:
        return f"not an SQLite database ({text})"
    if code == _CORRUPT:
        return f"damaged ({text}); move it away to start with an empty outbox (its unsent events are lost)"
    if code == _READONLY:
        return f"not writable ({text}): the file, its folder or its file system is read-only for this user"
    if code == _CANTOPEN:
        return f"cannot be opened ({text}): is the file and its folder readable and writable by this user?"
    if code in (_BUSY, _LOCKED):
        return f"locked by another process ({text})"
    return text


def _check_ours(db: sqlite3.Connection, path: Path) -> None:
    """A database with tables but no outbox of ours is another program's: refuse it."""
    tables = sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    tables = [t for t in tables if not t.startswith("sqlite_")]
    if not tables:
        return  # a new or empty file: ours to create
    columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
    if not set(OUTBOX_COLUMNS) <= columns:
        raise OutboxError(
            f"outbox {str(path)!r}: an SQLite database, but not an edge-runtime outbox (tables: "
            f"{', '.join(tables[:8])}); give --outbox a new file name"
        )


def check_writable(path: Path) -> None:
    """The folder (WAL: SQLite creates ``-wal`` and ``-shm`` files beside the outbox) and the file, if there."""
    for target, what in ((path.parent, "its folder"), (path, "the file")):
        if not target.exists() or os.access(target, os.W_OK):
            continue
        try:
            read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        why = "is on a read-only file system" if read_only else "gives no write permission to this user"
        raise OutboxError(f"outbox {str(path)!r}: not writable: {what} {why}")


def connect(path: Path, *, schema: Sequence[str]) -> sqlite3.Connection:
    """Open the writing connection of the outbox at ``path`` (autocommit, WAL, ``synchronous=FULL``), create
    ``schema`` (SQL statements) and check the file as the module docstring says; one-line :class:`OutboxError`."""
    if path.is_dir():
        raise OutboxError(
            f"outbox {str(path)!r}: is a folder; expected an SQLite file (give --outbox a file)"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutboxError(
            f"outbox {str(path)!r}: cannot create its folder {str(path.parent)!r} ({err.strerror})",
            full=err.errno in _FULL_ERRNOS,
        ) from None
    check_writable(path)
    db = None
    try:
        # isolation_level=None: autocommit; every statement is its own transaction unless wrapped in an
        # explicit BEGIN IMMEDIATE ... COMMIT.
        db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        _check_ours(db, path)
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        db.execute("PRAGMA synchronous=FULL")
        for statement in schema:
            db.execute(statement)
        problems = [r[0] for r in db.execute("PRAGMA quick_check(1)")]
        if problems != ["ok"]:
            first = " ".join(str(problems[0]).split())[:200]  # SQLite's report may span lines
            raise OutboxError(
                f"outbox {str(path)!r}: damaged ({first}); move it away to start with an empty outbox "
                "(its unsent events are lost)"
            )
        db.execute("BEGIN IMMEDIATE")  # a read-only file, folder or file system fails here, not at an event
        db.execute("ROLLBACK")
        if str(mode).lower() != "wal":
            log.warning("outbox %s: WAL journal not available (got %s)", path, mode)
    except OutboxError:
        if db is not None:
            db.close()
        raise
    except sqlite3.Error as err:
        if db is not None:
            db.close()
        full = error_is_full(err, path.parent)
        raise OutboxError(f"outbox {str(path)!r}: {_cause(err, path.parent)}", full=full) from None
    return db


class OutboxLock:
    """One runtime per outbox: an exclusive ``flock`` on ``<outbox>.lock``, held until :meth:`release` (or the
    process ends: the kernel drops it, even after a SIGKILL). The file holds the holder's pid, so a second
    start is refused with one line naming it. On a disk too full to create the file the runtime runs
    unlocked, with a warning (detection comes first).

    Example::

        with OutboxLock(Path("/var/lib/i3dmtn/outbox-dev1.sqlite")):
            ...  # OutboxError: ... in use by another edge-runtime (pid 4242) ...
    """

    def __init__(self, outbox: Path) -> None:
        self.outbox = Path(outbox)
        self.path = self.outbox.with_name(self.outbox.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> OutboxLock:
        where = f"outbox {str(self.outbox)!r}"
        check_writable(self.outbox)
        try:
            self.outbox.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            if err.errno in _FULL_ERRNOS:
                log.warning("%s: the disk is too full for its lock file %s; running without the "
                            "one-runtime-per-outbox lock", where, self.path)  # fmt: skip
                return self
            raise OutboxError(
                f"{where}: cannot create its lock file {str(self.path)!r} ({err.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutboxError(f"{where}: cannot lock {str(self.path)!r} ({err.strerror})") from None
            raise OutboxError(
                f"{where}: in use by another edge-runtime (pid {holder}); one runtime per outbox and device id"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk: the lock holds all the same, only the pid is not shown
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a starting runtime)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutboxLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
