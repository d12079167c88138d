"""The SQLite outbox: order, ack, bounded size that never drops start/end, threads, and SIGKILL survival;
group commit (``put_many``) and batched acks (``ack_later`` / ``ack_many`` / ``flush_acks``). Bad storage
(a full or read-only disk, damaged files) is in test_outbox_storage.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge_runtime.outbox import Outbox, OutboxMessage
from tests.disk_helpers import rows_on_disk

ROOT = Path(__file__).resolve().parents[2]


def test_pending_returns_messages_in_put_order(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        ids = [box.put("t/events", f"m{i}".encode(), kind="update") for i in range(5)]
        items = box.pending()
    assert [i.id for i in items] == ids == sorted(ids)
    assert [i.payload for i in items] == [f"m{i}".encode() for i in range(5)]


def test_pending_limit_and_after(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        ids = [box.put("t", b"x", kind="start") for _ in range(6)]
        assert [i.id for i in box.pending(2, after=ids[1])] == ids[2:4]


def test_ack_deletes_once(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        a = box.put("t", b"a", kind="start")
        b = box.put("t", b"b", kind="end", retain=True, qos=0)
        assert box.ack(a) is True
        assert box.ack(a) is False
        assert box.backlog == 1
        (item,) = box.pending()
    assert (item.id, item.kind, item.retain, item.qos) == (b, "end", True, 0)


def test_messages_survive_reopening(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        box.put("t", b"kept", kind="start")
    with Outbox(path) as box:
        assert [i.payload for i in box.pending()] == [b"kept"]
        assert box.integrity_ok()


def test_full_outbox_drops_oldest_updates_first(tmp_path):
    with Outbox(tmp_path / "o.sqlite", max_messages=4) as box:
        start = box.put("t", b"start", kind="start")
        u1 = box.put("t", b"u1", kind="update")
        u2 = box.put("t", b"u2", kind="update")
        end = box.put("t", b"end", kind="end")
        new = box.put("t", b"start2", kind="start")
        assert [i.id for i in box.pending()] == [start, u2, end, new]
        assert box.dropped == 1
        assert u1 not in {i.id for i in box.pending()}


def test_full_outbox_never_drops_start_or_end(tmp_path):
    with Outbox(tmp_path / "o.sqlite", max_messages=2) as box:
        ids = [box.put("t", b"x", kind=k) for k in ("start", "end", "start", "end")]
        assert [i.id for i in box.pending()] == ids
        assert box.dropped == 0


def test_two_threads_put_and_ack_concurrently(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        acked: list[int] = []

        def producer() -> None:
            for i in range(200):
                box.put("t", str(i).encode(), kind="update")

        def consumer() -> None:
            while len(acked) < 200:
                for item in box.pending(10):
                    if box.ack(item.id):
                        acked.append(item.id)

        threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(acked) == 200 and box.backlog == 0
        assert acked == sorted(acked)


_WRITER = """
import sys
from edge_runtime.outbox import Outbox, OutboxError, OutboxMessage
from tests.disk_helpers import rows_on_disk
box = Outbox(sys.argv[1])
i = 0
while True:
    kind = ("start", "update", "end")[i % 3]
    row = box.put("i3dmtn/dev/events", (b"payload-%d-" % i) * 50, kind=kind)
    sys.stdout.write(f"{row}\\n")
    sys.stdout.flush()
    if i % 7 == 0:
        box.ack(row)
    i += 1
