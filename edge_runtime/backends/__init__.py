"""Inference backends: one abstract :class:`Backend`, one module per toolkit, each imported only when used.

>>> pick_backend("openvino")
'openvino'
>>> pick_backend("onnx", profile_backend="openvino")
'openvino'
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import MODEL_FORMATS, Backend, BackendError, BackendUnavailable

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "MODEL_FORMATS",
    "backend_class",
    "create_backend",
    "is_installed",
    "pick_backend",
]

log = logging.getLogger(__name__)

# kind -> (module in this package, class name, Python package of the toolkit); the formats each loads are
# its class's ``formats``
BACKENDS: dict[str, tuple[str, str, str]] = {
    "onnxruntime": ("onnxruntime", "OnnxRuntimeBackend", "onnxruntime"),
    "openvino": ("openvino", "OpenVINOBackend", "openvino"),
    "tensorrt": ("tensorrt", "TensorRTBackend", "tensorrt"),
}


def _check_kind(kind: str) -> None:
    if kind not in BACKENDS:
        raise BackendError(f"unknown backend {kind!r}: expected one of {sorted(BACKENDS)}")


def is_installed(kind: str) -> bool:
    """Whether the toolkit of backend ``kind`` can be imported here (checked without importing it)."""
    _check_kind(kind)
    return importlib.util.find_spec(BACKENDS[kind][2]) is not None


def backend_class(kind: str) -> type[Backend]:
    """The :class:`Backend` subclass for ``kind``; imports its module (not yet its toolkit)."""
    _check_kind(kind)
    module, cls, _ = BACKENDS[kind]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def create_backend(
    kind: str,
    model_path: str | Path,
    *,
    fmt: str | None = None,
    device: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Backend:
    """Load ``model_path`` with backend ``kind`` ("openvino" | "onnxruntime" | "tensorrt").

    ``fmt`` defaults from the suffix (``.xml`` -> "openvino", else "onnx"). A missing toolkit raises
    :class:`BackendUnavailable` whose one-line message names ``pip install i3d-mtn-edge[<extra>]``.
    """
    _check_kind(kind)
    if fmt is None:
        fmt = "openvino" if Path(model_path).suffix.lower() == ".xml" else "onnx"
    return backend_class(kind).from_model_file(model_path, fmt, device=device, options=options)


def pick_backend(fmt: str, profile_backend: str | None = None) -> str:
    """The backend to run a model of format ``fmt``: the device profile's choice when it can load it, else

    onnx -> onnxruntime (openvino when only it is installed), openvino -> openvino,
    onnx-qdq -> tensorrt when installed, else onnxruntime (with a warning: INT8 Q/DQ on the CPU is slow).
    """
    if fmt not in MODEL_FORMATS:
        raise BackendError(f"unknown model format {fmt!r}: expected one of {MODEL_FORMATS}")
    if profile_backend is not None:
        formats = backend_class(profile_backend).formats
        if fmt not in formats:
            raise BackendError(
                f"the device profile's backend {profile_backend!r} cannot load a {fmt!r} model; it loads {formats}"
            )
        return profile_backend
    if fmt == "openvino":
        return "openvino"
    if fmt == "onnx-qdq" and is_installed("tensorrt"):
        return "tensorrt"
    if fmt == "onnx-qdq":
        log.warning("TensorRT is not installed: running the INT8 Q/DQ model with onnxruntime instead")
    if not is_installed("onnxruntime") and is_installed("openvino"):
        return "openvino"
    return "onnxruntime"
