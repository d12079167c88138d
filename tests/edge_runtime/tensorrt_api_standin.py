"""A stand-in for the ``tensorrt`` and ``pycuda.driver`` Python modules, written from NVIDIA's documentation.

It proves that the backend makes the documented calls in the documented order; it proves nothing about
TensorRT itself (no GPU here). Two flavours, from the TensorRT Python API reference and the "Migrating from
TensorRT 10.x to 11.x" guide:

- ``"10"``: ``BuilderFlag.FP16`` / ``INT8`` exist (weak typing); ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
  opts in to strong typing, and a strongly typed network refuses precision builder flags.
- ``"11"``: the weak-typing flags (``FP16``, ``INT8``, ``BF16``, ``FP8``, ``OBEY/PREFER_PRECISION_CONSTRAINTS``,
  ``DIRECT_IO``) are gone (an ``AttributeError``, as removed APIs are); every network is strongly typed and
  ``STRONGLY_TYPED`` is accepted and ignored.

Rules enforced (a broken one is recorded in ``api.violations`` and fails as TensorRT does: a build returns
None, ``set_input_shape`` / ``execute_async_v3`` return False):

- a profile for every input, covering every dynamic dimension, with min <= opt <= max and fixed dimensions
  equal to the network's;
- no precision builder flag on a strongly typed network;
- ``builder_optimization_level`` in 0..5; the workspace pool limit set in bytes;
- at run time, every input shape set (within the profile) before output shapes are read or execution starts,
  and an address for every I/O tensor before ``execute_async_v3``.

Underneath, the "engine" runs the ONNX file with ONNX Runtime on the CPU, so scores are real.
"""

from __future__ import annotations

import json
import types
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

__all__ = ["StandinAPI", "install"]

_REMOVED_IN_11 = (
    "FP16",
    "INT8",
    "BF16",
    "FP8",
    "OBEY_PRECISION_CONSTRAINTS",
    "PREFER_PRECISION_CONSTRAINTS",
    "DIRECT_IO",
)
_PRECISION = ("FP16", "INT8", "BF16", "FP8")


class StandinAPI:
    """One installed stand-in: the two modules, the shared fake device memory, and the record of calls."""

    def __init__(self, major: str) -> None:
        if major not in ("10", "11"):
            raise ValueError(f"stand-in flavours are '10' and '11', got {major!r}")
        self.major = major
        self.calls: list[tuple[str, Any]] = []
        self.violations: list[str] = []
        self.memory: dict[int, bytearray] = {}
        self.tensorrt = self._tensorrt_module()
        self.cuda = self._pycuda_module()

    def record(self, name: str, detail: Any = None) -> None:
        self.calls.append((name, detail))

    def violate(self, message: str) -> None:
        self.violations.append(message)

    def called(self, name: str) -> list[Any]:
        return [d for n, d in self.calls if n == name]

    # ---- tensorrt -------------------------------------------------------------------------------------------
    def _tensorrt_module(self) -> types.ModuleType:
        api = self
        trt = types.ModuleType("tensorrt")
        trt.__version__ = "10.3.0" if self.major == "10" else "11.4.0"
        flags = ["TF32", "REFIT", "DEBUG", "GPU_FALLBACK", *_REMOVED_IN_11]
        if self.major == "11":
            flags = [f for f in flags if f not in _REMOVED_IN_11]
        trt.BuilderFlag = types.SimpleNamespace(**{f: f for f in flags})
        trt.NetworkDefinitionCreationFlag = _IntEnum(STRONGLY_TYPED=1)
        trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
        trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
        trt.DataType = types.SimpleNamespace(FLOAT="FLOAT")
        trt.nptype = lambda dtype: {"FLOAT": np.float32}[dtype]

        class Logger:
            WARNING = "WARNING"

            def __init__(self, severity: str = "WARNING") -> None:
                self.severity = severity

        class Builder:
            def __init__(self, logger: Logger) -> None:
                api.record("Builder")

            def create_network(self, flags: int = 0) -> _Network:
                strongly = api.major == "11" or bool(
                    flags & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
                )
                api.record("create_network", {"flags": flags, "strongly_typed": strongly})
                return _Network(strongly)

            def create_builder_config(self) -> _Config:
                return _Config(api)

            def create_optimization_profile(self) -> _Profile:
                return _Profile()

            def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
                api.record("build_serialized_network", {"flags": sorted(config.flags)})
                problems = _check_build(network, config)
                for p in problems:
                    api.violate(p)
                if problems:
                    return None
                profile = config.profiles[0]
                return json.dumps({"onnx": network.onnx_path, "profile": profile.shapes}).encode()

        class OnnxParser:
            def __init__(self, network: _Network, logger: Logger) -> None:
                self.network = network
                self.errors: list[str] = []

            @property
            def num_errors(self) -> int:
                return len(self.errors)

            def get_error(self, i: int) -> str:
                return self.errors[i]

            def parse_from_file(self, path: str) -> bool:
                try:
                    model = onnx.load(path)
                except Exception as exc:
                    self.errors.append(str(exc))
                    return False
                self.network.load(path, model)
                return True

        class Runtime:
            def __init__(self, logger: Logger) -> None:
                pass

            def deserialize_cuda_engine(self, data: bytes) -> _Engine | None:
                try:
                    plan = json.loads(bytes(data))
                except ValueError:
                    return None
                return _Engine(api, plan)

        trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
        return trt

    # ---- pycuda.driver --------------------------------------------------------------------------------------
    def _pycuda_module(self) -> types.ModuleType:
        api = self
        cuda = types.ModuleType("pycuda.driver")
        cuda.init = lambda: api.record("cuda.init")

        class _Context:
            def push(self) -> None:
                pass

            def pop(self) -> None:
                pass

        class Device:
            def __init__(self, index: int) -> None:
                self.index = index

            def name(self) -> str:
                return "Stand-in GPU (no device)"

            def retain_primary_context(self) -> _Context:
                return _Context()

        class Stream:
            handle = 7

            def synchronize(self) -> None:
                pass

        class DeviceAllocation(int):
            pass

        def mem_alloc(nbytes: int) -> DeviceAllocation:
            address = 0x1000 * (len(api.memory) + 1)
            api.memory[address] = bytearray(nbytes)
            return DeviceAllocation(address)

        def memcpy_htod(dev: int, host: np.ndarray) -> None:
            data = np.ascontiguousarray(host).tobytes()
            api.memory[int(dev)][: len(data)] = data

        def memcpy_dtoh(host: np.ndarray, dev: int) -> None:
            raw = bytes(api.memory[int(dev)][: host.nbytes])
            host[...] = np.frombuffer(raw, host.dtype).reshape(host.shape)

        cuda.Device, cuda.Stream, cuda.mem_alloc = Device, Stream, mem_alloc
        cuda.memcpy_htod, cuda.memcpy_dtoh = memcpy_htod, memcpy_dtoh
        return cuda


