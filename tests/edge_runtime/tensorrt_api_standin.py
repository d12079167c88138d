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

Underneath, the "engine" runs the ONNX file with ONNX Runtime on the CPU, so scores are real. This module
builds the two modules; the builder's network, profiles, config and build checks are in
``tensorrt_standin_builder``, the engine and its execution context in ``tensorrt_standin_engine``.
"""

from __future__ import annotations

import json
import types
from typing import Any

import numpy as np
import onnx

from tests.edge_runtime.tensorrt_standin_builder import BuilderConfig, IntEnum, Network, Profile, check_build
from tests.edge_runtime.tensorrt_standin_engine import Engine

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
        trt.NetworkDefinitionCreationFlag = IntEnum(STRONGLY_TYPED=1)
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

            def create_network(self, flags: int = 0) -> Network:
                strongly = api.major == "11" or bool(
                    flags & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
                )
                api.record("create_network", {"flags": flags, "strongly_typed": strongly})
                return Network(strongly)

            def create_builder_config(self) -> BuilderConfig:
                return BuilderConfig(api)

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes | None:
                api.record("build_serialized_network", {"flags": sorted(config.flags)})
                problems = check_build(network, config)
                for p in problems:
                    api.violate(p)
                if problems:
                    return None
                profile = config.profiles[0]
                return json.dumps({"onnx": network.onnx_path, "profile": profile.shapes}).encode()

        class OnnxParser:
            def __init__(self, network: Network, logger: Logger) -> None:
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

            def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
                try:
                    plan = json.loads(bytes(data))
                except ValueError:
                    return None
                return Engine(api, plan)

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
