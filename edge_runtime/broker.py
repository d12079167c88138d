"""A local MQTT broker for the demo and the tests: Mosquitto when installed, else the embedded amqtt broker.

The broker listens on loopback only and is stopped by :meth:`LocalBroker.stop` (or the context manager),
so nothing is left running.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["LocalBroker", "free_port", "find_mosquitto"]

log = logging.getLogger(__name__)

_AMQTT_SCRIPT = """
import asyncio, sys
from amqtt.broker import Broker
port = int(sys.argv[1])
config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
          "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
async def main():
    broker = Broker(config)
    await broker.start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


class LocalBroker:
    """Start with ``LocalBroker(port).start()``; ``kind`` says which broker runs ("mosquitto" or "amqtt")."""

    def __init__(
        self, port: int | None = None, *, prefer: str = "mosquitto", config_lines: list[str] | None = None
    ):
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.prefer = prefer
        self.config_lines = config_lines or []
        self.kind: str | None = None
        self._proc: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="i3dmtn-broker-")

    def _command(self) -> list[str]:
        mosquitto = find_mosquitto() if self.prefer == "mosquitto" else None
        if mosquitto:
            self.kind = "mosquitto"
            conf = Path(self._tmp.name) / "mosquitto.conf"
            lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false"]
            conf.write_text("\n".join(lines + self.config_lines) + "\n")
            return [mosquitto, "-c", str(conf)]
        if self.config_lines:
            raise RuntimeError("broker options (TLS, auth) need Mosquitto, which is not installed")
        self.kind = "amqtt"
        return [sys.executable, "-c", _AMQTT_SCRIPT, str(self.port)]

    def start(self, timeout: float = 10.0) -> LocalBroker:
        cmd = self._command()
        log_path = Path(self._tmp.name) / "broker.log"
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.kind} broker exited at start: {log_path.read_text()[-500:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    log.info("%s broker listening on %s:%d", self.kind, self.host, self.port)
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} broker did not listen on port {self.port} within {timeout:.0f}s")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalBroker:
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()
