"""Jetson target: an explicitly quantized Q/DQ ONNX that TensorRT builds an INT8 engine from on the device.

TensorRT 10 dropped implicit quantization (``IInt8Calibrator``) in favour of explicit quantization: the ONNX
carries ``QuantizeLinear`` / ``DequantizeLinear`` pairs with the scales, and TensorRT fuses them into INT8
kernels. TensorRT needs them **symmetric** (zero point 0) and signed int8.

Tool: ONNX Runtime's ``quantize_static`` in QDQ format with ``ActivationSymmetric`` and ``WeightSymmetric``
and ``QInt8`` for both, per-channel weights. NVIDIA Model Optimizer (``modelopt``) writes the same kind of
file but is not installable or testable on this workstation (it pulls CUDA-only packages); ONNX Runtime's
QDQ output is standard ONNX that TensorRT 10 consumes for explicit quantization, and it runs here in ONNX
Runtime on CPU, so it is checked before it leaves: every zero point is 0 (:func:`check_qdq`) and its scores
stay close to FP32 (the export report). No ``IInt8Calibrator``, no calibration cache: the engine is built on
the device from this file (``edge_runtime.backends.tensorrt``), because engines do not move between GPUs.

Users who prefer to quantize on the device with Model Optimizer find the calibration data in
``calibration_backbone.npz`` (see :mod:`calibration.adapters`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from export.ort_int8 import quantize_ort

__all__ = ["QdqCheckError", "check_qdq", "quantize_jetson"]

log = logging.getLogger(__name__)


class QdqCheckError(RuntimeError):
    """A Q/DQ model TensorRT cannot take as explicitly quantized INT8."""


def check_qdq(path: Path) -> dict[str, Any]:
    """Count Q/DQ nodes and check that every zero point is an int8 zero; raises :class:`QdqCheckError`."""
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    consts = {
        n.output[0]: next(a.t for a in n.attribute if a.name == "value")
        for n in model.graph.node
        if n.op_type == "Constant" and any(a.name == "value" for a in n.attribute)
    }
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    bad: list[str] = []
    for node in model.graph.node:
        if node.op_type not in counts:
            continue
        counts[node.op_type] += 1
        if len(node.input) < 3 or not node.input[2]:
            continue  # no zero point given: 0 by the ONNX spec (and int8 would need one to say so)
        zp_name = node.input[2]
        tensor = inits.get(zp_name) or consts.get(zp_name)
        if tensor is None:
            bad.append(f"{node.name}: zero point {zp_name} is not a constant")
            continue
        zp = numpy_helper.to_array(tensor)
        if zp.dtype != np.int8 or np.any(zp != 0):
            bad.append(f"{node.name}: zero point {zp.dtype} {np.unique(zp)[:3].tolist()}")
    if not counts["QuantizeLinear"] or not counts["DequantizeLinear"]:
        raise QdqCheckError(f"{path.name} has no Q/DQ pairs ({counts}): not an explicitly quantized model")
    if bad:
        raise QdqCheckError(f"{path.name}: {len(bad)} Q/DQ nodes are not symmetric int8, e.g. {bad[0]}")
    return {**counts, "zero_points": "all int8 zeros"}


def quantize_jetson(fp32: Path, out: Path, items: Sequence[np.ndarray], input_name: str) -> dict[str, Any]:
    """Symmetric int8 Q/DQ ONNX of ``fp32`` for TensorRT, calibrated on ``items``; checked with :func:`check_qdq`."""
    settings = quantize_ort(fp32, out, items, input_name, symmetric=True)
    settings["check"] = check_qdq(out)
    settings["consumer"] = "TensorRT explicit quantization (engine built on the device)"
    return settings
