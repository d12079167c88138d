"""The builder side of the TensorRT stand-in (:mod:`tests.edge_runtime.tensorrt_api_standin`): the network an
ONNX file parses into, optimization profiles, the builder config and the checks a build makes."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.edge_runtime.tensorrt_api_standin import StandinAPI

PRECISION = ("FP16", "INT8", "BF16", "FP8")


class IntEnum(types.SimpleNamespace):
    """Enum members that ``int()`` accepts, as pybind11 enums are."""


class Tensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape, self.dtype = name, shape, "FLOAT"


def dims(value_info: Any) -> tuple[int, ...]:
    return tuple(
        d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim
    )


class Network:
    def __init__(self, strongly_typed: bool) -> None:
        self.strongly_typed = strongly_typed
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.onnx_path = ""

    def load(self, path: str, model: Any) -> None:
        inits = {t.name for t in model.graph.initializer}
        self.onnx_path = path
        self.inputs = [Tensor(v.name, dims(v)) for v in model.graph.input if v.name not in inits]
        self.outputs = [Tensor(v.name, dims(v)) for v in model.graph.output]

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> Tensor:
        return self.inputs[i]


class Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, list[list[int]]] = {}

    def set_shape(self, name: str, low: Any, opt: Any, high: Any) -> None:
        self.shapes[name] = [list(low), list(opt), list(high)]


class TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data) or b"standin-timing-cache"

    def serialize(self) -> bytes:
        return self.data


class BuilderConfig:
    def __init__(self, api: StandinAPI) -> None:
        self.api = api
        self.flags: set[str] = set()
        self.profiles: list[Profile] = []
        self.pools: dict[str, int] = {}
        self._level = 3  # TensorRT's default
        self.timing_cache: TimingCache | None = None

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

    def add_optimization_profile(self, profile: Profile) -> int:
        self.api.record("add_optimization_profile", profile.shapes)
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> TimingCache:
        self.api.record("create_timing_cache", len(data))
        return TimingCache(data)

    def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
        self.api.record("set_timing_cache", ignore_mismatch)
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> TimingCache | None:
        return self.timing_cache


def check_build(network: Network, config: BuilderConfig) -> list[str]:
    problems = []
    if network.strongly_typed:
        used = sorted(f for f in config.flags if f in PRECISION)
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
