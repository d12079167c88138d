"""The outbox as the publisher uses it: SQLite while the disk takes writes, a bounded memory queue while not.

A device must never stop detecting because of its own storage. When a write to the
:class:`~edge_runtime.outbox.Outbox` fails (a full disk, a file system remounted read-only, an I/O error), or
the file cannot even be created at start because the disk is full, :class:`FallbackOutbox`:

- keeps the messages it could not store in memory, in order, after every stored row, under ids from
  :data:`MEMORY_BASE` up (so one cursor walks stored rows, then kept ones). The publisher sends them like
  stored rows (QoS 1, dropped from memory on PUBACK): with the broker up, events still arrive at once;
- keeps at most ``memory_limit`` of them: when full, the oldest ``update`` goes first (an update only
  refreshes a score, as in the outbox), then the oldest message of any kind (counted as lost);
- tries the disk again at most every ``retry_s`` (at the next message, or at :meth:`maintain`). Once a write
  succeeds, the messages still in memory are stored first, in ONE transaction with the new ones, and the
  outbox is durable again; :attr:`rewinds` grows so the sender reads from the oldest row again (the moved
  messages now have stored ids);
- logs the fault once when it begins, one summary line a minute while it lasts (never a line per event),
  and once when it ends; :meth:`status` gives the condition for ``/stats``.

What a fault can cost (docs/reliability.md measures it): with the broker up, nothing (kept messages are
delivered in milliseconds). With the broker down too, the messages in memory wait for it; a process that
dies meanwhile (power cut, SIGKILL) loses them, at most ``memory_limit`` messages; a normal stop first tries
the disk once more and logs how many it could not keep. An event whose ``start`` was only in memory is then
not known as open at the next start, so no ``end`` is sent for it.

Example::

    box = FallbackOutbox.open(Path("/var/lib/i3dmtn/outbox-dev1.sqlite"))  # a full disk: starts in memory
    ids = box.put_many(messages)  # stored, or kept in memory: never raises for the disk
    box.status()  # {"ok": False, "error": "database or disk is full", "memory_queue": 12, ...}
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_runtime.outbox import DROPPABLE_KIND, Outbox, OutboxItem, OutboxMessage
from edge_runtime.outbox_file import OutboxError

__all__ = ["FallbackOutbox", "MEMORY_BASE", "MEMORY_LIMIT"]

log = logging.getLogger(__name__)

MEMORY_BASE = 1 << 62  # ids of messages kept in memory; SQLite's row ids stay far below
MEMORY_LIMIT = 2000  # messages kept in memory at most: ~1 MB; a long event sends an update every few seconds
RETRY_S = 5.0  # a failing disk is tried again at most this often
REPORT_S = 60.0  # one summary log line a minute while the disk fails


def _describe(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _since(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class FallbackOutbox:
    """An :class:`Outbox` (``None`` while it cannot be opened) with the memory fallback described above.

    Thread-safe like the outbox: the producer stores, the sender reads, paho's thread acknowledges."""

    def __init__(
        self,
        path: str | Path,
        outbox: Outbox | None,
        *,
        error: str | None = None,
        memory_limit: int = MEMORY_LIMIT,
        retry_s: float = RETRY_S,
        report_s: float = REPORT_S,
        opener: Callable[[Path], Outbox] = Outbox,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if memory_limit < 1:
            raise ValueError(f"memory_limit must be >= 1, got {memory_limit}")
        self.path = Path(path)
        self.outbox = outbox
        self.memory_limit = memory_limit
        self.rewinds = 0  # times kept messages were moved to the disk (the sender then rereads from row 0)
        self._retry_s, self._report_s, self._opener, self._clock = retry_s, report_s, opener, clock
        self._write_lock = threading.Lock()  # one writer at a time (puts, retries)
        self._lock = threading.Lock()  # everything below; never held across a database write
        self._memory: OrderedDict[int, tuple[OutboxMessage, float]] = OrderedDict()
        self._next_key = MEMORY_BASE
        self._moved: dict[
            int, int
        ] = {}  # memory id -> row id, for the PUBACK of a message sent before it moved
        self._ended: set[str] = set()  # events open on disk whose end was delivered from memory
        self._open_on_disk: set[str] = set()
        self._memory_acked = 0
        self.kept = 0  # messages kept in memory because the disk refused them (this process)
        self.updates_dropped = 0  # kept updates dropped because memory was full
        self.lost = 0  # kept starts / ends dropped because memory was full
        self._error: str | None = None
        self._failing_since = 0.0  # wall clock, for status()
        self._failing_at = 0.0  # monotonic
        self._next_retry = self._next_report = 0.0
        if outbox is None:
            self._begin_failing(error or "the outbox cannot be opened")

    @classmethod
    def open(cls, path: str | Path, **kwargs: Any) -> FallbackOutbox:
        """Open the outbox at ``path``; on a full disk start in memory (retrying) instead of refusing.
        Any other problem of the file raises its one-line :class:`OutboxError`."""
        opener = kwargs.get("opener", Outbox)
        try:
            outbox = opener(Path(path))
        except OutboxError as err:
            if not err.full:
                raise
            return cls(path, None, error=str(err), **kwargs)
        return cls(path, outbox, **kwargs)

    # ---- state ----------------------------------------------------------------------------------------

    @property
    def failing(self) -> str | None:
        """Why the disk refuses writes (one line), or None while it takes them."""
        with self._lock:
            return self._error

    def status(self) -> dict[str, Any]:
        """The storage condition for ``/stats``."""
        with self._lock:
            return {
                "ok": self._error is None,
                "error": self._error,
                "failing_since": self._failing_since if self._error is not None else None,
                "memory_queue": len(self._memory),
                "memory_limit": self.memory_limit,
                "kept_in_memory": self.kept,
                "updates_dropped": self.updates_dropped,
                "lost": self.lost,
            }

    def _begin_failing(self, reason: str) -> None:
        now = self._clock()
        open_ids: set[str] = set()
        if self.outbox is not None:
            try:
                open_ids = self.outbox.open_event_ids()
            except sqlite3.Error:
                pass
        with self._lock:
            self._error = reason
            self._failing_since, self._failing_at = time.time(), now
            self._next_retry, self._next_report = now + self._retry_s, now + self._report_s
            self._open_on_disk = open_ids
        log.error(
            "outbox %s: cannot store events (%s); publishing them directly and keeping up to %d in memory "
            "until the disk takes writes again (tried every %g s)",
            self.path, reason, self.memory_limit, self._retry_s,
        )  # fmt: skip

    # ---- writes ---------------------------------------------------------------------------------------

    def put_many(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """Store ``messages`` in one transaction, or keep them in memory when the disk refuses; their ids.
        Never raises for the disk (invalid messages still raise, before anything is kept)."""
        if not messages:
            return []
        with self._write_lock:
            if self.failing is None and self.outbox is not None:
                try:
                    return self.outbox.put_many(messages)
                except sqlite3.Error as err:
                    self._begin_failing(_describe(err))
            else:
                ids = self._retry(messages)
                if ids is not None:
                    return ids
            keys = self._keep(messages)
        self._report()
        return keys

    def maintain(self, *, force: bool = False) -> None:
        """While failing: try the disk if due (``force``: now) and log the minute's summary if due."""
        if self.failing is None:
            return
        with self._write_lock:
            if force:
                self._next_retry = 0.0
            self._retry(())
        self._report()

    def _retry(self, messages: Sequence[OutboxMessage]) -> list[int] | None:
        """(holding ``_write_lock``, failing) Store what memory keeps, then ``messages``, in one transaction;
        the new messages' ids, or None (not due yet, or still failing)."""
        now = self._clock()
        if now < self._next_retry:
            return None
        self._next_retry = now + self._retry_s
        try:
            if self.outbox is None:
                self.outbox = self._opener(self.path)
            with self._lock:
                kept = list(self._memory.items())
                ended = list(self._ended)
            ids = self.outbox.put_many([m for _, (m, _) in kept] + list(messages), ended=ended)
        except (sqlite3.Error, OutboxError) as err:
            with self._lock:
                self._error = _describe(err)
            return None
        with self._lock:
            moved = {}
            for (key, _), row in zip(kept, ids, strict=False):
                if self._memory.pop(key, None) is not None:
                    moved[key] = row
                else:  # acknowledged while it was being stored: delete the row with the next flush
                    self.outbox.ack_later(row)
            self._moved = moved
            self._ended.difference_update(ended)
            self._error = None
            self.rewinds += 1
            lasted = _since(now - self._failing_at)
        log.warning(
            "outbox %s: storing events again after %s; %d message(s) kept in memory are on disk now",
            self.path, lasted, len(moved),
        )  # fmt: skip
        return ids[len(kept) :]

    def _keep(self, messages: Sequence[OutboxMessage]) -> list[int]:
        now = time.time()
        with self._lock:
            keys = list(range(self._next_key, self._next_key + len(messages)))
            self._next_key += len(messages)
            for key, message in zip(keys, messages, strict=True):
                self._memory[key] = (message, now)
            self.kept += len(messages)
            excess = len(self._memory) - self.memory_limit
            if excess > 0:
                updates = [k for k, (m, _) in self._memory.items() if m.kind == DROPPABLE_KIND][:excess]
                for key in updates:
                    del self._memory[key]
                self.updates_dropped += len(updates)
                for _ in range(excess - len(updates)):
                    self._memory.popitem(last=False)
                    self.lost += 1
        return keys

    def _report(self) -> None:
        now = self._clock()
        with self._lock:
            if self._error is None or now < self._next_report:
                return
            self._next_report = now + self._report_s
            line = (
                self.path, self._error, _since(now - self._failing_at), len(self._memory), self.memory_limit,
                self.kept, self.updates_dropped, self.lost,
            )  # fmt: skip
        log.warning(
            "outbox %s: still cannot store events (%s) for %s; %d in memory (at most %d), %d kept since it "
            "began, %d updates dropped, %d starts/ends lost",
            *line,
        )

    # ---- reads and acks (the sender, paho's thread) ---------------------------------------------------

    def pending(self, limit: int | None = None, *, after: int = 0) -> list[OutboxItem]:
        """Waiting messages with ``id > after``: stored rows first (id order), then the ones kept in memory."""
        rows: list[OutboxItem] = []
        if self.outbox is not None and after < MEMORY_BASE:
            try:
                rows = self.outbox.pending(limit, after=after)
            except sqlite3.Error as err:  # reads failing too: what memory keeps still goes
                log.debug("outbox %s: cannot read (%s)", self.path, err)
        if limit is not None and len(rows) >= limit:
            return rows
        with self._lock:
            kept = [(k, v) for k, v in self._memory.items() if k > after]
        if limit is not None:
            kept = kept[: limit - len(rows)]
        return rows + [
            OutboxItem(k, m.topic, bytes(m.payload), m.qos, bool(m.retain), m.kind, at) for k, (m, at) in kept
        ]

    def ack_later(self, item_id: int) -> None:
        """A PUBACK: a stored row is deleted with the next flush; a kept message leaves memory now."""
        if item_id < MEMORY_BASE:
            if self.outbox is not None:
                self.outbox.ack_later(item_id)
            return
        with self._lock:
            kept = self._memory.pop(item_id, None)
            row = self._moved.pop(item_id, None)
            if kept is not None:
                self._memory_acked += 1
                message = kept[0]
                if message.kind == "end" and message.event_id in self._open_on_disk:
                    self._ended.add(message.event_id)
        if row is not None and self.outbox is not None:
            self.outbox.ack_later(row)

    def flush_acks(self) -> int:
        """Delete the acknowledged stored rows (a failing delete leaves them recorded); how many."""
        if self.outbox is None:
            return 0
        try:
            return self.outbox.flush_acks()
        except sqlite3.Error as err:
            log.debug("outbox %s: acknowledged rows not deleted yet (%s)", self.path, err)
            return 0

    @property
    def backlog(self) -> int:
        """Messages waiting for a PUBACK: stored and kept in memory."""
        stored = 0
        if self.outbox is not None:
            try:
                stored = self.outbox.backlog
            except sqlite3.Error as err:
                log.debug("outbox %s: cannot count (%s)", self.path, err)
        with self._lock:
            return stored + len(self._memory)

    @property
    def memory_queue(self) -> int:
        """Messages kept in memory now."""
        with self._lock:
            return len(self._memory)

    @property
    def acked(self) -> int:
        """Messages acknowledged: stored rows deleted on PUBACK plus kept messages acknowledged."""
        with self._lock:
            memory = self._memory_acked
        return (self.outbox.acked if self.outbox is not None else 0) + memory

    def open_events(self) -> list[tuple[str, bytes]]:
        """The stored open events (see :meth:`Outbox.open_events`); none while the outbox cannot be read."""
        if self.outbox is None:
            return []
        try:
            return self.outbox.open_events()
        except sqlite3.Error as err:
            log.error("outbox %s: cannot read the open events (%s)", self.path, err)
            return []

    def close(self) -> None:
        """Close the outbox; messages still in memory are lost (:meth:`maintain` with ``force`` first)."""
        left = self.memory_queue
        if left:
            log.error(
                "outbox %s: %d message(s) kept in memory could not be stored (%s) and are lost",
                self.path, left, self.failing,
            )  # fmt: skip
        if self.outbox is not None:
            self.outbox.close()

    def __enter__(self) -> FallbackOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
