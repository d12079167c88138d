"""A durable outbox: every event is written to SQLite before it is published and deleted only on PUBACK.

SQLite in WAL mode with ``synchronous=FULL``: a row whose :meth:`Outbox.put` returned is on disk (fsync'd),
so a SIGKILL or a power cut loses nothing and leaves the database consistent. One connection, guarded by a
lock, so the runtime's producer thread and paho's network thread (acks) may both use it.

Bounded size: when ``max_messages`` rows are waiting, the oldest ``update`` rows are dropped first (an
update only refreshes the score of an event whose ``start`` and ``end`` still arrive); ``start`` and ``end``
rows are never dropped: if nothing can be dropped the outbox grows past the bound and logs a warning once,
because losing an event's start or end would be worse than using more disk.

Example::

    box = Outbox(Path("/var/lib/i3dmtn/outbox.sqlite"))
    row_id = box.put("i3dmtn/cam1/events", b"{...}", kind="start")
    for item in box.pending():
        ...  # publish, then on PUBACK: box.ack(item.id)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Outbox", "OutboxItem", "DROPPABLE_KIND"]

log = logging.getLogger(__name__)

DROPPABLE_KIND = "update"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id)"


@dataclass(frozen=True)
class OutboxItem:
    """One waiting message; ``id`` grows with every put, so id order is publish order."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    created_at: float


class Outbox:
    """SQLite outbox at ``path`` (created with its folder if missing); thread-safe; use as a context manager."""

    def __init__(self, path: str | Path, *, max_messages: int = 10000):
        if max_messages < 1:
            raise ValueError(f"outbox max_messages must be >= 1, got {max_messages}")
        self.path = Path(path)
        self.max_messages = max_messages
        self.dropped = 0  # update rows dropped because the outbox was full (this process)
        self._over_bound_warned = False
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit; every statement below is its own fsync'd transaction unless
            # wrapped in an explicit BEGIN IMMEDIATE ... COMMIT.
            self._db = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            self._db.execute(_INDEX)
        except sqlite3.DatabaseError as err:
            raise ValueError(f"outbox {str(self.path)!r}: not a usable SQLite database ({err})") from None
        if str(mode).lower() != "wal":
            log.warning("outbox %s: WAL journal not available (got %s)", self.path, mode)
        log.debug("outbox %s opened with %d waiting message(s)", self.path, self.backlog)

    def put(self, topic: str, payload: bytes, *, kind: str, qos: int = 1, retain: bool = False) -> int:
        """Store a message durably (returns after fsync) and return its id; may drop old ``update`` rows."""
        if qos not in (0, 1, 2):
            raise ValueError(f"outbox qos must be 0, 1 or 2, got {qos}")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"outbox payload must be bytes, got {type(payload).__name__}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                excess = count + 1 - self.max_messages
                if excess > 0:
                    dropped = self._db.execute(
                        "DELETE FROM outbox WHERE id IN "
                        "(SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT ?)",
                        (DROPPABLE_KIND, excess),
                    ).rowcount
                    self.dropped += dropped
                    if dropped < excess and not self._over_bound_warned:
                        self._over_bound_warned = True
                        log.warning(
                            "outbox %s is full (%d messages) with no update left to drop: keeping every start/end "
                            "and growing past the bound until the broker takes them",
                            self.path,
                            self.max_messages,
                        )
                cursor = self._db.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (topic, bytes(payload), qos, int(bool(retain)), kind, time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        row_id = cursor.lastrowid
        assert row_id is not None
        return row_id

    def pending(self, limit: int | None = None, *, after: int = 0) -> list[OutboxItem]:
        """Waiting messages with ``id > after`` in id order, at most ``limit`` of them."""
        sql = "SELECT id, topic, payload, qos, retain, kind, created_at FROM outbox WHERE id > ? ORDER BY id"
        params: tuple = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            params = (after, max(0, int(limit)))
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [OutboxItem(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6]) for r in rows]

    def ack(self, item_id: int) -> bool:
        """Delete a delivered message; False if it was already gone (a duplicate PUBACK or a dropped update)."""
        with self._lock:
            return self._db.execute("DELETE FROM outbox WHERE id = ?", (item_id,)).rowcount > 0

    @property
    def backlog(self) -> int:
        """How many messages wait for a PUBACK."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def integrity_ok(self) -> bool:
        """``PRAGMA integrity_check`` says ``ok``."""
        with self._lock:
            rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return [r[0] for r in rows] == ["ok"]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