class _IntEnum(types.SimpleNamespace):
    """Enum members that ``int()`` accepts, as pybind11 enums are."""


class _Tensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape, self.dtype = name, shape, "FLOAT"


def _dims(value_info: Any) -> tuple[int, ...]:
    return tuple(
        d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim
    )


class _Network:
    def __init__(self, strongly_typed: bool) -> None:
        self.strongly_typed = strongly_typed
        self.inputs: list[_Tensor] = []
        self.outputs: list[_Tensor] = []
        self.onnx_path = ""

    def load(self, path: str, model: Any) -> None:
        inits = {t.name for t in model.graph.initializer}
        self.onnx_path = path
        self.inputs = [_Tensor(v.name, _dims(v)) for v in model.graph.input if v.name not in inits]
        self.outputs = [_Tensor(v.name, _dims(v)) for v in model.graph.output]

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, list[list[int]]] = {}

    def set_shape(self, name: str, low: Any, opt: Any, high: Any) -> None:
        self.shapes[name] = [list(low), list(opt), list(high)]


class _TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data) or b"standin-timing-cache"

    def serialize(self) -> bytes:
        return self.data


class _Config:
    def __init__(self, api: StandinAPI) -> None:
        self.api = api
        self.flags: set[str] = set()
        self.profiles: list[_Profile] = []
        self.pools: dict[str, int] = {}
        self._level = 3  # TensorRT's default
        self.timing_cache: _TimingCache | None = None

    def set_flag(self, flag: str) -> None:
        self.api.record("set_flag", flag)
        self.flags.add(flag)

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.api.record("set_memory_pool_limit", (pool, size))
        if not isinstance(size, int) or size < 1 << 20:
            self.api.violate(f"memory pool limit {size!r} is not a size in bytes")
        self.pools[pool] = size

    @property
    def builder_optimization_level(self) -> int:
        return self._level

    @builder_optimization_level.setter
    def builder_optimization_level(self, level: int) -> None:
        self.api.record("builder_optimization_level", level)
        if not isinstance(level, int) or not 0 <= level <= 5:
            self.api.violate(f"builder_optimization_level {level!r} is not in 0..5")
        self._level = level

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.api.record("add_optimization_profile", profile.shapes)
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> _TimingCache:
        self.api.record("create_timing_cache", len(data))
        return _TimingCache(data)

    def set_timing_cache(self, cache: _TimingCache, ignore_mismatch: bool) -> bool:
        self.api.record("set_timing_cache", ignore_mismatch)
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> _TimingCache | None:
        return self.timing_cache


