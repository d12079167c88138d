"""OpenVINO backend: OpenVINO IR (``.xml`` + ``.bin``, INT8 from NNCF) or ONNX read directly, on an Intel device.

``ov.Core().compile_model(path, device, config)`` with one reused ``InferRequest``; a dynamic batch dimension
stays dynamic. Options: ``performance_hint`` (``LATENCY`` default, or ``THROUGHPUT``),
``inference_precision`` (``f32`` default, so numbers match the bundle's report and the other backends: the
CPU plugin would otherwise pick bf16 on CPUs that have it; ``f16`` / ``bf16`` trade accuracy for speed; the
INT8 layers of an NNCF model stay INT8 either way),
``num_threads`` (``INFERENCE_NUM_THREADS``), ``num_streams`` (``NUM_STREAMS``: requests the device runs at once, a
positive integer or ``"AUTO"``; unset, the performance hint decides), ``cache_dir`` (OpenVINO's compiled-model cache, ``CACHE_DIR``),
``max_batch`` (most snippets per backbone call: the runtime splits a larger batch into calls of this size).

``max_batch`` defaults to 1 on the CPU: there a batch costs the same CPU time per snippet as single calls (full-width
I3D INT8: 439, 426 and 439 ms per snippet at batches 1, 2 and 4 on an AVX2 CPU), while the plugin keeps the
memory of the largest batch it has run (about 60 MB more per snippet), so cameras whose snippets happen to be
ready together would each cost that much resident memory for good. Other devices (a GPU) batch without a limit
unless it is set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .base import Backend, BackendError, check_options, import_toolkit

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


def _max_batch(opts: dict[str, Any], device: str) -> int | None:
    """The ``max_batch`` option, checked; unset: 1 on the CPU, no limit elsewhere (see the module docstring)."""
    if "max_batch" not in opts:
        return 1 if device == "CPU" else None
    n = opts["max_batch"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BackendError(f"openvino option max_batch must be an integer >= 1, got {n!r}")
    return n


class OpenVINOBackend(Backend):
    """An ``openvino.CompiledModel`` with one reused ``InferRequest``."""

    kind = "openvino"
    formats = ("openvino", "onnx", "onnx-qdq")
    default_device = "CPU"
    options = (
        "performance_hint",
        "inference_precision",
        "num_threads",
        "num_streams",
        "cache_dir",
        "max_batch",
    )

    def __init__(self, compiled: Any, name: str, max_batch: int | None = None) -> None:
        self._compiled = compiled
        self.max_batch = max_batch  # most snippets per backbone call (None: no limit)
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
        path = cls.check_model_file(model_path, fmt)
        opts = check_options(options, cls.options, cls.kind)
        config = _config(opts)
        device = (device or cls.default_device).upper()
        max_batch = _max_batch(opts, device)
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
        log.info(
            "openvino compiled %s for %s with %s, max batch %s", path.name, device, config, max_batch or "-"
        )
        return cls(compiled, path.name, max_batch)

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
