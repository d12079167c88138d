"""Helpers for the runtime tests: a tiny bundle whose "fight" is brightness, videos, a subscriber, the CLI.

The tiny model is meaningful, so events are deterministic: the backbone's one feature is the snippet's mean
pixel value after preprocessing (in [-1, 1]) and the head's snippet score is ``sigmoid(GAIN * feature)``.
A bright interval (pixel 230 -> 0.8) scores ~1 and a dark one (pixel 20 -> -0.84) ~0, so a video with a bright
interval triggers exactly one event and a dark video none.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_runtime.preprocess import PreprocessConfig
from edge_runtime.video import write_video
from export.bundle import BundleFileSpec, write_bundle

ROOT = Path(__file__).resolve().parents[2]
S, K, CROP, FPS = 4, 4, 8, 25.0
GAIN = 10.0
DARK, BRIGHT = 20, 230
FRAME = (24, 32)  # h, w of the test videos


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_brightness_backbone(path: Path, channels: int = 3, crop: int = CROP) -> Path:
    """``snippets (N,C,S,H,W) -> features (N,1)``: the mean value of the snippet (C 3 for RGB, 2 for flow)."""
    shape = numpy_helper.from_array(np.array([-1, 1], np.int64), "shape")
    nodes = [
        helper.make_node("ReduceMean", ["snippets"], ["mean"], axes=[1, 2, 3, 4], keepdims=0),  # (N,)
        helper.make_node("Reshape", ["mean", "shape"], ["features"]),  # (N, 1)
    ]
    graph = helper.make_graph(
        nodes, "brightness_backbone",
        [helper.make_tensor_value_info("snippets", TensorProto.FLOAT, ["N", channels, S, crop, crop])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 1])], [shape],
    )  # fmt: skip
    return _save(graph, path)


def write_brightness_head(path: Path, gain: float = GAIN) -> Path:
    """``features (N,K,1) -> snippet_scores = sigmoid(gain * f) (N,K)``, softmax attention, weighted video score."""
    inits = [
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.array([2], np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Squeeze", ["features", "axis2"], ["f"]),  # (N, K)
        helper.make_node("Mul", ["f", "gain"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["snippet_scores"]),
        helper.make_node("Softmax", ["logits"], ["attention"], axis=1),
        helper.make_node("Mul", ["attention", "snippet_scores"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["video_score"], keepdims=0),  # (N,)
    ]
    graph = helper.make_graph(
        nodes, "brightness_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", "K", 1])],
        [helper.make_tensor_value_info("snippet_scores", TensorProto.FLOAT, ["N", "K"]),
         helper.make_tensor_value_info("attention", TensorProto.FLOAT, ["N", "K"]),
         helper.make_tensor_value_info("video_score", TensorProto.FLOAT, ["N"])], inits,
    )  # fmt: skip
    return _save(graph, path)


def make_bundle(
    folder: Path,
    *,
    broken_int8: bool = False,
    threshold: float = 0.5,
    event_policy: dict[str, Any] | None = None,
    preprocess: PreprocessConfig | None = None,
) -> Path:
    """A target-``onnx`` bundle of the brightness model at ``folder/bundle``; with ``broken_int8`` it also
    lists int8 files that no backend can load (and is an int8 bundle), to exercise the fp32 fallback;
    ``event_policy`` is the manifest's object of that name (absent by default, as in older bundles);
    ``preprocess`` (a square crop; default ``CROP`` px RGB at every frame) may ask for flow or a frame rate."""
    cfg = preprocess or PreprocessConfig.square(CROP)
    crop = cfg.crop_size[0]
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    backbone = write_brightness_backbone(models / "backbone_fp32.onnx", cfg.channels, crop)
    head = write_brightness_head(models / "head_fp32.onnx")
    io = {
        "backbone": ([{"name": "snippets", "shape": ["N", cfg.channels, S, crop, crop]}],
                     [{"name": "features", "shape": ["N", 1]}]),
        "head": ([{"name": "features", "shape": ["N", "K", 1]}],
                 [{"name": n, "shape": s} for n, s in (("snippet_scores", ["N", "K"]), ("attention", ["N", "K"]),
                                                      ("video_score", ["N"]))]),
    }  # fmt: skip
    files = [
        BundleFileSpec(p, role, "fp32", "onnx", *io[role])
        for role, p in (("backbone", backbone), ("head", head))
    ]
    if broken_int8:
        for role in ("backbone", "head"):
            bad = models / f"{role}_int8.onnx"
            bad.write_bytes(b"not an onnx model")
            files.append(BundleFileSpec(bad, role, "int8", "onnx", *io[role]))
    manifest = {
        "model": {"name": "brightness-test", "version": "0.0.1"},
        "target": "onnx",
        "precision": "int8" if broken_int8 else "fp32",
        "preprocess": cfg.to_dict(),
        "window": {"snippet_length": S, "num_snippets": K, "frame_stride": 1, "fps": FPS},
        "threshold": threshold,
        "accuracy": {"gate": "not_checked"},
        **({"event_policy": event_policy} if event_policy is not None else {}),
    }
    return write_bundle(folder / "bundle", manifest=manifest, files=files)


def make_video(path: Path, pattern: Sequence[tuple[float, int]], fps: float = FPS,
               frame: tuple[int, int] = FRAME) -> Path:  # fmt: skip
    """An mp4v video of flat ``frame`` (h, w) frames: ``pattern`` is ``[(seconds, pixel value)]`` in order
    (noise +-3)."""
    rng = np.random.default_rng(0)
    frames = []
    for seconds, value in pattern:
        for _ in range(round(seconds * fps)):
            noise = rng.integers(-3, 4, (*frame, 3))
            frames.append(np.clip(value + noise, 0, 255).astype(np.uint8))
    write_video(path, frames, fps)
    return path


class Subscriber:
    """A paho subscriber on ``{prefix}/#`` collecting ``(topic, payload bytes, arrival time)``.

    ``client_id`` + ``clean_session=False`` give a persistent session (QoS 1 messages queued while away).
    """

    def __init__(self, port: int, prefix: str = "i3dmtn", *, client_id: str = "", clean: bool = True,
                 username: str | None = None, password: str | None = None) -> None:  # fmt: skip
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, float]] = []
        self.prefix = prefix
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean, protocol=mqtt.MQTTv311)  # fmt: skip
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, 30)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.client.loop_stop()
            raise RuntimeError(f"test subscriber could not connect to 127.0.0.1:{port}")
        time.sleep(0.2)  # the SUBACK

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not reason_code.is_failure:
            client.subscribe(f"{self.prefix}/#", qos=1)
            self._connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), time.time()))

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/events")]

    def payloads(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def wait_for(self, predicate: Callable[[Subscriber], bool], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def runtime_argv(bundle: Path, port: int, outbox: Path, sources: Sequence[str], *extra: str,
                 device_id: str = "dev1") -> list[str]:  # fmt: skip
    """``python -m edge_runtime.cli`` arguments for the tests' usual run."""
    argv = [sys.executable, "-m", "edge_runtime.cli", "--bundle", str(bundle), "--broker", f"127.0.0.1:{port}",
            "--device-id", device_id, "--outbox", str(outbox), "--log-format", "json", "--min-duration", "0.2",
            "--update-interval", "0.5", "--cooldown", "0", "--stats-interval", "0.5", "--flush-timeout", "10"]  # fmt: skip
    for s in sources:
        argv += ["--source", s]
    return argv + list(extra)


def start_runtime(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 120.0, sig: int | None = None) -> tuple[int, str]:
    """Optionally send ``sig``, wait for the exit; ``(exit status, stderr)``."""
    if sig is not None:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(
            f"edge-runtime did not exit within {timeout:.0f} s; log:\n{err[-3000:]}"
        ) from None
    return proc.returncode, err


def json_logs(stderr: str) -> list[dict[str, Any]]:
    """The JSON log lines of a ``--log-format json`` run (other lines are ignored)."""
    out = []
    for line in stderr.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "message" in doc:
            out.append(doc)
    return out


def read_audit(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def dedup(events: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Events by ``(event_id, seq)``: what a consumer keeps."""
    return {(e["event_id"], e["seq"]): e for e in events}