def _check_build(network: _Network, config: _Config) -> list[str]:
    problems = []
    if network.strongly_typed:
        used = sorted(f for f in config.flags if f in _PRECISION)
        if used:
            problems.append(f"precision builder flag(s) {used} on a strongly typed network")
    dynamic = [t for t in network.inputs if any(d < 0 for d in t.shape)]
    if dynamic and not config.profiles:
        problems.append(f"dynamic inputs {[t.name for t in dynamic]} and no optimization profile")
    for profile in config.profiles:
        for t in network.inputs:
            if t.name not in profile.shapes:
                problems.append(f"profile has no shapes for input {t.name}")
                continue
            low, opt, high = profile.shapes[t.name]
            if not len(low) == len(opt) == len(high) == len(t.shape):
                problems.append(f"profile shapes of {t.name} have the wrong rank for {t.shape}")
                continue
            for axis, d in enumerate(t.shape):
                lo, op, hi = low[axis], opt[axis], high[axis]
                if d >= 0 and not lo == op == hi == d:
                    problems.append(f"profile of {t.name} axis {axis} is not the fixed size {d}")
                elif not 1 <= lo <= op <= hi:
                    problems.append(f"profile of {t.name} axis {axis} is not 1 <= min <= opt <= max")
    return problems


class _Engine:
    def __init__(self, api: StandinAPI, plan: dict[str, Any]) -> None:
        self.api = api
        self.profile = plan["profile"]
        self.session = ort.InferenceSession(plan["onnx"], providers=["CPUExecutionProvider"])
        model = onnx.load(plan["onnx"], load_external_data=False)
        self.symbols = {
            v.name: tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim)
            for v in [*model.graph.input, *model.graph.output]
        }
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    @property
    def num_io_tensors(self) -> int:
        return len(self.inputs) + len(self.outputs)

    def get_tensor_name(self, i: int) -> str:
        return [*self.inputs, *self.outputs][i]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if name in self.inputs else "OUTPUT"

    def get_tensor_dtype(self, name: str) -> str:
        return "FLOAT"

    def create_execution_context(self) -> _Context:
        return _Context(self)


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.engine, self.api = engine, engine.api
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: Any) -> bool:
        shape = tuple(int(d) for d in shape)
        self.api.record("set_input_shape", (name, shape))
        low, _, high = self.engine.profile[name]
        if len(shape) != len(low) or any(
            not lo <= d <= hi for d, lo, hi in zip(shape, low, high, strict=True)
        ):
            self.api.violate(f"input {name} shape {shape} is outside the profile {low}..{high}")
            return False
        self.shapes[name] = shape
        return True

    def _sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for name in self.engine.inputs:
            for sym, d in zip(self.engine.symbols[name], self.shapes.get(name, ()), strict=False):
                if isinstance(sym, str):
                    sizes[sym] = d
        return sizes

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self.engine.inputs:
            return self.shapes.get(name, tuple(-1 for _ in self.engine.symbols[name]))
        missing = [n for n in self.engine.inputs if n not in self.shapes]
        if missing:
            self.api.violate(f"output {name} shape read before the input shapes of {missing} were set")
        sizes = self._sizes()
        return tuple(sizes.get(d, -1) if isinstance(d, str) else d for d in self.engine.symbols[name])

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.api.record("set_tensor_address", name)
        if int(address) not in self.api.memory:
            self.api.violate(f"address of {name} is not a device allocation")
            return False
        self.addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self.api.record("execute_async_v3", stream_handle)
        problems = [f"input {n} has no shape set" for n in self.engine.inputs if n not in self.shapes]
        problems += [
            f"{n} has no address"
            for n in [*self.engine.inputs, *self.engine.outputs]
            if n not in self.addresses
        ]
        for p in problems:
            self.api.violate(p)
        if problems:
            return False
        feeds = {}
        for name in self.engine.inputs:
            shape = self.shapes[name]
            raw = bytes(self.api.memory[self.addresses[name]][: int(np.prod(shape)) * 4])
            feeds[name] = np.frombuffer(raw, np.float32).reshape(shape)
        results = self.engine.session.run(self.engine.outputs, feeds)
        for name, value in zip(self.engine.outputs, results, strict=True):
            if tuple(value.shape) != self.get_tensor_shape(name):
                self.api.violate(
                    f"output {name} is {value.shape}, the context said {self.get_tensor_shape(name)}"
                )
            data = np.ascontiguousarray(value, np.float32).tobytes()
            buffer = self.api.memory[self.addresses[name]]
            if len(buffer) < len(data):
                self.api.violate(f"output {name} buffer holds {len(buffer)} bytes, needs {len(data)}")
                return False
            buffer[: len(data)] = data
        return True


def install(monkeypatch: Any, major: str) -> StandinAPI:
    """Put the stand-in's ``tensorrt``, ``pycuda`` and ``pycuda.driver`` in ``sys.modules`` for one test."""
    import sys

    api = StandinAPI(major)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = api.cuda
    monkeypatch.setitem(sys.modules, "tensorrt", api.tensorrt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", api.cuda)
    return api
