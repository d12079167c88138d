"""The bundle manifest's ``files`` section: each model file with its tensors and companions, and the shape checks
between the backbone, the head, the window and the preprocessing (vocabulary and field access:
:mod:`edge_runtime.bundle_manifest`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends.base import MODEL_SUFFIXES
from .bundle_manifest import (
    DTYPES,
    FORMATS,
    FORMATS_BY_TARGET,
    HEAD_OUTPUTS,
    MAX_FEATURE_DIM,
    PRECISIONS,
    ROLES,
    BundleError,
    Field,
    Window,
    check_relative_path,
    check_sha256,
    describe_value,
)

__all__ = ["Companion", "ModelFile", "TensorSpec", "check_shapes", "parse_files"]


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
                f"{ctx}.shape[{i}] must be a positive integer or a symbolic name like 'N', got {describe_value(dim)}"
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
    if rel.suffix != MODEL_SUFFIXES[fmt]:
        raise f.error(
            f"{f.name('path')} of format {fmt!r} must end with {MODEL_SUFFIXES[fmt]}, got {str(rel)!r}"
        )
    companions = []
    for i, item in enumerate(f.get("companions", list, [])):
        c = Field(item, f"{f.name('companions')}[{i}]", where)
        c.only(("path", "sha256"))
        c_rel = check_relative_path(c.text("path"), c.name("path"), where)
        companions.append(Companion(path=root / c_rel, sha256=check_sha256(c)))
    if fmt == "openvino":
        weights = rel.with_suffix(".bin")
        if root / weights not in [c.path for c in companions]:
            raise f.error(f"{f.name('companions')} must list the OpenVINO weights {str(weights)!r}")
    return ModelFile(
        path=root / rel,
        role=role,
        precision=precision,
        format=fmt,
        sha256=check_sha256(f),
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
