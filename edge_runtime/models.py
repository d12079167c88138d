"""A bundle's backbone and head loaded onto a backend (:func:`load_models`), falling back to the fp32 files
with a warning when the reduced-precision ones cannot be used."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .backends import Backend, BackendError, BackendUnavailable, create_backend, pick_backend
from .bundle import Bundle

__all__ = ["LoadedModels", "load_models"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModels:
    """The backbone and head as loaded, and what was actually used (after any fallback)."""

    backbone: Backend
    head: Backend
    backend: str  # "openvino" | "onnxruntime" | "tensorrt"
    precision: str  # "int8" | "fp16" | "fp32"

    def close(self) -> None:
        self.backbone.close()
        self.head.close()


def _load_pair(bundle: Bundle, precision: str, backend: str | None, device: str | None,
               options: Mapping[str, Any] | None) -> LoadedModels:  # fmt: skip
    file_precision = "fp32" if precision == "fp16" else precision  # TensorRT builds fp16 from the fp32 ONNX
    files = [bundle.model(role, file_precision) for role in ("backbone", "head")]
    kind = pick_backend(files[0].format, backend)
    opts = dict(options or {})
    if precision == "fp16":
        opts["fp16"] = True
    nets = []
    try:
        for mf in files:
            model_opts = dict(opts)
            if kind == "tensorrt":  # the head's K: the ring holds 1 .. window features
                from .backends.tensorrt import bundle_ranges

                model_opts.setdefault("input_ranges", bundle_ranges(mf.inputs, bundle.window.num_snippets))
            nets.append(create_backend(kind, mf.path, fmt=mf.format, device=device, options=model_opts))
    except BaseException:
        for net in nets:
            net.close()
        raise
    return LoadedModels(nets[0], nets[1], kind, precision)


def load_models(
    bundle: Bundle,
    *,
    precision: str | None = None,
    backend: str | None = None,
    device: str | None = None,
    options: Mapping[str, Any] | None = None,
    fallback: bool = True,
) -> LoadedModels:
    """Load the bundle's backbone and head at ``precision`` (default: the bundle's) with ``backend`` (default:
    the one for the files' format). When the reduced-precision files cannot be loaded (not in the bundle, or
    the backend refuses them) a warning is logged and the fp32 files, which every bundle has, are used (with
    ``fallback=False`` the error is raised instead). A missing toolkit (:class:`BackendUnavailable`) is never
    a reason to fall back: it is raised."""
    wanted = precision or bundle.precision
    if wanted != "fp32":
        try:
            if wanted == "fp16" and bundle.target != "jetson":
                raise BackendError(
                    f"fp16 runs only on target 'jetson' (TensorRT), this bundle is {bundle.target!r}"
                )
            return _load_pair(bundle, wanted, backend, device, options)
        except BackendUnavailable:
            raise
        except (BackendError, ValueError) as exc:  # BundleError (no such files) is a ValueError
            if not fallback:
                raise
            log.warning("cannot use the %s models (%s); falling back to fp32", wanted, exc)
    models = _load_pair(bundle, "fp32", backend, device, options)
    log.info("models: %s backbone + head at %s on %s", models.backend, models.precision, device or "default")
    return models
