"""Calibration data in the shapes each quantizer wants: NNCF, ONNX Runtime, and ``.npz`` files for Jetson.

- backbone: one calibration snippet at a time, ``(1, 3, S, H, W)`` (batch 1, as the device runs it);
- head: backbone features of the same clips arranged as the device's ring buffer holds them: for a chosen
  snippet ``i`` of a video, the window of its consecutive snippets ``max(0, i-K+1) .. i`` -> ``(1, K', D)``
  with ``K' <= K`` (:func:`head_windows`).

:func:`nncf_dataset` wraps either list in an ``nncf.Dataset`` for OpenVINO; :class:`OrtCalibrationReader` is an
ONNX Runtime ``CalibrationDataReader``; :func:`write_npz` writes the arrays for a user who quantizes again on
a Jetson (NVIDIA Model Optimizer: ``python -m modelopt.onnx.quantization --onnx_path backbone_fp32.onnx
--calibration_data calibration_backbone.npz``, whose keys are the model's input names; ``trtexec`` itself
takes no calibration data for an explicitly quantized Q/DQ model, which already carries its scales).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from calibration.select import CalibrationSet, snippets_at
from edge_runtime.bundle import sha256_file

__all__ = ["head_windows", "nncf_dataset", "OrtCalibrationReader", "write_npz", "snippet_batches"]

log = logging.getLogger(__name__)

FeatureFn = Callable[[np.ndarray], np.ndarray]  # snippets (N, 3, S, H, W) -> features (N, D)


def snippet_batches(snippets: np.ndarray) -> list[np.ndarray]:
    """Calibration snippets ``(N, 3, S, H, W)`` -> a list of ``(1, 3, S, H, W)`` items (views, no copies)."""
    return [snippets[i : i + 1] for i in range(len(snippets))]


def head_windows(
    cal: CalibrationSet,
    data_root: str | Path,
    features: FeatureFn,
    *,
    window: int,
    max_windows: int = 64,
    batch_size: int = 8,
    progress: bool = True,
) -> list[np.ndarray]:
    """Head calibration inputs: for up to ``max_windows`` calibration clips (evenly spread over the set, so
    still stratified), the features of the ``window`` consecutive snippets ending at that clip, ``(1, K', D)``.

    ``features`` computes backbone features (the FP32 model: what a calibrated backbone approximates)."""
    clips = list(cal.clips)
    if len(clips) > max_windows:
        clips = [clips[int(i)] for i in np.linspace(0, len(clips) - 1, max_windows).round()]
    root = Path(data_root)
    by_video: dict[str, list[Any]] = {}
    for clip in clips:
        by_video.setdefault(clip.video, []).append(clip)
    windows: list[np.ndarray] = []
    for video, vclips in tqdm(
        by_video.items(),
        desc="head calibration",
        unit="video",
        leave=False,
        disable=None if progress else True,
    ):
        path = root / video
        if sha256_file(path) != vclips[0].sha256:
            raise ValueError(f"calibration video {path} changed since the calibration set was chosen")
        needed = sorted(
            {j for c in vclips for j in range(max(0, c.snippet_index - window + 1), c.snippet_index + 1)}
        )
        picked = snippets_at(path, needed, cal)
        snippets = np.stack([picked[j] for j in needed])
        feats = np.concatenate(
            [features(snippets[i : i + batch_size]) for i in range(0, len(snippets), batch_size)]
        )
        row = {j: k for k, j in enumerate(needed)}
        for c in vclips:
            lo = max(0, c.snippet_index - window + 1)
            windows.append(
                np.ascontiguousarray(feats[[row[j] for j in range(lo, c.snippet_index + 1)]][None])
            )
    return windows


def nncf_dataset(items: Sequence[np.ndarray], input_name: str | None = None) -> Any:
    """An ``nncf.Dataset`` over ``items``; each item becomes the model input (``{input_name: item}`` when a
    name is given, which OpenVINO models accept)."""
    import nncf

    if input_name is None:
        return nncf.Dataset(list(items))
    return nncf.Dataset(list(items), lambda x: {input_name: x})


def _reader_base() -> type:
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


class OrtCalibrationReader:
    """An ONNX Runtime ``CalibrationDataReader`` over calibration items for the input ``input_name``.

    Built by :meth:`create`, which makes the class a real subclass of ONNX Runtime's reader (imported lazily).
    """

    def __init__(self, items: Sequence[np.ndarray], input_name: str) -> None:
        self.items = list(items)
        self.input_name = input_name
        self._it: Iterator[np.ndarray] = iter(self.items)

    @classmethod
    def create(cls, items: Sequence[np.ndarray], input_name: str) -> OrtCalibrationReader:
        typ = type("OrtCalibrationReader", (cls, _reader_base()), {})
        return typ(items, input_name)

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._it, None)
        return None if item is None else {self.input_name: np.ascontiguousarray(item, np.float32)}

    def rewind(self) -> None:
        self._it = iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write calibration arrays keyed by model input name (``snippets``: ``(N, 3, S, H, W)``, ``features``:
    ``(N, K, D)``) as a compressed ``.npz`` (no pickled objects: plain float32 arrays)."""
    path = Path(path)
    clean = {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}
    np.savez_compressed(path, **clean)
    log.info("wrote calibration data %s: %s", path, {k: v.shape for k, v in clean.items()})
    return path
