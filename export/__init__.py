"""Export: torch -> ONNX, INT8 per target, FP32-vs-INT8 report, bundle writer."""
