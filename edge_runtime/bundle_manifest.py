"""The bundle manifest ``i3dmtn.bundle/1``: its vocabulary, value types and field-by-field validation.

Pure checks on the parsed JSON (no file reads): :mod:`edge_runtime.bundle` builds a :class:`Bundle` from them and
the writer (``export.bundle``) runs the same checks before it copies anything, so a bundle that is written is a
bundle that loads. Every error is one line: ``<manifest path>: <field> <what was expected>, got <what came>``.

Vocabulary (docs/architecture.md, "The bundle"):

- targets: ``onnx`` (ONNX Runtime), ``openvino`` (OpenVINO IR), ``jetson`` (TensorRT, engine built on the device);
- formats: ``onnx`` (FP32 or ONNX Runtime INT8), ``onnx-qdq`` (explicit Q/DQ for TensorRT), ``openvino``
  (``.xml`` + ``.bin`` companion);
- roles: ``backbone`` (snippet ``(N, 3, S, H, W)`` -> feature ``(N, D)``) and ``head`` (features ``(N, K, D)`` ->
  ``snippet_scores (N, K)``, ``attention (N, K)``, ``video_score (N,)``; the ``files`` entries and their shapes:
  :mod:`edge_runtime.bundle_files`);
- precisions: ``fp32`` (always present: the fallback), ``int8``, ``fp16`` (TensorRT only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .backends.base import MODEL_FORMATS

__all__ = [
    "BUNDLE_SCHEMA",
    "MANIFEST_NAME",
    "TARGETS",
    "PRECISIONS",
    "ROLES",
    "FORMATS",
    "FORMATS_BY_TARGET",
    "GATES",
    "DTYPES",
    "HEAD_OUTPUTS",
    "BundleError",
    "Window",
    "Field",
    "check_relative_path",
    "check_sha256",
    "check_started_from",
    "describe_value",
    "parse_window",
    "MotionForestEntry",
    "parse_motion_forest",
]

BUNDLE_SCHEMA = "i3dmtn.bundle/1"
MANIFEST_NAME = "manifest.json"
TARGETS = ("onnx", "openvino", "jetson")
PRECISIONS = ("fp32", "int8", "fp16")
ROLES = ("backbone", "head")
FORMATS = MODEL_FORMATS  # the model file formats the backends load
# Which model formats each target's backend can run (OpenVINO also reads ONNX; TensorRT parses (Q/DQ) ONNX).
FORMATS_BY_TARGET = {"onnx": ("onnx",), "openvino": ("openvino", "onnx"), "jetson": ("onnx", "onnx-qdq")}
GATES = ("passed", "overridden", "not_checked")
DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64")
HEAD_OUTPUTS = ("snippet_scores", "attention", "video_score")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# The largest numbers a device runs (memory, time); a manifest beyond one is refused naming the key.
MAX_SNIPPET_LENGTH = 128  # frames per snippet (I3D: 16 to 64)
MAX_NUM_SNIPPETS = 1024  # snippets the head scores together (RTFM: 32)
MAX_FRAME_STRIDE = 32  # one frame used every N: beyond, a snippet spans seconds and no fight is seen
MAX_FEATURE_DIM = 65536  # backbone feature width D (I3D: 1024); the head's ring holds K x D per camera
_MISSING = object()


class BundleError(ValueError):
    """A bundle that cannot be used: the message is one line naming the file and what is wrong."""


@dataclass(frozen=True)
class Window:
    """The streaming window: snippets of ``snippet_length`` frames taken every ``frame_stride`` frames, ``K``
    (``num_snippets``) of them scored together by the head; ``fps`` is the frame rate the model was trained at."""

    snippet_length: int
    num_snippets: int
    frame_stride: int
    fps: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "snippet_length": self.snippet_length,
            "num_snippets": self.num_snippets,
            "frame_stride": self.frame_stride,
            "fps": self.fps,
        }


class Field:
    """Typed access to one JSON object of the manifest, with errors that name the manifest and the field."""

    def __init__(self, obj: Any, ctx: str, where: str) -> None:
        self.ctx, self.where = ctx, where
        if not isinstance(obj, Mapping):
            raise self.error(f"{ctx or 'the manifest'} must be a JSON object, got {describe_value(obj)}")
        self.obj = obj

    def error(self, message: str) -> BundleError:
        return BundleError(f"{self.where}: {message}")

    def name(self, key: str) -> str:
        return f"{self.ctx}.{key}" if self.ctx else key

    def get(self, key: str, types: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        if key not in self.obj:
            if default is _MISSING:
                raise self.error(f"{self.name(key)} is missing")
            return default
        value = self.obj[key]
        types = types if isinstance(types, tuple) else (types,)
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise self.error(f"{self.name(key)} must be {expected}, got {describe_value(value)}")
        return value

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self.get(key, str, default)
        if value is not default and not value.strip():
            raise self.error(f"{self.name(key)} must not be empty")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.get(key, str)
        if value not in choices:
            raise self.error(f"{self.name(key)} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def positive_int(self, key: str, high: int | None = None) -> int:
        value = self.get(key, int)
        if value <= 0:
            raise self.error(f"{self.name(key)} must be a positive integer, got {value}")
        if high is not None and value > high:
            raise self.error(f"{self.name(key)} must be an integer in [1, {high}], got {value}")
        return value

    def number(self, key: str, low: float, high: float, *, low_open: bool = False) -> float:
        value = self.get(key, (int, float))
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            bracket = "(" if low_open else "["
            raise self.error(f"{self.name(key)} must be a number in {bracket}{low}, {high}], got {value!r}")
        return float(value)

    def only(self, allowed: tuple[str, ...]) -> None:
        unknown = sorted(str(k) for k in self.obj if k not in allowed)
        if unknown:
            where = f" in {self.ctx}" if self.ctx else ""
            raise self.error(f"unknown field(s) {unknown}{where}; known: {', '.join(allowed)}")


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "an object",
}


def describe_value(value: Any) -> str:
    """``value``'s type and a short repr, for error messages."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"


