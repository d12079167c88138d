"""ONNX Runtime backend: FP32 or INT8 Q/DQ ONNX on CPU, or on CUDA / TensorRT execution providers when present.

Device ``"AUTO"`` (the default) uses the TensorRT and CUDA execution providers when this onnxruntime build has
them, else the CPU; ``"CPU"`` forces the CPU; ``"GPU"`` / ``"CUDA"`` requires CUDA. Options:
``intra_op_num_threads`` and ``inter_op_num_threads`` (0 = ONNX Runtime decides), ``providers`` (an explicit
provider list, overriding the device).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .base import Backend, BackendError, check_options, import_toolkit

__all__ = ["OnnxRuntimeBackend"]

log = logging.getLogger(__name__)

_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_DEVICES = ("AUTO", "CPU", "GPU", "CUDA")


def _providers(available: list[str], device: str) -> list[str]:
    if device == "CPU":
        return ["CPUExecutionProvider"]
    gpu = [p for p in _GPU_PROVIDERS if p in available]
    if device in ("GPU", "CUDA") and "CUDAExecutionProvider" not in available:
        raise BackendError(
            f"onnxruntime device {device!r} needs the CUDA execution provider, but this onnxruntime has "
            f"only {available}: install onnxruntime-gpu or use device 'CPU'"
        )
    return [*gpu, "CPUExecutionProvider"]


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` behind the :class:`Backend` interface."""

    kind = "onnxruntime"
    formats = ("onnx", "onnx-qdq")
    default_device = "AUTO"
    options = ("intra_op_num_threads", "inter_op_num_threads", "providers")

    def __init__(self, session: Any, name: str) -> None:
        self._session = session
        self._name = name
        self._inputs = [i.name for i in session.get_inputs()]
        self._outputs = [o.name for o in session.get_outputs()]

    @classmethod
    def from_model_file(
        cls,
        model_path: str | Path,
        fmt: str = "onnx",
        *,
        device: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> OnnxRuntimeBackend:
        path = cls.check_model_file(model_path, fmt)
        opts = check_options(options, cls.options, cls.kind)
        device = (device or cls.default_device).upper()
        if device not in _DEVICES:
            raise BackendError(f"onnxruntime device must be one of {_DEVICES}, got {device!r}")
        ort = import_toolkit("onnxruntime", backend=cls.kind, extra="onnx")
        so = ort.SessionOptions()
        for key in ("intra_op_num_threads", "inter_op_num_threads"):
            if key in opts:
                value = opts[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise BackendError(f"onnxruntime option {key} must be an integer >= 0, got {value!r}")
                setattr(so, key, value)
        providers = list(opts.get("providers") or _providers(ort.get_available_providers(), device))
        try:
            session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"onnxruntime cannot load {path}: {first}") from None
        log.info("onnxruntime loaded %s with providers %s", path.name, session.get_providers())
        return cls(session, path.name)

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses, best first."""
        return list(self._session.get_providers())

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            results = self._session.run(self._outputs, inputs)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shapes = {k: tuple(v.shape) for k, v in inputs.items()}
            raise BackendError(
                f"onnxruntime failed to run {self._name} on inputs {shapes}: {first}"
            ) from None
        return dict(zip(self._outputs, results, strict=True))

    def close(self) -> None:
        self._session = None
