"""The runtime side of the TensorRT stand-in (:mod:`tests.edge_runtime.tensorrt_api_standin`): a deserialized
engine and its execution context, which run the ONNX file with ONNX Runtime on the CPU and check the documented
call order (input shapes, then tensor addresses, then ``execute_async_v3``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnxruntime as ort

if TYPE_CHECKING:
    from tests.edge_runtime.tensorrt_api_standin import StandinAPI


class Engine:
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

    def create_execution_context(self) -> ExecutionContext:
        return ExecutionContext(self)


class ExecutionContext:
    def __init__(self, engine: Engine) -> None:
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
