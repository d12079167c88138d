"""OpenVINO backend: OpenVINO IR (``.xml`` + ``.bin``, INT8 from NNCF) or ONNX read directly, on an Intel device.

``ov.Core().compile_model(path, device, config)`` with one reused ``InferRequest``; a dynamic batch dimension
stays dynamic. Options: ``performance_hint`` (``LATENCY`` default, or ``THROUGHPUT``),
``inference_precision`` (``f32`` default, so numbers match the bundle's report and the other backends: the
CPU plugin would otherwise pick bf16 on CPUs that have it; ``f16`` / ``bf16`` trade accuracy for speed; the
INT8 layers of an NNCF model stay INT8 either way),
``num_threads`` (``INFERENCE_NUM_THREADS``), ``num_streams`` (``NUM_STREAMS``: requests the device runs at once, a
positive integer or ``"AUTO"``; unset, the performance hint decides), ``cache_dir`` (OpenVINO's compiled-model cache, ``CACHE_DIR``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .base import Backend, BackendError, check_model_path, check_options, import_toolkit

__all__ = ["OpenVINOBackend"]

log = logging.getLogger(__name__)

_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")


def _config(opts: dict[str, Any]) -> dict[str, str]:
    hint = str(opts.get("performance_hint", "LATENCY")).upper()
    if hint not in _HINTS:
        raise BackendError(f"openvino option performance_hint must be one of {_HINTS}, got {hint!r}")
    config = {"PERFORMANCE_HINT": hint}
    config["INFERENCE_PRECISION_HINT"] = str(opts.get("inference_precision", "f32")).lower()
    if "num_threads" in opts:
        n = opts["num_threads"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise BackendError(f"openvino option num_threads must be an integer >= 0, got {n!r}")
        config["INFERENCE_NUM_THREADS"] = str(n)
    if "num_streams" in opts:
        streams = opts["num_streams"]
        if streams != "AUTO" and (isinstance(streams, bool) or not isinstance(streams, int) or streams < 1):
            raise BackendError(
                f'openvino option num_streams must be an integer >= 1 or "AUTO", got {streams!r}'
            )
        config["NUM_STREAMS"] = str(streams)
    if "cache_dir" in opts:
        cache = Path(opts["cache_dir"]).expanduser()
        cache.mkdir(parents=True, exist_ok=True)
        config["CACHE_DIR"] = str(cache)
    return config


class OpenVINOBackend(Backend):
    """An ``openvino.CompiledModel`` with one reused ``InferRequest``."""

    kind = "openvino"
    formats = ("openvino", "onnx", "onnx-qdq")
    default_device = "CPU"
    options = ("performance_hint", "inference_precision", "num_threads", "num_streams", "cache_dir")

    def __init__(self, compiled: Any, name: str) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._name = name
        self._inputs = [p.get_any_name() for p in compiled.inputs]
        self._outputs = [p.get_any_name() for p in compiled.outputs]

    @classmethod
    def from_model_file(
        cls,
        model_path: str | Path,
        fmt: str = "openvino",
        *,
        device: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> OpenVINOBackend:
        suffix = (".xml",) if fmt == "openvino" else (".onnx",)
        path = check_model_path(model_path, fmt, suffix, cls.kind)
        if fmt == "openvino" and not path.with_suffix(".bin").is_file():
            raise BackendError(
                f"OpenVINO IR {path} has no weights file {path.with_suffix('.bin').name} beside it"
            )
        config = _config(check_options(options, cls.options, cls.kind))
        device = (device or cls.default_device).upper()
        ov = import_toolkit("openvino", backend=cls.kind, extra="openvino")
        core = ov.Core()
        if device not in core.available_devices and not device.startswith(("AUTO", "MULTI", "HETERO")):
            raise BackendError(
                f"openvino device {device!r} is not available here; available: {core.available_devices}"
            )
        try:
            compiled = core.compile_model(str(path), device, config)
        except Exception as exc:  # OpenVINO raises RuntimeError with multi-line messages
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(
                f"openvino cannot compile {path} for {device} with {config}: {first}"
            ) from None
        log.info("openvino compiled %s for %s with %s", path.name, device, config)
        return cls(compiled, path.name)

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            results = self._request.infer(inputs)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shapes = {k: tuple(v.shape) for k, v in inputs.items()}
            raise BackendError(f"openvino failed to run {self._name} on inputs {shapes}: {first}") from None
        # The request is reused: copy its output buffers so the caller may keep them.
        by_port = {port.get_any_name(): np.array(value, copy=True) for port, value in results.items()}
        return {name: by_port[name] for name in self._outputs}

    def close(self) -> None:
        self._request = None
        self._compiled = None
