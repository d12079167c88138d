"""TensorRT backend (Jetson / NVIDIA GPUs): builds an engine from the bundle's ONNX on the device.

Engines do not move between GPUs or TensorRT versions, so the device builds its own the first time and keeps
it in a cache folder, named by :func:`engine_cache.engine_key` over everything the build depends on; a
timing cache makes rebuilds fast. Written against the documented TensorRT 10 and 11 Python APIs with pycuda
buffers; the calls are checked against a stand-in written from that documentation
(``tests/edge_runtime/tensorrt_api_standin.py``), not against a GPU.

Precision, chosen by what the installed TensorRT has (``hasattr``), never by its version string:

- ``onnx-qdq`` (INT8, explicit quantization): a strongly typed network (``STRONGLY_TYPED``, TensorRT 10+;
  always on in 11): the Q/DQ nodes carry the scales and the graph's types decide every layer's precision; no
  builder precision flag.
- ``onnx`` with option ``fp16``: ``BuilderFlag.FP16`` on a weakly typed network (TensorRT may pick FP16
  kernels). TensorRT 11 removed that flag (only an FP16 ONNX builds FP16 there), so on 11 it is refused.
- ``onnx``: FP32, strongly typed.

Every dynamic dimension of every input gets an optimization profile taken from the ONNX model's shapes: axis
0 is the batch (1, ``opt_batch``, ``max_batch``); any other dynamic axis needs its range in option
``input_ranges`` (the runtime gives the head's ``K``: 1 .. the bundle's window, see :func:`bundle_ranges`).
Run: ``set_input_shape`` for every input, then ``set_tensor_address`` for every I/O tensor, then
``execute_async_v3`` on a CUDA stream; a batch larger than ``max_batch`` runs in chunks.

Options: ``cache_dir`` (default :func:`engine_cache.default_cache_dir`), ``max_batch`` (default 4),
``opt_batch`` (default 1), ``workspace_mb`` (default 1024), ``fp16`` (default False), ``timing_cache``
(True: beside the engines; a path; False: none), ``builder_optimization_level`` (0-5; default: TensorRT's),
``input_ranges`` (``{input: {axis: (min, opt, max)}}``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import sha256_file
from . import engine_cache
from .base import Backend, BackendError, check_options, import_toolkit

__all__ = [
    "BuildSettings",
    "TensorRTBackend",
    "build_engine",
    "bundle_ranges",
    "network_flags",
]

log = logging.getLogger(__name__)

_HINT = "on a Jetson, TensorRT and pycuda come with JetPack"
_PRECISION_FLAGS = ("FP16", "INT8", "BF16", "FP8")


def bundle_ranges(inputs: Any, window: int) -> dict[str, dict[int, tuple[int, int, int]]]:
    """``input_ranges`` for a bundle model's inputs (manifest ``TensorSpec`` s): a ``"K"`` axis is 1 .. ``window``
    (the ring fills from one feature; ``window`` is the usual length)."""
    ranges: dict[str, dict[int, tuple[int, int, int]]] = {}
    for spec in inputs:
        for axis, dim in enumerate(spec.shape):
            if axis > 0 and dim == "K":
                ranges.setdefault(spec.name, {})[axis] = (1, window, window)
    return ranges


class BuildSettings:
    """What an engine build depends on besides the ONNX file (all of it goes into the engine's cache key)."""

    def __init__(self, opts: dict[str, Any], fmt: str) -> None:
        self.max_batch = _int_option(opts, "max_batch", 4, 1, 4096)
        self.opt_batch = min(_int_option(opts, "opt_batch", 1, 1, 4096), self.max_batch)
        self.workspace_mb = _int_option(opts, "workspace_mb", 1024, 16, 1 << 20)
        level = opts.get("builder_optimization_level")
        self.optimization_level = (
            None if level is None else _int_option(opts, "builder_optimization_level", 3, 0, 5)
        )
        fp16 = opts.get("fp16", False)
        if not isinstance(fp16, bool):
            raise BackendError(f"tensorrt option fp16 must be true or false, got {fp16!r}")
        if fp16 and fmt == "onnx-qdq":
            raise BackendError(
                "tensorrt option fp16 applies to FP32 ONNX models; an INT8 Q/DQ model is built strongly typed "
                "(its precision is in the graph)"
            )
        self.precision = "int8" if fmt == "onnx-qdq" else "fp16" if fp16 else "fp32"
        self.ranges = _ranges_option(opts.get("input_ranges") or {})
        cache = opts.get("timing_cache", True)
        if not isinstance(cache, (bool, str, Path)) or cache == "":
            raise BackendError(
                f"tensorrt option timing_cache must be true, false or a file path, got {cache!r}"
            )
        self.timing_cache = Path(cache).expanduser() if isinstance(cache, (str, Path)) else cache

    def key_text(self) -> str:
        """The precision and build settings as one string (readable start; the key's digest covers all)."""
        level = "d" if self.optimization_level is None else self.optimization_level
        ranges = json.dumps(
            {n: {str(a): r for a, r in sorted(ax.items())} for n, ax in sorted(self.ranges.items())}
        )
        return f"{self.precision}-o{level}-w{self.workspace_mb}-b{self.opt_batch}-{ranges}"


def _int_option(opts: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = opts.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BackendError(f"tensorrt option {key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _ranges_option(value: Any) -> dict[str, dict[int, tuple[int, int, int]]]:
    bad = BackendError(
        f"tensorrt option input_ranges must map input names to {{axis: (min, opt, max)}} with "
        f"1 <= min <= opt <= max, got {value!r}"
    )
    if not isinstance(value, Mapping):
        raise bad
    out: dict[str, dict[int, tuple[int, int, int]]] = {}
    for name, axes in value.items():
        if not isinstance(name, str) or not isinstance(axes, Mapping):
            raise bad
        for axis, r in axes.items():
            ok = isinstance(axis, int) and axis >= 1 and isinstance(r, (tuple, list)) and len(r) == 3
            if not ok or not all(isinstance(v, int) and not isinstance(v, bool) for v in r):
                raise bad
            if not 1 <= r[0] <= r[1] <= r[2]:
                raise bad
            out.setdefault(name, {})[axis] = (int(r[0]), int(r[1]), int(r[2]))
    return out


def network_flags(trt: Any, precision: str) -> tuple[int, list[Any]]:
    """``(create_network flags, builder flags)`` for ``precision``, by what this TensorRT has."""
    if precision == "fp16":
        fp16 = getattr(trt.BuilderFlag, "FP16", None)
        if fp16 is None:
            raise BackendError(
                f"TensorRT {trt.__version__} has no BuilderFlag.FP16 (it builds strongly typed networks only): an "
                "FP16 engine needs an FP16 ONNX model, which bundles do not hold; use precision int8 or fp32"
            )
        return 0, [fp16]  # weakly typed: FP16 kernels allowed for the FP32 layers
    strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly is None:
        raise BackendError(
            f"TensorRT {trt.__version__} has no strongly typed networks (NetworkDefinitionCreationFlag."
            "STRONGLY_TYPED): the INT8 Q/DQ and FP32 engines need TensorRT 10 or later"
        )
    return 1 << int(strongly), []


def _profile_shapes(
    name: str, shape: tuple[int, ...], s: BuildSettings, path: Path
) -> tuple[tuple[int, ...], ...]:
    ranges = s.ranges.get(name, {})
    lo, opt, hi = [], [], []
    for axis, dim in enumerate(shape):
        if dim >= 0:
            r = (dim, dim, dim)
        elif axis == 0:
            r = (1, s.opt_batch, s.max_batch)
        elif axis in ranges:
            r = ranges[axis]
        else:
            raise BackendError(
                f"{path.name}: input {name} {shape} has dynamic axis {axis} with no range (tensorrt option "
                f"input_ranges {{{name!r}: {{{axis}: (min, opt, max)}}}})"
            )
        for out, v in zip((lo, opt, hi), r, strict=True):
            out.append(v)
    return tuple(lo), tuple(opt), tuple(hi)


def build_engine(trt: Any, onnx_path: Path, s: BuildSettings, timing_cache: Path | None) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine; the timing cache file (if any) is loaded and saved."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    net_flags, builder_flags = network_flags(trt, s.precision)
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, s.workspace_mb << 20)
    if s.optimization_level is not None:
        config.builder_optimization_level = s.optimization_level
    for flag in builder_flags:
        config.set_flag(flag)
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    unknown = sorted(set(s.ranges) - set(inputs))
    if unknown:
        raise BackendError(f"{onnx_path.name}: tensorrt option input_ranges names unknown input(s) {unknown}")
    profile = builder.create_optimization_profile()
    for name, shape in inputs.items():
        profile.set_shape(name, *_profile_shapes(name, shape, s, onnx_path))
    config.add_optimization_profile(profile)
    if timing_cache is not None:
        data = timing_cache.read_bytes() if timing_cache.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(data), False)  # a cache from another GPU: not used
    log.info("building a TensorRT engine for %s (%s, max batch %d, ranges %s): this takes minutes once",
             onnx_path.name, s.precision, s.max_batch, s.ranges or "-")  # fmt: skip
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine for {onnx_path} (see the TensorRT log above)")
    if timing_cache is not None:
        engine_cache.write_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


class TensorRTBackend(Backend):
    """A deserialized TensorRT engine with one execution context, one CUDA stream and reused device buffers."""

    kind = "tensorrt"
    formats = ("onnx-qdq", "onnx")
    default_device = "GPU"
    options = ("cache_dir", "max_batch", "opt_batch", "workspace_mb", "fp16", "timing_cache",
               "builder_optimization_level", "input_ranges")  # fmt: skip

    def __init__(
        self, trt: Any, cuda: Any, cuda_ctx: Any, engine: Any, name: str, settings: BuildSettings
    ) -> None:
        self._trt, self._cuda, self._ctx, self._engine = trt, cuda, cuda_ctx, engine
        self._name = name
        self.max_batch = settings.max_batch
        self.precision = settings.precision
        self._context = engine.create_execution_context()
        self._stream = cuda.Stream()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self._inputs = [n for n in names if is_input[n]]
        self._outputs = [n for n in names if not is_input[n]]
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._buffers: dict[str, tuple[Any, int]] = {}  # name -> (device allocation, bytes)

    @classmethod
    def from_model_file(
        cls,
        model_path: str | Path,
        fmt: str = "onnx-qdq",
        *,
        device: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TensorRTBackend:
        path = cls.check_model_file(model_path, fmt)
        opts = check_options(options, cls.options, cls.kind)
        settings = BuildSettings(opts, fmt)
        cache_dir = Path(opts.get("cache_dir") or engine_cache.default_cache_dir()).expanduser()
        device = (device or cls.default_device).upper()
        index = device.replace("CUDA", "GPU").removeprefix("GPU").lstrip(":.") or "0"
        if not index.isdigit():
            raise BackendError(f"tensorrt device must be 'GPU' or 'GPU:<index>', got {device!r}")

        trt = import_toolkit("tensorrt", backend=cls.kind, extra="jetson", hint=_HINT)
        cuda = import_toolkit("pycuda.driver", backend=cls.kind, extra="jetson", hint=_HINT)
        cuda.init()
        gpu = cuda.Device(int(index))
        cuda_ctx = gpu.retain_primary_context()
        cuda_ctx.push()
        try:
            key = engine_cache.engine_key(
                gpu.name(), trt.__version__, sha256_file(path), settings.key_text(), settings.max_batch
            )
            engine_file = engine_cache.engine_path(cache_dir, key)
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            engine = None
            if engine_file.is_file():
                engine = runtime.deserialize_cuda_engine(engine_file.read_bytes())
                if engine is None:
                    log.warning("cached TensorRT engine %s does not load; rebuilding it", engine_file)
            if engine is None:
                timing = settings.timing_cache
                if timing is True:
                    timing = engine_cache.timing_cache_path(cache_dir, gpu.name(), trt.__version__)
                data = build_engine(trt, path, settings, timing or None)
                engine_cache.write_atomic(engine_file, data)
                log.info("cached TensorRT engine %s", engine_file)
                engine = runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise BackendError(f"TensorRT built but cannot load the engine for {path}")
            return cls(trt, cuda, cuda_ctx, engine, path.name, settings)
        finally:
            cuda_ctx.pop()

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    def _buffer(self, name: str, nbytes: int) -> Any:
        alloc, size = self._buffers.get(name, (None, 0))
        if alloc is None or size < nbytes:
            alloc = self._cuda.mem_alloc(max(nbytes, 1))
            self._buffers[name] = (alloc, nbytes)
        return alloc

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = next(iter(inputs.values())).shape[0]
        if batch <= self.max_batch:
            return self._run_once(inputs)
        parts = [
            self._run_once({n: a[i : i + self.max_batch] for n, a in inputs.items()})
            for i in range(0, batch, self.max_batch)
        ]
        return {n: np.concatenate([p[n] for p in parts]) for n in self._outputs}

    def _run_once(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda, ctx = self._cuda, self._context
        self._ctx.push()
        try:
            arrays = {n: np.ascontiguousarray(inputs[n], dtype=self._dtypes[n]) for n in self._inputs}
            for name, arr in arrays.items():  # every input shape first: output shapes follow from them
                if not ctx.set_input_shape(name, arr.shape):
                    raise BackendError(
                        f"tensorrt engine {self._name}: input {name} shape {arr.shape} is outside the engine's "
                        "optimization profile"
                    )
            for name, arr in arrays.items():
                dev = self._buffer(name, arr.nbytes)
                cuda.memcpy_htod(dev, arr)
                ctx.set_tensor_address(name, int(dev))
            outputs = {}
            for name in self._outputs:
                shape = tuple(ctx.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise BackendError(
                        f"tensorrt engine {self._name}: output {name} has no shape yet {shape}"
                    )
                outputs[name] = np.empty(shape, self._dtypes[name])
                ctx.set_tensor_address(name, int(self._buffer(name, outputs[name].nbytes)))
            if not ctx.execute_async_v3(self._stream.handle):
                raise BackendError(f"tensorrt failed to run {self._name}")
            self._stream.synchronize()
            for name, host in outputs.items():
                cuda.memcpy_dtoh(host, self._buffers[name][0])
        finally:
            self._ctx.pop()
        return outputs

    def close(self) -> None:
        self._buffers.clear()
        self._context = None
        self._engine = None
