"""The outbox's memory fallback: a full disk never raises to the producer, keeps messages in memory (bounded,
updates dropped first), and stores them first once the disk takes writes again."""

from __future__ import annotations

import json
import logging

import pytest

from edge_runtime.outbox import Outbox, OutboxMessage
from edge_runtime.outbox_fallback import MEMORY_BASE, FallbackOutbox
from edge_runtime.outbox_file import OutboxError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _message(kind: str, n: int, event: str = "e1") -> OutboxMessage:
    body = {"event_id": event, "seq": n, "type": kind, "pad": "x" * 300}
    return OutboxMessage("i3dmtn/dev/events", json.dumps(body).encode(), kind=kind, event_id=event)


def _seqs(items) -> list[int]:
    return [json.loads(i.payload)["seq"] for i in items]


def _until_failing(box: FallbackOutbox, kind: str = "update", limit: int = 20000) -> list[int]:
    """Put messages until the disk refuses one (it is then kept in memory); every id returned."""
    ids = []
    for n in range(limit):
        ids += box.put_many([_message(kind, 100 + n)])
        if box.failing:
            return ids
    raise AssertionError("the disk never refused a write")


def test_a_full_disk_keeps_messages_in_memory_after_the_stored_ones_and_never_raises(full_disk):
    clock = Clock()
    with FallbackOutbox.open(full_disk.folder / "o.sqlite", clock=clock) as box:
        stored = box.put_many([_message("start", 0), _message("update", 1)])
        full_disk.fill(box)
        more = _until_failing(box)
        kept = box.put_many([_message("update", 500), _message("end", 501)])
        assert "database or disk is full" in box.failing
        assert all(i < MEMORY_BASE for i in stored) and all(i >= MEMORY_BASE for i in kept)
        assert [i.id for i in box.pending()] == stored + more + kept  # one order: stored, then kept
        status = box.status()
        assert not status["ok"] and status["memory_queue"] == 3 and status["kept_in_memory"] == 3
        assert box.backlog == len(stored + more + kept)
        full_disk.free(box)


def test_memory_is_bounded_dropping_updates_first_then_the_oldest(full_disk):
    with FallbackOutbox.open(full_disk.folder / "o.sqlite", memory_limit=4, clock=Clock()) as box:
        full_disk.fill(box)
        _until_failing(box, kind="start")
        box.put_many([_message("update", 1), _message("start", 2), _message("update", 3)])
        box.put_many([_message("end", 4), _message("start", 5)])
        kept = [i for i in box.pending() if i.id >= MEMORY_BASE]
        assert [i.kind for i in kept] == ["start", "start", "end", "start"]  # both updates went first
        assert box.status()["updates_dropped"] == 2 and box.status()["lost"] == 0
        box.put_many([_message("start", 6)])
        assert _seqs(box.pending())[-4:] == [2, 4, 5, 6]  # then the oldest message
        assert box.status()["lost"] == 1
        full_disk.free(box)


def test_when_the_disk_takes_writes_again_the_kept_messages_are_stored_first(full_disk):
    clock = Clock()
    path = full_disk.folder / "o.sqlite"
    with FallbackOutbox.open(path, retry_s=5.0, clock=clock) as box:
        box.put_many([_message("start", 0)])
        full_disk.fill(box)
        _until_failing(box)
        kept = box.put_many([_message("update", 1), _message("update", 2)])
        box.ack_later(kept[0])  # delivered from memory
        full_disk.free(box)
        clock.now += 1.0
        assert box.put_many([_message("update", 3)])[0] >= MEMORY_BASE  # not due: still kept
        clock.now += 5.0
        rows = box.put_many([_message("end", 4)])
        assert box.failing is None and box.rewinds == 1 and box.status()["memory_queue"] == 0
        assert rows[0] < MEMORY_BASE
        waiting = box.pending()
        assert all(i.id < MEMORY_BASE for i in waiting)
        assert _seqs(waiting)[-3:] == [2, 3, 4]  # the kept ones first, in order; the delivered one is gone
        box.ack_later(kept[1])  # the PUBACK of a message sent from memory before it moved: its row goes
        assert 2 not in _seqs(box.pending())
    with Outbox(path) as reopened:  # durable
        assert _seqs(reopened.pending())[-2:] == [3, 4]


def test_an_end_delivered_from_memory_closes_the_event_stored_as_open(full_disk):
    clock = Clock()
    path = full_disk.folder / "o.sqlite"
    with FallbackOutbox.open(path, retry_s=1.0, clock=clock) as box:
        box.put_many([_message("start", 0, event="fight")])
        full_disk.fill(box)
        _until_failing(box)  # the event "e1" of the filler messages opens on disk too
        end = box.put_many([_message("end", 1, event="fight")])
        box.ack_later(end[0])
        full_disk.free(box)
        clock.now += 2.0
        box.put_many([_message("start", 0, event="next")])
        assert box.failing is None
        assert "fight" not in box.outbox.open_event_ids()


def test_a_disk_full_at_start_runs_in_memory_then_creates_the_outbox(small_disk):
    clock = Clock()
    path = small_disk.folder / "o.sqlite"
    small_disk.fill()
    with FallbackOutbox.open(path, retry_s=1.0, clock=clock) as box:
        assert box.outbox is None and "disk is full" in box.failing
        kept = box.put_many([_message("start", 0), _message("update", 1)])
        assert [i.id for i in box.pending()] == kept
        small_disk.free()
        clock.now += 2.0
        box.maintain()
        assert box.failing is None and box.outbox is not None
        assert _seqs(box.pending()) == [0, 1]


def test_a_file_that_is_not_an_outbox_is_still_refused(tmp_path):
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(OutboxError, match="not an SQLite database"):
        FallbackOutbox.open(path)


def test_the_fault_is_logged_once_then_once_a_minute(full_disk, caplog):
    clock = Clock()
    caplog.set_level(logging.WARNING, logger="edge_runtime.outbox_fallback")
    with FallbackOutbox.open(full_disk.folder / "o.sqlite", retry_s=1e9, clock=clock) as box:
        full_disk.fill(box)
        _until_failing(box)
        for n in range(50):  # 50 loop passes over 50 s
            clock.now += 1.0
            box.put_many([_message("update", n)])
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "cannot store events" in lines[0]
        clock.now += 11.0
        box.put_many([_message("update", 99)])
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 2 and "still cannot store events" in lines[1] and "52 in memory" in lines[1]
        full_disk.free(box)
