"""ONNX Runtime static INT8 (target ``onnx``): ``quant_pre_process``, then ``quantize_static`` in QDQ format.

Settings: QDQ format (the portable one: ONNX Runtime fuses Q/DQ pairs into integer kernels on CPU), per-channel
weights (a 3D conv's output channels differ in range by orders of magnitude), asymmetric uint8 activations
(ReLU outputs are one-sided) and int8 weights, MinMax calibration over the calibration set.

The first convolution (``Conv3d_1a_7x7``: 3 input channels, a 7x7x7 kernel) is a poor fit for ONNX Runtime's
CPU integer kernels: with 3 input channels there is little to vectorise in int8. :func:`quantize_backbone`
therefore **measures** the fully quantized model against one with that conv excluded (``nodes_to_exclude``)
and keeps the faster; the measurement goes into the report.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from calibration.adapters import OrtCalibrationReader
from edge_runtime.logging_setup import quiet_logger
from export.onnx import onnx_session

__all__ = ["first_conv", "quantize_ort", "quantize_backbone", "median_latency_ms", "count_qdq"]

log = logging.getLogger(__name__)


def first_conv(path: Path) -> str | None:
    """Name of the first ``Conv`` node of the graph (the I3D stem), None when there is none."""
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type == "Conv":
            return node.name
    return None


def count_qdq(path: Path) -> dict[str, int]:
    """QuantizeLinear / DequantizeLinear node counts of an ONNX file."""
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    return {"QuantizeLinear": ops.count("QuantizeLinear"), "DequantizeLinear": ops.count("DequantizeLinear")}


def quantize_ort(
    fp32: Path,
    out: Path,
    items: Sequence[np.ndarray],
    input_name: str,
    *,
    symmetric: bool = False,
    nodes_to_exclude: Sequence[str] = (),
    per_channel: bool = True,
) -> dict[str, Any]:
    """Static INT8 of ``fp32`` into ``out`` calibrated on ``items``; returns the settings used.

    ``symmetric``: int8 activations and weights, zero points 0, biases left in float (what TensorRT's
    explicit quantization takes: it fuses float biases itself and has no int32 DequantizeLinear).
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    with tempfile.TemporaryDirectory(prefix="ort-int8-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
        excluded = [n for n in nodes_to_exclude]
        extra = (
            {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False} if symmetric else {}
        )
        act = QuantType.QInt8 if symmetric else QuantType.QUInt8
        # ONNX Runtime logs every bias copy at INFO on the root logger
        with quiet_logger(None, logging.ERROR):
            quantize_static(
                str(pre),
                str(out),
                OrtCalibrationReader.create(items, input_name),
                quant_format=QuantFormat.QDQ,
                activation_type=act,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=excluded,
                extra_options=extra,
            )
    settings = {
        "tool": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "activations": "int8 symmetric" if symmetric else "uint8 asymmetric",
        "weights": "int8 symmetric per-channel" if per_channel else "int8 symmetric per-tensor",
        "calibration": "MinMax",
        "calibration_items": len(items),
        "nodes_excluded": excluded,
        **count_qdq(out),
    }
    log.info("quantized %s -> %s (%s)", fp32.name, out.name, settings["activations"])
    return settings


def median_latency_ms(run: Any, x: np.ndarray, repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time in ms of ``run(x)`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def _session_latency(path: Path, x: np.ndarray, repeats: int) -> float:
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    return median_latency_ms(lambda a: session.run(None, {name: a}), x, repeats)


def quantize_backbone(
    fp32: Path, out: Path, items: Sequence[np.ndarray], *, repeats: int = 5
) -> dict[str, Any]:
    """INT8 backbone for ONNX Runtime: quantize all convs, and all but the stem conv; keep the faster one
    (batch-1 median latency measured here) and report both timings."""
    stem = first_conv(fp32)
    full = quantize_ort(fp32, out, items, "snippets")
    if stem is None:
        return full
    x = np.ascontiguousarray(items[0], np.float32)
    t_full = _session_latency(out, x, repeats)
    alt = out.with_name(out.stem + ".stem-fp32.onnx")
    part = quantize_ort(fp32, alt, items, "snippets", nodes_to_exclude=[stem])
    t_part = _session_latency(alt, x, repeats)
    t_fp32 = _session_latency(fp32, x, repeats)
    measured = {"fp32_ms": t_fp32, "all_int8_ms": t_full, "stem_fp32_ms": t_part, "stem_node": stem}
    if t_part < t_full:
        alt.replace(out)
        part["stem_choice"] = {**measured, "kept": "stem conv excluded (faster)"}
        log.info("ORT INT8: stem conv %s kept FP32 (%.1f ms vs %.1f ms all-INT8)", stem, t_part, t_full)
        return part
    alt.unlink(missing_ok=True)
    full["stem_choice"] = {**measured, "kept": "all convs INT8 (faster)"}
    log.info("ORT INT8: all convs INT8 (%.1f ms vs %.1f ms with the stem FP32)", t_full, t_part)
    return full
