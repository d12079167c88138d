"""What ``i3dmtn alerts`` does with each event: print it, run a command, save the snapshot, count it.

Each is an :class:`~alert_consumer.consumer.AlertSink`. None of them blocks the MQTT loop for long:
the ``--exec`` command runs on a worker thread with a timeout, and a full queue drops (and logs) instead
of stalling the consumer.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, TextIO

from alert_consumer.consumer import AlertSink
from alert_consumer.formatting import format_event_json, format_event_line
from edge_runtime.schema import SchemaError, validate_id

__all__ = ["TerminalPrinter", "ExecRunner", "SnapshotSaver", "EventCounter", "snapshot_path"]

log = logging.getLogger(__name__)


class TerminalPrinter(AlertSink):
    """One readable line per event (or the event JSON with ``as_json``), flushed at once for pipes."""

    def __init__(self, stream: TextIO | None = None, *, as_json: bool = False):
        self.stream = stream
        self.as_json = as_json
        self.closed = threading.Event()  # set when the reader went away (``| head``): time to stop
        self._lock = threading.Lock()

    def on_event(self, event: dict[str, Any]) -> None:
        line = format_event_json(event) if self.as_json else format_event_line(event)
        stream = self.stream or sys.stdout
        with self._lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except BrokenPipeError:
                self.closed.set()


class EventCounter(AlertSink):
    """Counts new events; ``done`` is set once ``limit`` of them have been seen (``--count``)."""

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.count = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.count += 1
            if self.limit is not None and self.count >= self.limit:
                self.done.set()


class ExecRunner(AlertSink):
    """Runs ``argv`` (no shell) for each ``start`` event with the event JSON on stdin, on a worker thread.

    A command that fails, is missing, or runs past ``timeout`` seconds is logged and killed; events that
    arrive while ``max_pending`` are already waiting are dropped with a warning.
    """

    def __init__(self, argv: list[str], *, timeout: float = 30.0, max_pending: int = 100):
        if not argv:
            raise ValueError("--exec needs a command")
        self.argv = list(argv)
        self.timeout = timeout
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._work, name="alerts-exec", daemon=True)
        self._thread.start()

    def on_event(self, event: dict[str, Any]) -> None:
        if event["type"] != "start":
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning(
                "--exec is behind (%d waiting): dropped event %s", self._queue.qsize(), event["event_id"]
            )

    def _work(self) -> None:
        while (event := self._queue.get()) is not None:
            self._run_one(event)

    def _run_one(self, event: dict[str, Any]) -> None:
        name = self.argv[0]
        try:
            result = subprocess.run(
                self.argv,
                input=(format_event_json(event) + "\n").encode(),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            log.warning(
                "--exec %s ran past %.0fs for event %s and was killed", name, self.timeout, event["event_id"]
            )
            return
        except OSError as exc:
            log.warning("--exec %s could not run: %s", name, exc)
            return
        if result.returncode != 0:
            tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            log.warning(
                "--exec %s exited %d for event %s: %s", name, result.returncode, event["event_id"], tail[0]
            )

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued commands (up to ``timeout`` seconds in total), then stop the worker."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("--exec still had %d command(s) queued at exit", self._queue.qsize())
            return
        self._thread.join(timeout)


def snapshot_path(directory: Path, event: dict[str, Any]) -> Path:
    """``DIR/<device>_<camera>_<event_id>.jpg``; every part is checked so the file stays inside ``DIR``."""
    parts = [
        validate_id(event["device_id"], "device_id"),
        validate_id(event["camera"], "camera"),
        validate_id(event["event_id"], "event_id"),
    ]
    path = directory / ("_".join(parts) + ".jpg")
    if path.resolve().parent != directory.resolve():
        raise SchemaError(f"snapshot path {path} would leave {directory}")
    return path


class SnapshotSaver(AlertSink):
    """Writes the snapshot near each event's start to ``directory`` (atomically: temp file + rename)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_event_snapshot(self, event: dict[str, Any], jpeg: bytes) -> None:
        try:
            path = snapshot_path(self.directory, event)
        except SchemaError as exc:
            log.warning("snapshot not saved: %s", exc)
            return
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".snapshot-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(jpeg)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("snapshot not saved to %s: %s", path, exc)
            Path(tmp).unlink(missing_ok=True)
            return
        log.info("saved snapshot %s", path)
