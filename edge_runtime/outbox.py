"""A durable outbox: every event is written to SQLite before it is published and deleted only on PUBACK.

SQLite in WAL mode, thread-safe: the runtime's producer thread, the publisher's sender thread and paho's
network thread (acks) may all use one ``Outbox``. Two connections, each guarded by its own lock: one writes,
one only reads (:meth:`Outbox.pending`), so the sender reads the next rows to publish while the producer
waits for its fsync (WAL: readers never wait for a writer).

Durability, and what each write costs (one fsync is the price of a durable commit: ~2 ms on a slow disk):

- **New messages** are written with ``synchronous=FULL``: a row whose :meth:`Outbox.put` /
  :meth:`Outbox.put_many` returned is on disk (the WAL is fsync'd at COMMIT), so a SIGKILL or a power cut
  loses nothing and leaves the database consistent. :meth:`Outbox.put_many` is *group commit*: several
  messages (all those a runtime loop produced at once, every camera) in ONE transaction, so one fsync.
- **Deletes on PUBACK** run with ``synchronous=NORMAL`` (WAL: a commit appends to the WAL without an fsync;
  the WAL is fsync'd at the next FULL commit or checkpoint). A crash can then undo the last deletes, never
  a put, and never corrupts the file (WAL frames are checksummed; recovery keeps a valid prefix). An undone
  delete only means the message is sent again after the restart, which the protocol already allows
  (at-least-once; consumers de-duplicate by ``event_id`` + ``seq``). So a delete needs no fsync.
- **Batched acks**: :meth:`Outbox.ack_later` only records the id in memory (no SQL, so paho's network thread
  never waits for the database); the recorded ids are deleted together in one transaction by the next
  :meth:`flush_acks`, :meth:`put_many` (inside its own transaction, for free), :meth:`pending`,
  :attr:`backlog` or :meth:`close`. :attr:`backlog` first deletes the recorded ids, so it never counts an
  acknowledged message; :meth:`pending` does too whenever a recorded id lies in the range it reads (a
  replay from the oldest row after a reconnect), so a replay sends only unacknowledged messages, in id
  order. (While sending, the rows read lie past every acknowledged one, so it reads without writing; an ack
  recorded during that read can only make the message go twice, which consumers de-duplicate.) When the
  deletes fail (a full disk), the ids stay recorded, are retried by the next flush, and the reads leave them
  out all the same. A SIGKILL before the delete loses
  only deletes (re-sends), as above. :meth:`ack` is the immediate form (one transaction, no fsync).

Bounded size: when ``max_messages`` rows are waiting, the oldest ``update`` rows are dropped first (an
update only refreshes the score of an event whose ``start`` and ``end`` still arrive); ``start`` and ``end``
rows are never dropped: if nothing can be dropped the outbox grows past the bound and logs a warning once,
because losing an event's start or end would be worse than using more disk.

Open events: a message stored with an ``event_id`` also records, in the same transaction, that event as open
(its newest message), until its ``end`` is stored. A process killed mid-event leaves it there, and
:meth:`Outbox.open_events` gives it to the next start, which sends its ``end`` (see
:meth:`edge_runtime.mqtt.MqttPublisher.end_open_events`): without it, consumers would show the event open forever.

Example::

    box = Outbox(Path("/var/lib/i3dmtn/outbox.sqlite"))
    row_id = box.put("i3dmtn/cam1/events", b"{...}", kind="start")
    rows = box.put_many([OutboxMessage("i3dmtn/cam1/events", b"{...}", kind="update")] * 3)  # one fsync
    for item in box.pending():
        ...  # publish, then on PUBACK: box.ack_later(item.id) (or box.ack(item.id))
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.outbox_file import OutboxError, connect

__all__ = ["Outbox", "OutboxError", "OutboxItem", "OutboxMessage", "DROPPABLE_KIND"]

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
# the newest stored message of every event whose ``end`` has not been stored (kept after its PUBACK)
_OPEN_EVENTS = """
CREATE TABLE IF NOT EXISTS open_events (
    event_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
)
"""
_INSERT = "INSERT INTO outbox (topic, payload, qos, retain, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)"
_DELETE = "DELETE FROM outbox WHERE id = ?"


@dataclass(frozen=True)
class OutboxMessage:
    """A message to store: what :meth:`Outbox.put_many` takes (``put``'s arguments as one value)."""

    topic: str
    payload: bytes
    kind: str
    qos: int = 1
    retain: bool = False
    event_id: str | None = None  # an event's message: tracked as open until its ``end`` is stored


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


def _row(message: OutboxMessage, now: float) -> tuple:
    if message.qos not in (0, 1, 2):
        raise ValueError(f"outbox qos must be 0, 1 or 2, got {message.qos}")
    if not isinstance(message.payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"outbox payload must be bytes, got {type(message.payload).__name__}")
    return (message.topic, bytes(message.payload), message.qos, int(bool(message.retain)), message.kind, now)


class Outbox:
    """SQLite outbox at ``path`` (created with its folder if missing); thread-safe; use as a context manager.

    A file that cannot be used (a folder, not an outbox, damaged, read-only, a full disk) raises a one-line
    :class:`~edge_runtime.outbox_file.OutboxError` naming it (see :func:`edge_runtime.outbox_file.connect`)."""

    def __init__(self, path: str | Path, *, max_messages: int = 10000):
        if max_messages < 1:
            raise ValueError(f"outbox max_messages must be >= 1, got {max_messages}")
        self.path = Path(path)
        self.max_messages = max_messages
        self.dropped = 0  # update rows dropped because the outbox was full (this process)
        self.acked = 0  # rows deleted by ack / ack_later (this process)
        self._over_bound_warned = False
        self._lock = threading.Lock()  # the writing connection; taken before _acks_lock when both are needed
        self._read_lock = threading.Lock()  # the reading connection
        self._acks_lock = threading.Lock()  # _acked only: ack_later never waits for a database write
        self._acked: set[int] = set()  # acknowledged ids not deleted yet
        self._db = connect(self.path, schema=(_SCHEMA, _INDEX, _OPEN_EVENTS))
        try:
            self._reader = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            self._reader.execute("PRAGMA query_only=1")
        except sqlite3.Error as err:
            self._db.close()
            raise OutboxError(f"outbox {str(self.path)!r}: cannot be read ({err})") from None
        log.debug("outbox %s opened with %d waiting message(s)", self.path, self.backlog)

    # ---- writes of new messages (durable: synchronous=FULL) --------------------------------------------

    def put(self, topic: str, payload: bytes, *, kind: str, qos: int = 1, retain: bool = False) -> int:
        """Store a message durably (returns after fsync) and return its id; may drop old ``update`` rows."""
        return self.put_many([OutboxMessage(topic, payload, kind, qos, retain)])[0]

    def put_many(self, messages: Sequence[OutboxMessage], *, ended: Iterable[str] = ()) -> list[int]:
        """Store several messages in ONE transaction (one fsync) and return their ids, in the given order.

        All or nothing: when it raises, none of them is stored. Acknowledged ids recorded by
        :meth:`ack_later` are deleted in the same transaction. May drop old ``update`` rows (see the module
        docstring); rows of this call are never dropped by it. ``ended``: ids of events whose ``end`` was
        delivered without being stored (see :mod:`edge_runtime.outbox_fallback`), no longer open."""
        now = time.time()
        rows = [_row(m, now) for m in messages]  # validates every message before writing any
        ended = list(ended)
        if not rows and not ended:
            return []
        with self._lock:
            with self._acks_lock:
                acked, self._acked = self._acked, set()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                deleted = self._delete(acked)
                ids = [int(self._db.execute(_INSERT, row).lastrowid or 0) for row in rows]
                self._track_open_events(messages)
                self._db.executemany("DELETE FROM open_events WHERE event_id = ?", [(e,) for e in ended])
                if ids:
                    self._drop_updates(oldest_new=ids[0])
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                with self._acks_lock:
                    self._acked |= acked
                raise
            self.acked += deleted
        return ids

    def _track_open_events(self, messages: Sequence[OutboxMessage]) -> None:
        """Inside a transaction: an event's ``end`` closes it; any other message of it is its newest."""
        for m in messages:
            if m.event_id is None:
                continue
            if m.kind == "end":
                self._db.execute("DELETE FROM open_events WHERE event_id = ?", (m.event_id,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO open_events (event_id, topic, payload) VALUES (?, ?, ?)",
                    (m.event_id, m.topic, bytes(m.payload)),
                )

    def open_events(self) -> list[tuple[str, bytes]]:
        """``(topic, payload)`` of the newest stored message of every event whose ``end`` was never stored:
        after a crash or a power cut, the events that were open (the runtime ends them on its next start)."""
        with self._read_lock:
            rows = self._reader.execute("SELECT topic, payload FROM open_events ORDER BY rowid").fetchall()
        return [(r[0], bytes(r[1])) for r in rows]

    def open_event_ids(self) -> set[str]:
        """The ids of the events :meth:`open_events` gives."""
        with self._read_lock:
            return {r[0] for r in self._reader.execute("SELECT event_id FROM open_events")}

    def _drop_updates(self, *, oldest_new: int) -> None:
        """Inside a transaction: bring the row count back to the bound by dropping ``update`` rows older
        than ``oldest_new`` (the first row of this put), oldest first."""
        count = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        excess = count - self.max_messages
        if excess <= 0:
            return
        dropped = self._db.execute(
            "DELETE FROM outbox WHERE id IN "
            "(SELECT id FROM outbox WHERE kind = ? AND id < ? ORDER BY id LIMIT ?)",
            (DROPPABLE_KIND, oldest_new, excess),
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

    # ---- reads (each first deletes what was acknowledged, so an acknowledged row is never "waiting") ----

    def pending(self, limit: int | None = None, *, after: int = 0) -> list[OutboxItem]:
        """Waiting (unacknowledged) messages with ``id > after`` in id order, at most ``limit`` of them."""
        sql = "SELECT id, topic, payload, qos, retain, kind, created_at FROM outbox WHERE id > ? ORDER BY id"
        params: tuple = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            params = (after, max(0, int(limit)))
        with self._acks_lock:
            replay = any(row > after for row in self._acked)
        if replay:
            self._try_flush()
        with self._read_lock:
            rows = self._reader.execute(sql, params).fetchall()
        with self._acks_lock:  # recorded acks whose delete failed (a full disk) are left out here
            acked = set(self._acked) if replay else set()
        items = [OutboxItem(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6]) for r in rows]
        return [item for item in items if item.id not in acked] if acked else items

    @property
    def backlog(self) -> int:
        """How many messages wait for a PUBACK."""
        with self._lock:
            self._try_flush_locked()
            with self._acks_lock:  # recorded acks whose delete failed (a full disk): not waiting
                acked = list(self._acked)
            count = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            for start in range(0, len(acked), 500):
                chunk = acked[start : start + 500]
                sql = f"SELECT COUNT(*) FROM outbox WHERE id IN ({','.join('?' * len(chunk))})"
                count -= self._db.execute(sql, chunk).fetchone()[0]
            return count

    # ---- acks (cheap: no fsync) ------------------------------------------------------------------------

    def ack(self, item_id: int) -> bool:
        """Delete a delivered message now; False if it was already gone (a duplicate PUBACK or a dropped update)."""
        with self._lock:
            with self._acks_lock:
                self._acked.discard(item_id)
            deleted = self._commit_deletes([item_id])
        return deleted > 0

    def ack_later(self, item_id: int) -> None:
        """Record a delivered message; it is deleted with others by the next flush, put or read (no SQL here)."""
        with self._acks_lock:
            self._acked.add(item_id)

    def ack_many(self, item_ids: Iterable[int]) -> int:
        """Delete delivered messages now, in one transaction; how many were still there."""
        ids = set(item_ids)
        with self._lock:
            with self._acks_lock:
                self._acked -= ids
            return self._commit_deletes(ids)

    def flush_acks(self) -> int:
        """Delete the messages recorded by :meth:`ack_later`, in one transaction; how many were still there."""
        with self._lock:
            return self._flush_locked()

    def _try_flush(self) -> None:
        with self._lock:
            self._try_flush_locked()

    def _try_flush_locked(self) -> None:
        """:meth:`_flush_locked` for a read: a delete that fails (a full disk) leaves the ids recorded, and the
        read leaves them out."""
        try:
            self._flush_locked()
        except sqlite3.Error as err:
            log.debug("outbox %s: acknowledged rows not deleted yet (%s)", self.path, err)

    def _flush_locked(self) -> int:
        with self._acks_lock:
            acked, self._acked = self._acked, set()
        if not acked:
            return 0
        try:
            return self._commit_deletes(acked)
        except BaseException:
            with self._acks_lock:
                self._acked |= acked
            raise

    def _commit_deletes(self, ids: Iterable[int]) -> int:
        """One ``synchronous=NORMAL`` transaction deleting ``ids`` (caller holds ``_lock``)."""
        ids = list(ids)
        if not ids:
            return 0
        self._db.execute("PRAGMA synchronous=NORMAL")  # no fsync at this COMMIT: see the module docstring
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                deleted = self._delete(ids)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        finally:
            self._db.execute("PRAGMA synchronous=FULL")  # every put stays durable
        self.acked += deleted
        return deleted

    def _rollback(self) -> None:
        """Undo the open transaction, if SQLite has not already: after ``SQLITE_FULL`` or an I/O error SQLite
        rolls back by itself, and a ROLLBACK then would raise over the real error."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as err:
                log.debug("outbox %s: rollback failed (%s)", self.path, err)

    def _delete(self, ids: Iterable[int]) -> int:
        """Inside a transaction: delete ``ids``; how many existed."""
        return self._db.executemany(_DELETE, [(i,) for i in ids]).rowcount if ids else 0

    # ---- the rest --------------------------------------------------------------------------------------

    def integrity_ok(self) -> bool:
        """``PRAGMA integrity_check`` says ``ok``."""
        with self._lock:
            rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return [r[0] for r in rows] == ["ok"]

    def close(self) -> None:
        """Delete what was acknowledged, then close the database."""
        with self._lock:
            try:
                self._flush_locked()
            except sqlite3.Error as err:  # closing must not fail: the rows are only sent again
                log.warning("outbox %s: acknowledged rows not deleted at close (%s)", self.path, err)
            self._db.close()
        with self._read_lock:
            self._reader.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
