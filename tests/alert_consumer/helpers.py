"""Helpers for the alerts tests: event messages, a tiny JPEG, a plain publisher, and ``i3dmtn alerts`` as a real
subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt

from edge_runtime.schema import EVENT_SCHEMA

WAIT_S = 30.0  # upper bound on waits: a failure guard, never a timing assertion


def make_event(
    type_: str = "start",
    *,
    device_id: str = "cam-door",
    camera: str = "front",
    event_id: str | None = None,
    seq: int = 0,
    score: float = 0.91,
    peak_score: float | None = None,
) -> dict[str, Any]:
    now = time.time()
    return {
        "schema": EVENT_SCHEMA,
        "event_id": event_id or uuid.uuid4().hex[:12],
        "seq": seq,
        "type": type_,
        "device_id": device_id,
        "camera": camera,
        "timestamp": now + seq,
        "started_at": now,
        "ended_at": now + seq if type_ == "end" else None,
        "score": score,
        "peak_score": max(score, 0.95 if type_ != "start" else score) if peak_score is None else peak_score,
        "threshold": 0.5,
        "model": {"name": "i3d-mtn", "version": "test"},
    }


def tiny_jpeg(shade: int = 90) -> bytes:
    image = np.full((24, 32, 3), shade, np.uint8)
    cv2.rectangle(image, (4, 4), (20, 16), (0, 0, 255), -1)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


class AlertsProcess:
    """``python -m training.cli alerts ...`` with its stdout and stderr read line by line in the background."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.argv = [sys.executable, "-m", "training.cli", "alerts", *args]
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_until(self, predicate: Any, what: str, timeout: float = WAIT_S) -> None:
        with self._changed:
            ok = self._changed.wait_for(lambda: predicate() or self.proc.poll() is not None, timeout)
        if not predicate():
            raise AssertionError(
                f"alerts never {what} (exit {self.proc.poll()}, ok={ok}); stderr:\n"
                + "\n".join(self.stderr[-20:])
            )

    def wait_subscribed(self) -> AlertsProcess:
        self.wait_until(lambda: any("subscribed to" in line for line in self.stderr), "subscribed")
        return self

    def wait_stdout_lines(self, n: int) -> list[str]:
        self.wait_until(lambda: len(self.stdout) >= n, f"printed {n} line(s)")
        return list(self.stdout)

    def wait_exit(self, timeout: float = WAIT_S) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def interrupt(self) -> int:
        """Ctrl-C, then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait_exit()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def write_clip(
    folder: Any, event_id: str, *, seconds: float = 2.0, fps: float = 25.0, start: float = 1000.0
) -> dict[str, Any]:
    """A real H.264 clip ``folder/<event_id>.mp4`` written by the device's own writer (moving squares, 64x48);
    returns its ``i3dmtn.clip/1`` description."""
    from edge_runtime.clip_frames import ClipFramer
    from edge_runtime.clip_store import ClipStore
    from edge_runtime.clip_writer import ClipWriter

    framer, done = ClipFramer(max_height=0, fps=0), threading.Event()
    frames = []
    for i in range(round(seconds * fps)):
        image = np.full((48, 64, 3), 40, np.uint8)
        cv2.rectangle(image, (i % 48, 10), (i % 48 + 12, 30), (0, 0, 255), -1)
        frames.append(framer.frame(start + i / fps, image))
    result: dict[str, Any] = {}
    store = ClipStore(folder, budget_bytes=10**8, max_age_s=10**6)
    writer = ClipWriter(
        store, event_id, "h264", fps, frames, lambda _, info: (result.update(info), done.set())
    )
    writer.finish()
    assert done.wait(WAIT_S) and result.get("exists"), result
    return result


class Publisher:
    """A plain paho client on the test broker; every publish waits for the broker's PUBACK."""

    def __init__(self, port: int):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: Any, *, qos: int = 1, retain: bool = False) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def event(self, event: dict[str, Any], prefix: str = "i3dmtn") -> None:
        self.publish(f"{prefix}/{event['device_id']}/events", event)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
