"""Backbone speed and size per export format: full-width I3D at 224 px, 16-frame snippets, batch 1.

``python -m benchmarks.export [--quick]`` builds the backbone with random weights (latency does not depend on
the weights' values), exports it like ``i3dmtn export`` does, quantizes it (ONNX Runtime static INT8 and NNCF
INT8, calibrated on a few random snippets: enough for speed and size, not for accuracy) and prints, per row,
the median per-snippet latency after warm-up, the file size and the speed-up over PyTorch eager FP32 measured
in the same process. Goals: OpenVINO INT8 >= 8x eager FP32 and >= 4x ONNX Runtime FP32; INT8 file <= 13 MB.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["main", "run"]

log = logging.getLogger(__name__)


def _size(path: Path) -> int:
    bin_ = path.with_suffix(".bin")
    return path.stat().st_size + (bin_.stat().st_size if path.suffix == ".xml" and bin_.exists() else 0)


def run(quick: bool = False, size: int = 224, snippet: int = 16) -> list[dict]:
    """Measure every row; returns ``[{"name", "ms", "bytes"}]`` (bytes None for PyTorch eager)."""
    import openvino as ov
    import torch

    from edge_runtime.backends import create_backend
    from export.onnx import export_onnx
    from export.openvino_int8 import quantize_ir
    from export.ort_int8 import median_latency_ms, quantize_backbone
    from training.model import build_model

    repeats, calib = (5, 4) if quick else (15, 16)
    torch.manual_seed(0)
    model = build_model({"clip_length": snippet, "width_multiplier": 1.0}).eval()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 3, snippet, size, size)).astype(np.float32)
    items = [rng.uniform(-1, 1, x.shape).astype(np.float32) for _ in range(calib)]
    rows = []
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        rows.append(
            {
                "name": "PyTorch eager FP32",
                "ms": median_latency_ms(model.backbone, xt, repeats),
                "bytes": None,
            }
        )
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        with torch.no_grad():
            feats = model.backbone(xt).numpy()
        onnx = export_onnx(model, work, snippets=x, windows=[feats[None]])
        int8_onnx = work / "backbone_int8.onnx"
        settings = quantize_backbone(onnx.backbone, int8_onnx, items, repeats=3)
        fp32_xml = work / "backbone_fp32.xml"
        ov.save_model(ov.convert_model(str(onnx.backbone)), str(fp32_xml), compress_to_fp16=False)
        int8_xml = work / "backbone_int8.xml"
        quantize_ir(onnx.backbone, int8_xml, items, "snippets")
        variants = [
            ("ONNX Runtime FP32", "onnxruntime", onnx.backbone, {}),
            (
                f"ONNX Runtime INT8 ({settings.get('stem_choice', {}).get('kept', 'all INT8')})",
                "onnxruntime",
                int8_onnx,
                {},
            ),
            ("OpenVINO FP32 (f32 hint)", "openvino", fp32_xml, {"inference_precision": "f32"}),
        ]
        if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            variants.append(
                ("OpenVINO bf16 (CPU default)", "openvino", fp32_xml, {"inference_precision": "bf16"})
            )
        variants.append(("OpenVINO INT8 (NNCF)", "openvino", int8_xml, {}))
        for name, kind, path, options in variants:
            with create_backend(kind, path, device="CPU", options=options) as net:
                ms = median_latency_ms(lambda a, n=net: n.infer({"snippets": a}), x, repeats)
            rows.append({"name": name, "ms": ms, "bytes": _size(path)})
    return rows


def format_table(rows: list[dict]) -> str:
    base = rows[0]["ms"]
    ort = next((r["ms"] for r in rows if r["name"] == "ONNX Runtime FP32"), None)
    lines = [
        f"{'backbone (batch 1, 16x224x224)':50} {'ms/snippet':>11} {'MB':>7} {'vs eager':>9} {'vs ORT FP32':>12}"
    ]
    for r in rows:
        mb = f"{r['bytes'] / 1e6:.1f}" if r["bytes"] else "-"
        vs_ort = f"{ort / r['ms']:.2f}x" if ort else "-"
        lines.append(f"{r['name']:50} {r['ms']:11.1f} {mb:>7} {base / r['ms']:8.2f}x {vs_ort:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and calibration snippets")
    parser.add_argument("--size", type=int, default=224, help="input crop (default 224)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(format_table(run(quick=args.quick, size=args.size)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
