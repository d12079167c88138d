"""The one inference interface the runtime talks to, whatever toolkit runs the model.

One abstract :class:`Backend` (load a model file, say its input and output names, run it on named numpy
arrays, close it) and one subclass per toolkit in its own module (``onnxruntime``, ``openvino``,
``tensorrt``). Toolkits are optional: each module imports its library inside :meth:`Backend.from_model_file`
with :func:`import_toolkit`, which turns a missing library into a one-line :class:`BackendUnavailable`
naming the extra to install.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "MODEL_FORMATS",
    "MODEL_SUFFIXES",
    "check_options",
    "import_toolkit",
]

log = logging.getLogger(__name__)

# Model file formats a bundle can hold (``ModelFile.format``) and their files' suffix: FP32 ONNX, INT8 Q/DQ
# ONNX, OpenVINO IR (its weights in a .bin file beside the .xml).
MODEL_SUFFIXES = {"onnx": ".onnx", "onnx-qdq": ".onnx", "openvino": ".xml"}
MODEL_FORMATS = tuple(MODEL_SUFFIXES)


class BackendError(RuntimeError):
    """A model that cannot be loaded or run, or a bad backend option; the message is one line."""


class BackendUnavailable(BackendError):
    """The toolkit a backend needs is not installed; the message says what to ``pip install``."""


def import_toolkit(module: str, *, backend: str, extra: str, hint: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`BackendUnavailable` naming ``pip install i3d-mtn-edge[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        more = f" ({hint})" if hint else ""
        raise BackendUnavailable(
            f"the {backend} backend needs the Python package {module!r}, which cannot be imported ({exc}): "
            f"pip install i3d-mtn-edge[{extra}]{more}"
        ) from None


def check_options(options: Mapping[str, Any] | None, known: Iterable[str], backend: str) -> dict[str, Any]:
    """A copy of ``options``; an option this backend does not know is an error (never silently ignored)."""
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise BackendError(f"unknown {backend} option(s) {unknown}; known: {sorted(known)}")
    return opts


class Backend(ABC):
    """A loaded model: named numpy inputs in, named numpy outputs out.

    >>> from edge_runtime.backends import create_backend  # doctest: +SKIP
    >>> with create_backend("onnxruntime", "backbone.onnx") as net:  # doctest: +SKIP
    ...     feats = net.infer({net.input_names[0]: snippets})[net.output_names[0]]
    """

    kind: ClassVar[str] = ""  # "onnxruntime" | "openvino" | "tensorrt"
    formats: ClassVar[tuple[str, ...]] = ()  # model formats this backend loads
    default_device: ClassVar[str] = "CPU"
    options: ClassVar[tuple[str, ...]] = ()  # option names ``from_model_file`` accepts

    @classmethod
    def check_model_file(cls, path: str | Path, fmt: str) -> Path:
        """``path`` as a :class:`Path` when this backend loads format ``fmt`` and the file (with its weights
        file, for OpenVINO IR) is there with the format's suffix; else a one-line :class:`BackendError`."""
        p = Path(path)
        if fmt not in MODEL_FORMATS:
            raise BackendError(f"unknown model format {fmt!r} for {p}: expected one of {MODEL_FORMATS}")
        if fmt not in cls.formats:
            raise BackendError(
                f"the {cls.kind} backend cannot load a {fmt!r} model ({p}); it loads {cls.formats}"
            )
        suffix = MODEL_SUFFIXES[fmt]
        if p.suffix.lower() != suffix:
            raise BackendError(
                f"the {cls.kind} backend cannot load {p} as {fmt!r}: expected a {suffix} file, "
                f"got {p.suffix or 'no suffix'!r}"
            )
        if not p.is_file():
            raise BackendError(f"model file not found: {p}")
        if fmt == "openvino" and not p.with_suffix(".bin").is_file():
            raise BackendError(f"OpenVINO IR {p} has no weights file {p.with_suffix('.bin').name} beside it")
        return p

    @classmethod
    @abstractmethod
    def from_model_file(
        cls,
        model_path: str | Path,
        fmt: str = "onnx",
        *,
        device: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Backend:
        """Load ``model_path`` (of format ``fmt``, checked by :meth:`check_model_file`) on ``device`` (the
        backend's default when None)."""

    @property
    @abstractmethod
    def input_names(self) -> list[str]:
        """The model's input names, in the model's order."""

    @property
    @abstractmethod
    def output_names(self) -> list[str]:
        """The model's output names, in the model's order."""

    @abstractmethod
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on checked inputs; return every output by name (arrays the caller may keep)."""

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model: ``{input name: array}`` (all inputs) -> ``{output name: array}`` (all outputs)."""
        missing = [n for n in self.input_names if n not in inputs]
        extra = sorted(set(inputs) - set(self.input_names))
        if missing or extra:
            raise BackendError(
                f"{self.kind} model {self.name}: expected inputs {self.input_names}, "
                f"got {sorted(inputs)} (missing {missing}, unknown {extra})"
            )
        arrays = {n: np.ascontiguousarray(inputs[n]) for n in self.input_names}
        return self._run(arrays)

    @property
    def name(self) -> str:
        """A short name for messages (the model file's name)."""
        return getattr(self, "_name", type(self).__name__)

    def close(self) -> None:  # noqa: B027 - optional hook, most toolkits free memory on garbage collection
        """Free the model's resources; the backend cannot be used afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} inputs={self.input_names} outputs={self.output_names}>"