"""


def test_sigkill_during_writes_loses_no_returned_put(tmp_path):
    path = tmp_path / "o.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    reported: list[int] = []
    assert proc.stdout is not None
    while len(reported) < 300:
        line = proc.stdout.readline()
        assert line, "the writer exited early"
        reported.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    reported += [int(line) for line in proc.stdout.read().split()]  # lines printed before the kill landed
    with Outbox(path) as box:
        assert box.integrity_ok()
        present = {i.id for i in box.pending()}
    expected = {row for n, row in enumerate(reported) if n % 7 != 0}
    assert expected <= present


def test_put_many_returns_ids_in_the_given_order(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        first = box.put("t", b"before", kind="start")
        ids = box.put_many([OutboxMessage("t", f"m{i}".encode(), "update") for i in range(4)])
        items = box.pending()
    assert ids == sorted(ids) and ids[0] > first
    assert [i.id for i in items] == [first, *ids]
    assert [i.payload for i in items] == [b"before", b"m0", b"m1", b"m2", b"m3"]


def test_put_many_keeps_each_message_s_qos_retain_and_kind(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        box.put_many([OutboxMessage("a", b"1", "start", qos=0, retain=True), OutboxMessage("b", b"2", "end")])
        items = box.pending()
    assert [(i.topic, i.kind, i.qos, i.retain) for i in items] == [
        ("a", "start", 0, True),
        ("b", "end", 1, False),
    ]


def test_put_many_with_one_bad_message_stores_none(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        good = OutboxMessage("t", b"ok", "start")
        with pytest.raises(ValueError, match="qos"):
            box.put_many([good, OutboxMessage("t", b"bad", "update", qos=3)])
        with pytest.raises(TypeError, match="payload"):
            box.put_many([good, OutboxMessage("t", "text", "update")])  # type: ignore[arg-type]
        assert box.backlog == 0


def test_an_event_is_open_from_its_first_message_to_its_end_even_after_acks_and_reopening(tmp_path):
    def msg(kind, event_id, body):
        return OutboxMessage("ev", body, kind, event_id=event_id)

    with Outbox(tmp_path / "o.sqlite") as box:
        ids = box.put_many(
            [msg("start", "a", b"a0"), msg("start", "b", b"b0"), OutboxMessage("st", b"x", "status")]
        )
        box.ack_many(ids)  # delivered: still open
        box.put("ev", b"a1", kind="update")  # no event_id: not tracked
        box.put_many([msg("update", "a", b"a2"), msg("end", "b", b"b1")])
        assert box.open_events() == [("ev", b"a2")]
    with Outbox(tmp_path / "o.sqlite") as box:
        assert box.open_events() == [("ev", b"a2")]
        with pytest.raises(ValueError, match="qos"):  # a failed put changes nothing
            box.put_many([msg("end", "a", b"a3"), OutboxMessage("t", b"bad", "update", qos=3)])
        assert box.open_events() == [("ev", b"a2")]
        box.put_many([msg("end", "a", b"a3")])
        assert box.open_events() == []


def test_put_many_of_nothing_writes_nothing(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        assert box.put_many([]) == []
        assert box.backlog == 0


def test_full_outbox_put_many_drops_older_updates_never_its_own(tmp_path):
    with Outbox(tmp_path / "o.sqlite", max_messages=3) as box:
        old = box.put_many([OutboxMessage("t", b"u", "update") for _ in range(2)])
        new = box.put_many([OutboxMessage("t", b"n", "update") for _ in range(3)])
        assert [i.id for i in box.pending()] == new
        assert box.dropped == 2 and not set(old) & {i.id for i in box.pending()}


def test_ack_later_row_is_neither_pending_nor_in_backlog(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        a, b, c = box.put_many([OutboxMessage("t", m, "update") for m in (b"a", b"b", b"c")])
        box.ack_later(b)
        assert [i.id for i in box.pending()] == [a, c]
        assert box.backlog == 2
        assert box.acked == 1


def test_ack_later_rows_are_deleted_by_the_next_put(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        a, b = box.put_many([OutboxMessage("t", b"a", "start"), OutboxMessage("t", b"b", "end")])
        box.ack_later(a)
        assert rows_on_disk(path) == [a, b]  # recorded in memory only
        c = box.put("t", b"c", kind="start")
        assert rows_on_disk(path) == [b, c]  # deleted in the put's transaction


def test_flush_acks_deletes_the_recorded_rows_once(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        ids = box.put_many([OutboxMessage("t", b"x", "update") for _ in range(5)])
        for row in ids[:3]:
            box.ack_later(row)
        box.ack_later(ids[0])  # a duplicate PUBACK
        assert box.flush_acks() == 3
        assert box.flush_acks() == 0
        assert rows_on_disk(path) == ids[3:]


def test_ack_many_deletes_in_one_call_and_counts_only_present_rows(tmp_path):
    with Outbox(tmp_path / "o.sqlite") as box:
        ids = box.put_many([OutboxMessage("t", b"x", "update") for _ in range(4)])
        assert box.ack_many(ids[:2]) == 2
        assert box.ack_many([ids[0], ids[2]]) == 1
        assert [i.id for i in box.pending()] == ids[3:]


def test_close_deletes_the_recorded_acks(tmp_path):
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        a, b = box.put_many([OutboxMessage("t", b"a", "start"), OutboxMessage("t", b"b", "end")])
        box.ack_later(a)
    assert rows_on_disk(path) == [b]


def test_puts_stay_durable_after_acks(tmp_path):
    """An ack switches the connection to synchronous=NORMAL for its own transaction only."""
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        box.ack(box.put("t", b"x", kind="start"))
        box.put("t", b"y", kind="start")
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


_BATCH_WRITER = """
import sys
from edge_runtime.outbox import Outbox, OutboxError, OutboxMessage
from tests.disk_helpers import rows_on_disk
box = Outbox(sys.argv[1])
n = 0
while True:
    rows = box.put_many([OutboxMessage("i3dmtn/dev/events", (b"b%d-" % n) * 40, "update") for _ in range(5)])
    box.ack_later(rows[0])  # a PUBACK whose delete may be lost: the row may come back, never a put
    sys.stdout.write(" ".join(map(str, rows)) + "\\n")
    sys.stdout.flush()
    n += 1
"""


def test_sigkill_during_batched_writes_and_acks_loses_no_put_and_no_partial_batch(tmp_path):
    path = tmp_path / "o.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _BATCH_WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout is not None
    batches: list[list[int]] = []
    while len(batches) < 100:
        line = proc.stdout.readline()
        assert line, "the writer exited early"
        batches.append([int(x) for x in line.split()])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    batches += [[int(x) for x in line.split()] for line in proc.stdout.read().splitlines()]  # before the kill
    with Outbox(path) as box:
        assert box.integrity_ok()
        present = {i.id for i in box.pending()}
    for batch in batches:
        assert set(batch[1:]) <= present  # every returned put survived (its first row was acked)
    unreported = present - {row for batch in batches for row in batch}
    assert len(unreported) in (0, 5)  # a batch committed but not reported yet is whole, never cut
