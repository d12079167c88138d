"""Start the real RTSP server of :mod:`tests.rtsp_server` (GStreamer's) from tests and benchmarks.

The server runs in its own process under a Python that has GStreamer's bindings (``gi``): the system
``python3`` on Debian, or ``$I3DMTN_GST_PYTHON``. :func:`gst_python_or_reason` says which, or why there is none
(a clone without the system packages: the tests that need the server skip with that reason).

>>> with RtspServer({"/cam": "clip.mp4"}) as server:  # doctest: +SKIP
...     url = server.url("/cam")
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("rtsp_server.py")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "surveillance-fight"
_PROBE = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
_INSTALL = "run scripts/install-system-deps.sh as root (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-*)"


@functools.cache
def gst_python_or_reason() -> tuple[str | None, str]:
    """``(interpreter, "")`` of a Python with GStreamer's RTSP server bindings, else ``(None, why)``."""
    candidates = [
        os.environ.get("I3DMTN_GST_PYTHON"),
        "/usr/bin/python3",
        shutil.which("python3"),
        sys.executable,
    ]
    for python in dict.fromkeys(c for c in candidates if c):
        try:
            probe = subprocess.run([python, "-c", _PROBE], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return python, ""
    return None, f"no Python with GStreamer's RTSP server bindings (gi, GstRtspServer): {_INSTALL}"


def encode_h264(out: Path, *, size: str = "320x240", fps: int = 30, seconds: float = 3.0) -> Path:
    """Write a generated H.264 mp4 (a moving ball) with GStreamer's x264enc; reused when it exists."""
    if not out.exists():
        python, why = gst_python_or_reason()
        if python is None:
            raise RuntimeError(why)
        tmp = out.with_suffix(".part.mp4")
        cmd = [
            python,
            str(SCRIPT),
            "encode",
            str(tmp),
            "--size",
            size,
            "--fps",
            str(fps),
            "--seconds",
            str(seconds),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"encoding {out} failed: {result.stderr.strip()[-300:]}")
        tmp.rename(out)
    return out


def encode_h264_frames(out: Path, frames: Iterable[Any], *, size: str, fps: int = 30) -> Path:
    """Write BGR uint8 ``frames`` (numpy arrays of ``size`` WxH) as an H.264 mp4 with GStreamer's x264enc."""
    python, why = gst_python_or_reason()
    if python is None:
        raise RuntimeError(why)
    tmp = out.with_suffix(".part.mp4")
    cmd = [python, str(SCRIPT), "encode", str(tmp), "--raw", "--size", size, "--fps", str(fps)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    try:
        for frame in frames:
            proc.stdin.write(frame.tobytes())
    finally:
        proc.stdin.close()
    proc.wait(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"encoding {out} failed (GStreamer exit status {proc.returncode})")
    tmp.rename(out)
    return out


def play_pipeline(pipeline: str, frames: int = 30, timeout: float = 60.0) -> str:
    """Play a GStreamer ``pipeline`` ending in appsink under the Python with GStreamer's bindings until
    ``frames`` frames came; its report ``frames N WIDTHxHEIGHT FORMAT``, or RuntimeError with its error."""
    python, why = gst_python_or_reason()
    if python is None:
        raise RuntimeError(why)
    cmd = [python, str(SCRIPT), "play", pipeline, "--frames", str(frames)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"the pipeline did not play: {result.stderr.strip()[-300:]}")
    return result.stdout.strip()


class RtspServer:
    """The server process serving ``mounts`` (``{"/path": mp4 file}``) and ``live`` views of one live scene
    (``{"/path": "640x360"}``) on 127.0.0.1; :meth:`stop` / :meth:`start` again reuse the same port.
    ``user`` / ``password`` require basic authentication."""

    def __init__(self, mounts: dict[str, str | Path], *, port: int = 0, user: str | None = None,
                 password: str | None = None, live: dict[str, str] | None = None) -> None:  # fmt: skip
        python, why = gst_python_or_reason()
        if python is None:
            raise RuntimeError(why)
        self.python, self.mounts, self.port = python, dict(mounts), port
        self.user, self.password = user, password
        self.live = dict(live or {})  # {"/path": "WIDTHxHEIGHT"}: views of one live scene
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> RtspServer:
        cmd = [self.python, str(SCRIPT), "serve", "--port", str(self.port)]
        cmd += [a for path, file in self.mounts.items() for a in ("--mount", f"{path}={file}")]
        cmd += [a for path, size in self.live.items() for a in ("--live", f"{path}={size}")]
        env = dict(os.environ)
        if self.user:
            cmd += ["--user", self.user, "--password-env", "RTSP_TEST_PASSWORD"]
            env["RTSP_TEST_PASSWORD"] = self.password or ""
        deadline = time.monotonic() + timeout
        while True:  # the port of a server just stopped can take a moment to be free again
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            line = self._proc.stdout.readline() if self._proc.stdout else ""
            if line.startswith("port "):
                self.port = int(line.split()[1])
                return self
            err = self._proc.communicate(timeout=10)[1].strip()
            if "cannot listen" not in err or time.monotonic() > deadline:
                raise RuntimeError(f"the RTSP server did not start: {err[-300:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.communicate()
            self._proc = None

    def url(self, path: str, *, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{path}"

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
