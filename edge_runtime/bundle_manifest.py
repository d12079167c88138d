"""The bundle manifest ``i3dmtn.bundle/1``: its vocabulary, value types and field-by-field validation.

Pure checks on the parsed JSON (no file reads): :mod:`edge_runtime.bundle` builds a :class:`Bundle` from them and
the writer (``export.bundle``) runs the same checks before it copies anything, so a bundle that is written is a
bundle that loads. Every error is one line: ``<manifest path>: <field> <what was expected>, got <what came>``.

Vocabulary (docs/architecture.md, "The bundle"):

- targets: ``onnx`` (ONNX Runtime), ``openvino`` (OpenVINO IR), ``jetson`` (TensorRT, engine built on the device);
- formats: ``onnx`` (FP32 or ONNX Runtime INT8), ``onnx-qdq`` (explicit Q/DQ for TensorRT), ``openvino``
  (``.xml`` + ``.bin`` companion);
- roles: ``backbone`` (snippet ``(N, 3, S, H, W)`` -> feature ``(N, D)``) and ``head`` (features ``(N, K, D)`` ->
  ``snippet_scores (N, K)``, ``attention (N, K)``, ``video_score (N,)``);
- precisions: ``fp32`` (always present: the fallback), ``int8``, ``fp16`` (TensorRT only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

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
    "TensorSpec",
    "Companion",
    "ModelFile",
    "Window",
    "Field",
    "check_relative_path",
    "parse_files",
    "parse_window",
    "check_shapes",
    "MotionForestEntry",
    "parse_motion_forest",
]

BUNDLE_SCHEMA = "i3dmtn.bundle/1"
MANIFEST_NAME = "manifest.json"
TARGETS = ("onnx", "openvino", "jetson")
PRECISIONS = ("fp32", "int8", "fp16")
ROLES = ("backbone", "head")
FORMATS = ("onnx", "onnx-qdq", "openvino")
# Which model formats each target's backend can run (OpenVINO also reads ONNX; TensorRT parses (Q/DQ) ONNX).
FORMATS_BY_TARGET = {"onnx": ("onnx",), "openvino": ("openvino", "onnx"), "jetson": ("onnx", "onnx-qdq")}
GATES = ("passed", "overridden", "not_checked")
DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64")
HEAD_OUTPUTS = ("snippet_scores", "attention", "video_score")
_SUFFIX = {"onnx": ".onnx", "onnx-qdq": ".onnx", "openvino": ".xml"}
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
class TensorSpec:
    """A model input or output: ``shape`` holds ints and symbolic names (``"N"``, ``"K"``) for dynamic axes."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Companion:
    """A file a model file needs beside it (OpenVINO's ``.bin`` weights), hashed like the model file."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class ModelFile:
    """One model file of the bundle; ``path`` is absolute (inside the bundle folder)."""

    path: Path
    role: str
    precision: str
    format: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    companions: tuple[Companion, ...] = ()

    def output(self, name: str) -> TensorSpec:
        """The output called ``name``; KeyError naming the outputs there are."""
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.path.name} has no output {name!r}; it has {[o.name for o in self.outputs]}")


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
            raise self.error(f"{ctx or 'the manifest'} must be a JSON object, got {_describe(obj)}")
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
            raise self.error(f"{self.name(key)} must be {expected}, got {_describe(value)}")
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


def _describe(value: Any) -> str:
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


def _tensor(obj: Any, ctx: str, where: str) -> TensorSpec:
    f = Field(obj, ctx, where)
    f.only(("name", "shape", "dtype"))
    name = f.text("name")
    shape = f.get("shape", list)
    for i, dim in enumerate(shape):
        ok_int = isinstance(dim, int) and not isinstance(dim, bool) and dim > 0
        ok_sym = isinstance(dim, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", dim)
        if not (ok_int or ok_sym):
            raise f.error(
                f"{ctx}.shape[{i}] must be a positive integer or a symbolic name like 'N', got {_describe(dim)}"
            )
    dtype = f.get("dtype", str, "float32")
    if dtype not in DTYPES:
        raise f.error(f"{ctx}.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return TensorSpec(name=name, shape=tuple(shape), dtype=dtype)


def _tensors(f: Field, key: str) -> tuple[TensorSpec, ...]:
    items = f.get(key, list)
    if not items:
        raise f.error(f"{f.name(key)} must list at least one tensor")
    specs = tuple(_tensor(item, f"{f.name(key)}[{i}]", f.where) for i, item in enumerate(items))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise f.error(f"{f.name(key)} has duplicate tensor names {names}")
    return specs


def _sha256(f: Field) -> str:
    value = f.get("sha256", str)
    if not _SHA256_RE.match(value):
        raise f.error(f"{f.name('sha256')} must be 64 lowercase hex digits, got {value!r}")
    return value


def _model_file(obj: Any, ctx: str, root: Path, target: str, where: str) -> ModelFile:
    f = Field(obj, ctx, where)
    f.only(("path", "role", "precision", "format", "sha256", "companions", "inputs", "outputs"))
    rel = check_relative_path(f.text("path"), f.name("path"), where)
    role = f.choice("role", ROLES)
    precision = f.choice("precision", PRECISIONS)
    fmt = f.choice("format", FORMATS)
    if fmt not in FORMATS_BY_TARGET[target]:
        raise f.error(
            f"{f.name('format')} {fmt!r} cannot run on target {target!r}; "
            f"expected one of {', '.join(FORMATS_BY_TARGET[target])}"
        )
    if precision == "fp16" and target != "jetson":
        raise f.error(f"{f.name('precision')} 'fp16' is only for target 'jetson' (TensorRT), not {target!r}")
    if rel.suffix != _SUFFIX[fmt]:
        raise f.error(f"{f.name('path')} of format {fmt!r} must end with {_SUFFIX[fmt]}, got {str(rel)!r}")
    companions = []
    for i, item in enumerate(f.get("companions", list, [])):
        c = Field(item, f"{f.name('companions')}[{i}]", where)
        c.only(("path", "sha256"))
        c_rel = check_relative_path(c.text("path"), c.name("path"), where)
        companions.append(Companion(path=root / c_rel, sha256=_sha256(c)))
    if fmt == "openvino":
        weights = rel.with_suffix(".bin")
        if root / weights not in [c.path for c in companions]:
            raise f.error(f"{f.name('companions')} must list the OpenVINO weights {str(weights)!r}")
    return ModelFile(
        path=root / rel,
        role=role,
        precision=precision,
        format=fmt,
        sha256=_sha256(f),
        inputs=_tensors(f, "inputs"),
        outputs=_tensors(f, "outputs"),
        companions=tuple(companions),
    )


def parse_files(
    items: list[Any], root: Path, target: str, precision: str, where: str
) -> tuple[ModelFile, ...]:
    """The ``files`` list: each entry checked, no duplicates, a backbone and a head for each precision, fp32
    (the fallback) and the bundle's own precision present."""
    files = tuple(_model_file(item, f"files[{i}]", root, target, where) for i, item in enumerate(items))
    seen_paths: set[Path] = set()
    for mf in files:
        for p in (mf.path, *(c.path for c in mf.companions)):
            if p in seen_paths:
                raise BundleError(f"{where}: {p.relative_to(root)} is listed twice in files")
            seen_paths.add(p)
    pairs = [(mf.role, mf.precision) for mf in files]
    for pair in set(pairs):
        if pairs.count(pair) > 1:
            raise BundleError(
                f"{where}: files has {pairs.count(pair)} {pair[0]} models at precision {pair[1]}"
            )
    present = sorted({p for _, p in pairs}, key=PRECISIONS.index)
    for p in present:
        for role in ROLES:
            if (role, p) not in pairs:
                raise BundleError(
                    f"{where}: files has no {role} model at precision {p} (every precision needs both)"
                )
    for needed, why in (("fp32", "the fallback"), (precision, "the bundle's precision")):
        if needed not in present:
            raise BundleError(
                f"{where}: files has no {needed} models ({why}); it has {', '.join(present) or 'none'}"
            )
    return files


