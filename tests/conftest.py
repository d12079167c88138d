"""Shared fixtures: a real MQTT broker on a free loopback port."""

from __future__ import annotations

import logging
import signal

import pytest

from edge_runtime.broker import LocalBroker

# A suite started in the background (``nohup make test &``) ignores SIGINT, and every child it starts would
# inherit that; the tests that press Ctrl-C on a real subprocess (``i3dmtn alerts``) need it delivered. A
# handler, unlike an ignored signal, is not inherited: the children start with Python's own Ctrl-C handling.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _no_logging_handler_outlives_its_test():
    """A command run in-process (``main([...])``) points the root logger at the stderr of its test, which pytest
    closes afterwards; a later test's log line would then print "--- Logging error ---" into that test's
    stderr. Handlers a test added are removed after it (pytest's own capture handlers are pytest's)."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and type(handler).__module__ != "_pytest.logging":
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def broker():
    """A real broker (Mosquitto if installed, else amqtt) on 127.0.0.1; ``broker.port``, ``broker.restart()``."""
    with LocalBroker() as b:
        yield b


def _mounted_disk(tmp_path):
    from tests.disk_helpers import SmallDisk

    disk = SmallDisk(tmp_path / "disk")
    why = disk.mount()
    if why is not None:
        pytest.skip(why)
    return disk


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB tmpfs (``small_disk.folder``) the test fills, frees or makes read-only; skipped where
    mounting is not allowed (mounting needs root)."""
    disk = _mounted_disk(tmp_path)
    try:
        yield disk
    finally:
        disk.unmount()


@pytest.fixture(params=["tmpfs", "page_limit"])
def full_disk(request, tmp_path):
    """A disk the test fills and frees: the real tmpfs where it can be mounted, and SQLite's page limit
    (``PRAGMA max_page_count``) everywhere; ``full_disk.fill(outbox)`` / ``full_disk.free(outbox)``."""
    from tests.disk_helpers import PageLimitDisk

    disk = PageLimitDisk(tmp_path / "disk") if request.param == "page_limit" else _mounted_disk(tmp_path)
    try:
        yield disk
    finally:
        disk.unmount()
