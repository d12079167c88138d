"""``edge-runtime`` and its outbox at start: every problem of the file is one line naming it, exit status 1,
found before the models load."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.disk_helpers import outbox_with_rows
from tests.edge_runtime.runtime_helpers import DARK, ROOT, make_bundle, make_video


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("cli_outbox_bundle"))


@pytest.fixture(scope="module")
def calm(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("cli_outbox_video") / "calm.mp4", [(1, DARK)])


def _start(bundle, calm, outbox, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "edge_runtime.cli", "--bundle", str(bundle), "--device-id", "dev1",
            "--source", str(calm), "--outbox", str(outbox), "--broker", "127.0.0.1:9", "--flush-timeout", "0",
            *extra]  # fmt: skip
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _refused(result: subprocess.CompletedProcess, outbox, cause: str) -> None:
    """Exit 1, the last stderr line is the one error line naming the outbox and the cause, no traceback, and
    the models were never loaded."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert lines[-1].startswith(f"edge-runtime: error: outbox '{outbox}'"), result.stderr
    assert cause in lines[-1], lines[-1]
    assert "models:" not in result.stderr and "running:" not in result.stderr


def test_a_garbage_outbox_is_one_line(bundle, calm, tmp_path):
    outbox = tmp_path / "o.sqlite"
    outbox.write_bytes(os.urandom(8192))
    _refused(_start(bundle, calm, outbox), outbox, "not an SQLite database")


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_a_truncated_outbox_is_one_line(bundle, calm, tmp_path, keep):
    outbox = tmp_path / "o.sqlite"
    size = outbox_with_rows(outbox)
    with open(outbox, "r+b") as fh:
        fh.truncate(int(size * keep))
    _refused(_start(bundle, calm, outbox), outbox, "damaged")


def test_an_outbox_that_is_a_folder_is_one_line(bundle, calm, tmp_path):
    outbox = tmp_path / "o.sqlite"
    outbox.mkdir()
    _refused(_start(bundle, calm, outbox), outbox, "is a folder")


def test_another_programs_database_as_outbox_is_one_line(bundle, calm, tmp_path):
    outbox = tmp_path / "o.sqlite"
    db = sqlite3.connect(outbox)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    db.commit()
    db.close()
    _refused(_start(bundle, calm, outbox), outbox, "not an edge-runtime outbox")


def test_an_outbox_on_a_read_only_file_system_is_refused_at_start(bundle, calm, small_disk):
    outbox = small_disk.folder / "o.sqlite"
    outbox_with_rows(outbox, rows=3)  # a previous run's events wait in it
    small_disk.read_only()
    try:
        _refused(
            _start(bundle, calm, outbox), outbox, "not writable: its folder is on a read-only file system"
        )
    finally:
        small_disk.writable()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files anyway")
def test_a_read_only_outbox_file_is_refused_at_start(bundle, calm, tmp_path):
    outbox = tmp_path / "o.sqlite"
    outbox_with_rows(outbox, rows=3)
    outbox.chmod(0o444)
    try:
        _refused(_start(bundle, calm, outbox), outbox, "not writable: the file gives no write permission")
    finally:
        outbox.chmod(0o644)


def test_a_second_runtime_on_the_same_outbox_is_refused_naming_the_first(bundle, tmp_path, broker):
    from tests.edge_runtime.runtime_helpers import BRIGHT, Subscriber, finish, runtime_argv, start_runtime

    outbox = tmp_path / "o.sqlite"
    endless = make_video(tmp_path / "endless.mp4", [(0.5, DARK), (20, BRIGHT)])
    sub = Subscriber(broker.port)
    first = start_runtime(runtime_argv(bundle, broker.port, outbox, [f"hall={endless}"], "--realtime"))
    try:
        assert sub.wait_for(lambda s: any(e["type"] == "start" for e in s.events()), timeout=60)
        second = _start(bundle, endless, outbox, "--broker", f"127.0.0.1:{broker.port}")
        _refused(second, outbox, f"in use by another edge-runtime (pid {first.pid})")
        assert first.poll() is None  # the first one runs on, untouched
        event_ids = {e["event_id"] for e in sub.events()}
    finally:
        code, err = finish(first, sig=signal.SIGTERM)
    sub.close()
    assert code == 0, err[-2000:]
    ends = [e for e in sub.events() if e["type"] == "end"]
    assert len(ends) == 1 and {e["event_id"] for e in sub.events()} == event_ids  # no second device's end


def test_the_lock_goes_with_the_process_even_after_sigkill(bundle, calm, tmp_path):
    from tests.edge_runtime.runtime_helpers import runtime_argv, start_runtime

    outbox = tmp_path / "o.sqlite"
    endless = make_video(tmp_path / "endless.mp4", [(20, DARK)])
    first = start_runtime(runtime_argv(bundle, 9, outbox, [f"hall={endless}"], "--realtime"))
    assert first.stderr is not None
    while "running:" not in (line := first.stderr.readline()):
        assert line, "the first runtime ended early"
    first.kill()
    first.communicate()
    result = _start(bundle, calm, outbox)
    assert result.returncode == 0, result.stderr[-2000:]
