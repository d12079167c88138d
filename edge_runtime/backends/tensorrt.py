"""TensorRT backend (Jetson / NVIDIA GPUs): builds an engine from the bundle's INT8 Q/DQ ONNX on the device.

Engines do not move between GPUs or TensorRT versions, so the device builds its own the first time and keeps
it in a cache folder, named by :func:`engine_cache.engine_key`; a timing cache makes rebuilds fast. Written
against the TensorRT 10 Python API with pycuda buffers (both come with JetPack; ``pip install
i3d-mtn-edge[jetson]`` elsewhere); CI has no GPU, so only the cache keying and the missing-library message
are tested there.

Build: ``trt.Builder`` + ``OnnxParser``; ``BuilderConfig`` with a workspace memory-pool limit; the INT8 flag
for a Q/DQ graph (explicit quantization: the scales are in the graph, no calibrator) plus FP16 for the layers
outside Q/DQ pairs (option ``fp16``, default on); one optimization profile for the dynamic batch (1, opt,
``max_batch``). Run: ``trt.Runtime`` deserializes, ``set_input_shape`` + ``set_tensor_address`` +
``execute_async_v3`` on a CUDA stream.

Options: ``cache_dir`` (default :func:`engine_cache.default_cache_dir`), ``max_batch`` (default 4),
``opt_batch`` (default 1), ``workspace_mb`` (default 1024), ``fp16`` (default True).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import engine_cache
from .base import Backend, BackendError, check_model_path, check_options, import_toolkit

__all__ = ["TensorRTBackend", "build_engine", "file_sha256"]

log = logging.getLogger(__name__)

_HINT = "on a Jetson, TensorRT and pycuda come with JetPack"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_engine(trt: Any, onnx_path: Path, *, int8: bool, fp16: bool, max_batch: int, opt_batch: int,
                 workspace_mb: int, timing_cache: Path) -> bytes:  # fmt: skip
    """Parse ``onnx_path`` and build a serialized engine; the timing cache file is loaded and saved."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)  # explicit quantization: Q/DQ nodes carry the scales
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        if any(d < 0 for d in rest):
            raise BackendError(
                f"{onnx_path}: input {tensor.name} has a dynamic non-batch dimension {tuple(tensor.shape)}"
            )
        profile.set_shape(tensor.name, (1, *rest), (opt_batch, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    data = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, False)  # ignore_mismatch=False: a cache from another GPU is not used
    log.info("building a TensorRT engine for %s (int8=%s fp16=%s max_batch=%d): this takes minutes once",
             onnx_path.name, int8, fp16, max_batch)  # fmt: skip
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine for {onnx_path} (see the TensorRT log above)")
    engine_cache.write_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def _int_option(opts: dict[str, Any], key: str, default: int, low: int) -> int:
    value = opts.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BackendError(f"tensorrt option {key} must be an integer >= {low}, got {value!r}")
    return value


class TensorRTBackend(Backend):
    """A deserialized TensorRT engine with one execution context, one CUDA stream and reused device buffers."""

    kind = "tensorrt"
    formats = ("onnx-qdq", "onnx")
    default_device = "GPU"
    options = ("cache_dir", "max_batch", "opt_batch", "workspace_mb", "fp16")

    def __init__(self, trt: Any, cuda: Any, cuda_ctx: Any, engine: Any, name: str, max_batch: int) -> None:
        self._trt, self._cuda, self._ctx, self._engine = trt, cuda, cuda_ctx, engine
        self._name = name
        self.max_batch = max_batch
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
        path = check_model_path(model_path, fmt, (".onnx",), cls.kind)
        if fmt not in cls.formats:
            raise BackendError(
                f"the tensorrt backend builds engines from {cls.formats} models, not {fmt!r} ({path})"
            )
        opts = check_options(options, cls.options, cls.kind)
        max_batch = _int_option(opts, "max_batch", 4, 1)
        opt_batch = min(_int_option(opts, "opt_batch", 1, 1), max_batch)
        workspace_mb = _int_option(opts, "workspace_mb", 1024, 16)
        fp16 = bool(opts.get("fp16", True))
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
            int8 = fmt == "onnx-qdq"
            precision = ("int8" if int8 else "fp32") + ("+fp16" if fp16 else "")
            key = engine_cache.engine_key(
                gpu.name(), trt.__version__, file_sha256(path), precision, max_batch
            )
            engine_file = engine_cache.engine_path(cache_dir, key)
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            engine = None
            if engine_file.is_file():
                engine = runtime.deserialize_cuda_engine(engine_file.read_bytes())
                if engine is None:
                    log.warning("cached TensorRT engine %s does not load; rebuilding it", engine_file)
            if engine is None:
                timing = engine_cache.timing_cache_path(cache_dir, gpu.name(), trt.__version__)
                data = build_engine(trt, path, int8=int8, fp16=fp16, max_batch=max_batch, opt_batch=opt_batch,
                                    workspace_mb=workspace_mb, timing_cache=timing)  # fmt: skip
                engine_cache.write_atomic(engine_file, data)
                log.info("cached TensorRT engine %s", engine_file)
                engine = runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise BackendError(f"TensorRT built but cannot load the engine for {path}")
            return cls(trt, cuda, cuda_ctx, engine, path.name, max_batch)
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
        if batch > self.max_batch:
            raise BackendError(
                f"tensorrt engine {self._name} was built for batches up to {self.max_batch}, got {batch}"
            )
        cuda, ctx = self._cuda, self._context
        self._ctx.push()
        try:
            for name in self._inputs:
                arr = np.ascontiguousarray(inputs[name], dtype=self._dtypes[name])
                ctx.set_input_shape(name, arr.shape)
                dev = self._buffer(name, arr.nbytes)
                cuda.memcpy_htod(dev, arr)
                ctx.set_tensor_address(name, int(dev))
            outputs = {}
            for name in self._outputs:
                outputs[name] = np.empty(tuple(ctx.get_tensor_shape(name)), self._dtypes[name])
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