def check_relative_path(value: str, what: str, where: str) -> PurePosixPath:
    """A path inside the bundle: relative, '/'-separated, no '..', no empty or '.' parts."""
    path = PurePosixPath(value)
    if (
        not value
        or "\\" in value
        or value.startswith("/")
        or path.is_absolute()
        or re.match(r"^[A-Za-z]:", value)
        or any(part in ("..", ".", "") for part in value.split("/"))
        or any(ord(c) < 32 for c in value)
    ):
        raise BundleError(
            f"{where}: {what} {value!r} must be a relative path inside the bundle folder "
            "(no '..', no absolute path, '/' separators)"
        )
    if value == MANIFEST_NAME:
        raise BundleError(f"{where}: {what} must not be {MANIFEST_NAME}")
    return path


def check_started_from(model: Field) -> None:
    """``model.started_from``, optional: the checkpoint a fine-tune (``i3dmtn train --init``) started from, as
    its run recorded it (``path``, ``sha256``, ``model`` name, ``epoch``). The runtime reads nothing from it;
    it is checked so that a bundle says truthfully where its weights came from, or is refused."""
    if "started_from" not in model.obj:
        return
    f = Field(model.obj["started_from"], model.name("started_from"), model.where)
    f.only(("path", "sha256", "model", "epoch"))
    f.text("path")
    f.text("model")
    check_sha256(f)
    if f.get("epoch", int) < 0:
        raise f.error(f"{f.name('epoch')} must be an integer >= 0, got {f.obj['epoch']}")


def check_sha256(f: Field, key: str = "sha256") -> str:
    """The object's ``sha256`` (or ``key``): 64 lowercase hex digits."""
    value = f.get(key, str)
    if not _SHA256_RE.match(value):
        raise f.error(f"{f.name(key)} must be 64 lowercase hex digits, got {value!r}")
    return value


@dataclass(frozen=True)
class MotionForestEntry:
    """The optional motion forest (edge_runtime.motion_fusion): its ``.npz`` file, statistics and share."""

    path: Path
    sha256: str
    stats_version: str
    weight: float
    crops: int = 1  # crop positions the forest scores (edge_runtime.motion_fusion); absent in the manifest: 1


def parse_motion_forest(obj: Any, root: Path, where: str, modality: str) -> MotionForestEntry:
    """The manifest's ``motion_forest``: a forest over the input flow's statistics, flow bundles only."""
    from .motion_stats import STATS_VERSION  # the statistics this runtime computes

    f = Field(obj, "motion_forest", where)
    f.only(("file", "sha256", "stats_version", "weight", "crops"))
    if modality != "flow":
        raise f.error(
            f"motion_forest needs preprocess.modality 'flow' (statistics of the input flow), got {modality!r}"
        )
    rel = check_relative_path(f.text("file"), f.name("file"), where)
    if rel.suffix != ".npz":
        raise f.error(f"{f.name('file')} must end with .npz, got {str(rel)!r}")
    version = f.text("stats_version")
    if version != STATS_VERSION:
        raise f.error(
            f"{f.name('stats_version')} must be {STATS_VERSION!r} (this runtime's), got {version!r}"
        )
    crops = f.get("crops", int, 1)
    if crops not in (1, 3):
        raise f.error(f"{f.name('crops')} must be 1 or 3 (crop positions the forest scores), got {crops!r}")
    return MotionForestEntry(root / rel, check_sha256(f), version, f.number("weight", 0.0, 1.0), crops)


def parse_window(obj: Any, where: str) -> Window:
    f = Field(obj, "window", where)
    f.only(("snippet_length", "num_snippets", "frame_stride", "fps"))
    return Window(
        snippet_length=f.positive_int("snippet_length", MAX_SNIPPET_LENGTH),
        num_snippets=f.positive_int("num_snippets", MAX_NUM_SNIPPETS),
        frame_stride=f.positive_int("frame_stride", MAX_FRAME_STRIDE),
        fps=f.number("fps", 0.0, 1000.0, low_open=True),
    )
