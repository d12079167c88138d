"""Calibration clips: choosing them, the calibration-set file, adapters for NNCF / ONNX Runtime / TensorRT."""
