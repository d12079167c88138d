"""The SQLite outbox: order, ack, bounded size that never drops start/end, threads, and SIGKILL survival."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge_runtime.outbox import Outbox

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


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="o.sqlite"):
        Outbox(path)


_WRITER = """
import sys
from edge_runtime.outbox import Outbox
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