@dataclass(frozen=True)
class MotionForestEntry:
    """The optional motion forest (edge_runtime.motion_fusion): its ``.npz`` file, statistics and share."""

    path: Path
    sha256: str
    stats_version: str
    weight: float


def parse_motion_forest(obj: Any, root: Path, where: str, modality: str) -> MotionForestEntry:
    """The manifest's ``motion_forest``: a forest over the input flow's statistics, flow bundles only."""
    from .motion_stats import STATS_VERSION  # the statistics this runtime computes

    f = Field(obj, "motion_forest", where)
    f.only(("file", "sha256", "stats_version", "weight"))
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
    return MotionForestEntry(root / rel, _sha256(f), version, f.number("weight", 0.0, 1.0))


def parse_window(obj: Any, where: str) -> Window:
    f = Field(obj, "window", where)
    f.only(("snippet_length", "num_snippets", "frame_stride", "fps"))
    return Window(
        snippet_length=f.positive_int("snippet_length", MAX_SNIPPET_LENGTH),
        num_snippets=f.positive_int("num_snippets", MAX_NUM_SNIPPETS),
        frame_stride=f.positive_int("frame_stride", MAX_FRAME_STRIDE),
        fps=f.number("fps", 0.0, 1000.0, low_open=True),
    )


def check_shapes(
    files: tuple[ModelFile, ...], window: Window, crop: tuple[int, int], where: str, channels: int = 3
) -> int:
    """Backbone ``(N, C, S, H, W) -> (N, D)`` and head ``(N, K, D) -> scores`` agree with the window, the
    crop, the preprocessing's channels ``C`` and each other; returns the feature width ``D``."""
    dims: set[int] = set()
    for mf in files:
        name = mf.path.name
        if len(mf.inputs) != 1:
            raise BundleError(f"{where}: {name} must have one input, got {[t.name for t in mf.inputs]}")
        shape = mf.inputs[0].shape
        if mf.role == "backbone":
            expected = ("N", channels, window.snippet_length, *crop)
            if len(shape) != 5 or shape[1:] != expected[1:]:
                raise BundleError(
                    f"{where}: {name} input shape must be (N, C={channels}, S={window.snippet_length}, "
                    f"H={crop[0]}, W={crop[1]}) from window and preprocess, got {list(shape)}"
                )
            if (
                len(mf.outputs) != 1
                or len(mf.outputs[0].shape) != 2
                or not isinstance(mf.outputs[0].shape[1], int)
            ):
                raise BundleError(
                    f"{where}: {name} must have one output of shape (N, D) with D an integer, "
                    f"got {[list(t.shape) for t in mf.outputs]}"
                )
            dims.add(mf.outputs[0].shape[1])
        else:
            if len(shape) != 3 or not isinstance(shape[2], int):
                raise BundleError(
                    f"{where}: {name} input shape must be (N, K, D) with D an integer, got {list(shape)}"
                )
            if isinstance(shape[1], int) and shape[1] != window.num_snippets:
                raise BundleError(
                    f"{where}: {name} input K={shape[1]} differs from window.num_snippets={window.num_snippets}"
                )
            dims.add(shape[2])
            outputs = {t.name: t for t in mf.outputs}
            for out, rank in zip(HEAD_OUTPUTS, (2, 2, 1), strict=True):
                if out not in outputs or len(outputs[out].shape) != rank:
                    raise BundleError(
                        f"{where}: {name} must have an output {out!r} of rank {rank}; "
                        f"it has {[(t.name, list(t.shape)) for t in mf.outputs]}"
                    )
    if len(dims) != 1:
        raise BundleError(f"{where}: backbone output D and head input D must agree, got {sorted(dims)}")
    if max(dims) > MAX_FEATURE_DIM:
        raise BundleError(f"{where}: feature width D must be at most {MAX_FEATURE_DIM}, got {max(dims)}")
    return dims.pop()
