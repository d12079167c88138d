"""The SQLite outbox on bad storage: a full disk (while running and at open), a read-only file system, file
or folder, and files that are not its outbox (garbage, truncated, a folder, another program's database):
each refused with one line naming the file, or survived without losing a stored row."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from edge_runtime.outbox import Outbox, OutboxError
from tests.disk_helpers import outbox_with_rows, put_until_full, rows_on_disk


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="o.sqlite"):
        Outbox(path)


def test_a_full_disk_raises_sqlites_own_error_and_keeps_the_stored_rows(full_disk):
    with Outbox(full_disk.folder / "o.sqlite") as box:
        stored = [box.put("i3dmtn/dev/events", b"before", kind="start") for _ in range(3)]
        full_disk.fill(box)
        err = put_until_full(box)
        assert "database or disk is full" in str(err)  # not "cannot rollback - no transaction is active"
        assert [i.id for i in box.pending()][:3] == stored
        full_disk.free(box)
        box.put("i3dmtn/dev/events", b"after", kind="start")  # the same connection writes again
        assert box.integrity_ok()


def test_acks_that_cannot_be_deleted_on_a_full_disk_are_neither_pending_nor_counted(full_disk):
    with Outbox(full_disk.folder / "o.sqlite") as box:
        rows = [box.put("i3dmtn/dev/events", b"y" * 400, kind="start") for _ in range(20)]
        full_disk.fill(box)
        put_until_full(box)
        for row in rows[:5]:
            box.ack_later(row)
        waiting = box.backlog  # the deletes may fail: reads still leave the acknowledged rows out
        assert rows[0] not in [i.id for i in box.pending()]
        assert waiting == len(box.pending())
        full_disk.free(box)
        assert box.flush_acks() in (0, 5) and rows[0] not in rows_on_disk(box.path)


def _one_line_error(path: Path) -> OutboxError:
    with pytest.raises(OutboxError) as info:
        Outbox(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return info.value


def test_a_garbage_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "o.sqlite"
    path.write_bytes(os.urandom(8192))
    assert "not an SQLite database" in str(_one_line_error(path))


@pytest.mark.parametrize("keep", [0.5, 0.75, 0.98])
def test_a_truncated_outbox_is_one_line_naming_it(tmp_path, keep):
    path = tmp_path / "o.sqlite"
    size = outbox_with_rows(path)
    with open(path, "r+b") as fh:
        fh.truncate(int(size * keep))
    assert "damaged" in str(_one_line_error(path))


def test_a_folder_is_one_line_naming_it(tmp_path):
    (tmp_path / "o.sqlite").mkdir()
    assert "is a folder" in str(_one_line_error(tmp_path / "o.sqlite"))


def test_another_programs_database_is_refused_not_written_into(tmp_path):
    path = tmp_path / "photos.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    assert "not an edge-runtime outbox (tables: photos)" in str(_one_line_error(path))
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["photos"]
    db.close()


def test_a_read_only_file_system_is_refused_at_open(small_disk):
    path = small_disk.folder / "o.sqlite"
    outbox_with_rows(path, rows=3)
    small_disk.read_only()
    try:
        for target in (path, small_disk.folder / "new.sqlite"):
            assert "not writable: its folder is on a read-only file system" in str(_one_line_error(target))
    finally:
        small_disk.writable()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files and folders anyway")
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_file_or_folder_is_refused_at_open(tmp_path, what):
    folder = tmp_path / "state"
    path = folder / "o.sqlite"
    outbox_with_rows(path, rows=3)
    target = path if what == "file" else folder
    target.chmod(0o444 if what == "file" else 0o555)
    try:
        assert (
            f"not writable: {'the file' if what == 'file' else 'its folder'} gives no write permission"
            in str(_one_line_error(path))
        )
    finally:
        target.chmod(0o644 if what == "file" else 0o755)


def test_a_full_disk_at_open_says_so(small_disk):
    small_disk.fill()
    error = _one_line_error(small_disk.folder / "new.sqlite")
    assert error.full and "disk is full" in str(error)
