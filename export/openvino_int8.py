"""OpenVINO target: FP32 IR and INT8 IR through NNCF post-training quantization.

``ov.convert_model(onnx)`` -> ``nncf.quantize(model, nncf.Dataset(...), preset=..., subset_size=...)`` ->
``ov.save_model(..., compress_to_fp16=False)`` (``.xml`` + ``.bin``; FP16 weight compression would change the
FP32 numbers the report compares against). Preset ``MIXED`` by default: symmetric weights, asymmetric
activations, which fits ReLU outputs (one-sided) best; ``PERFORMANCE`` (all symmetric) is offered too.

Activation ranges are the **min and max** seen on the calibration set (``RangeEstimatorParametersSet.MINMAX``),
not NNCF's default estimate, which averages per-batch extremes and so clips the rare large activations. For an
anomaly detector those rare activations are the signal: the motion channels fire hard on a fight and barely
on calm scenes. Measured on the demo's bundle, the default ranges moved fight snippets' scores by up to 0.88
(0.91 -> 0.03) while the video AUC stayed 1.0, and the device missed one fight; with min/max ranges the INT8
snippet scores stay within 0.02 of FP32.

Weights use 7 of their 8 bits everywhere (``OverflowFix.ENABLE``, not NNCF's default ``FIRST_LAYER``, which
covers only the first convolution). CPUs without VNNI (AVX2, and AVX-512 before VNNI: many edge boxes) add
pairs of u8 x s8 products in 16 bits, which saturate with full-range weights: on such a CPU (an AVX2-only AMD
EPYC) the IR with full-range weights, whose ranges are the calibration set's min/max, put a small MLP's output
55 % away from FP32, and 0.5 % with 7-bit weights. CPUs with VNNI, which do not saturate, lose one bit of
weight resolution.

With accuracy control (:func:`quantize_ir_with_accuracy_control`) NNCF quantizes, measures the metric given
(the export uses video AUC on held-out validation videos) and reverts the most harmful layers to FP32 until
the drop is within ``max_drop``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibration.adapters import nncf_dataset

__all__ = [
    "PRESETS",
    "convert_ir",
    "ir_size",
    "nncf_bars",
    "quantize_ir",
    "quantize_ir_with_accuracy_control",
]

log = logging.getLogger(__name__)

PRESETS = ("mixed", "performance")


def _preset(name: str) -> Any:
    import nncf

    if name not in PRESETS:
        raise ValueError(f"OpenVINO preset must be one of {PRESETS}, got {name!r}")
    return nncf.QuantizationPreset.MIXED if name == "mixed" else nncf.QuantizationPreset.PERFORMANCE


def convert_ir(onnx_path: Path, xml: Path) -> Path:
    """The ONNX file as an FP32 OpenVINO IR at ``xml`` (+ ``.bin``)."""
    import openvino as ov

    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return xml


def ir_size(xml: Path) -> int:
    """Bytes of an IR: ``.xml`` + ``.bin``."""
    return xml.stat().st_size + xml.with_suffix(".bin").stat().st_size


def _advanced() -> Any:
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(
        activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX,
        overflow_fix=OverflowFix.ENABLE,
    )


@contextlib.contextmanager
def nncf_bars(enabled: bool) -> Iterator[None]:
    """NNCF draws its progress bars with rich, on rich's global console, and has no switch for them: with
    ``enabled`` false that console is quiet for the block (rich's output only; logging is untouched)."""
    try:
        import rich
    except ImportError:  # no NNCF installed: no bars to quiet
        yield
        return
    console = rich.get_console()
    quiet = console.quiet
    console.quiet = quiet or not enabled
    try:
        yield
    finally:
        console.quiet = quiet


def quantize_ir(
    onnx_path: Path,
    xml: Path,
    items: Sequence[np.ndarray],
    input_name: str,
    *,
    preset: str = "mixed",
    subset_size: int | None = None,
) -> dict[str, Any]:
    """INT8 IR of ``onnx_path`` calibrated on ``items`` (model inputs); returns the settings used."""
    import nncf
    import openvino as ov

    subset = int(subset_size or len(items))
    model = nncf.quantize(
        ov.convert_model(str(onnx_path)),
        nncf_dataset(items, input_name),
        preset=_preset(preset),
        subset_size=subset,
        advanced_parameters=_advanced(),
    )
    ov.save_model(model, str(xml), compress_to_fp16=False)
    log.info("NNCF INT8 %s -> %s (preset %s, %d items)", onnx_path.name, xml.name, preset, subset)
    return {
        "tool": f"nncf {nncf.__version__} quantize",
        "preset": preset,
        "activation_ranges": "minmax",
        "overflow_fix": "enable",
        "subset_size": subset,
        "calibration_items": len(items),
        "openvino": ov.__version__ if hasattr(ov, "__version__") else ov.get_version(),
        "fake_quantize_nodes": _count_fq(model),
    }


def _count_fq(model: Any) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def quantize_ir_with_accuracy_control(
    onnx_path: Path,
    xml: Path,
    items: Sequence[np.ndarray],
    input_name: str,
    validation_items: Iterable[Any],
    validate: Callable[[Any, Iterable[Any]], float],
    *,
    max_drop: float,
    preset: str = "mixed",
    subset_size: int | None = None,
) -> dict[str, Any]:
    """INT8 IR with NNCF accuracy control: ``validate(compiled_model, validation_items) -> metric`` (higher
    is better); layers are reverted to FP32 until the metric drops by at most ``max_drop`` (absolute)."""
    import nncf
    import openvino as ov

    subset = int(subset_size or len(items))
    model = nncf.quantize_with_accuracy_control(
        ov.convert_model(str(onnx_path)),
        calibration_dataset=nncf_dataset(items, input_name),
        validation_dataset=nncf.Dataset(list(validation_items)),
        validation_fn=validate,
        max_drop=max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        preset=_preset(preset),
        subset_size=subset,
        advanced_quantization_parameters=_advanced(),
    )
    ov.save_model(model, str(xml), compress_to_fp16=False)
    fq = _count_fq(model)
    log.info(
        "NNCF INT8 with accuracy control %s -> %s (max drop %.3f): %d FakeQuantize nodes left after reverting",
        onnx_path.name, xml.name, max_drop, fq,
    )  # fmt: skip
    return {
        "tool": f"nncf {nncf.__version__} quantize_with_accuracy_control",
        "preset": preset,
        "activation_ranges": "minmax",
        "overflow_fix": "enable",
        "subset_size": subset,
        "calibration_items": len(items),
        "max_drop": max_drop,
        "metric": "video AUC on validation videos",
        "fake_quantize_nodes": fq,
    }
