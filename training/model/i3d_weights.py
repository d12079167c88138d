"""Weights for the I3D backbone: load a checkpoint in the published layout, or inflate 2D Inception-v1.

Accepted layout (pytorch-i3d's ``rgb_imagenet.pt`` / ``rgb_charades.pt``): ``Conv3d_1a_7x7.conv3d.weight``,
``Conv3d_1a_7x7.bn.{weight,bias,running_mean,running_var}``, ``Mixed_3b.b0.conv3d.weight``, ... ,
``logits.conv3d.{weight,bias}``. Also accepted: a ``module.`` prefix (DataParallel / DDP checkpoints) and
``Logits.`` for ``logits.``. Checkpoints saved before PyTorch 0.4 have no ``bn.num_batches_tracked``;
those counters are not reported as missing.

Inflation follows the I3D paper (Carreira & Zisserman 2017, section 2.2): a 2D ``k x k`` kernel is repeated
``t`` times along time and divided by ``t``, so a video of one repeated frame gives the 2D response.

No weights are downloaded: files are read with ``torch.load(..., weights_only=True)`` (never unpickled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["LoadReport", "load_i3d_state_dict", "load_i3d_file", "inflate_from_2d"]

_SHOWN = 5  # keys named in an error message before "... (N in all)"


class LoadReport(NamedTuple):
    """What did not load: keys the model has and the checkpoint lacks, the reverse, and shape mismatches."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def _standard_key(key: str) -> str:
    if key.startswith("module."):
        key = key[len("module.") :]
    if key.startswith("Logits."):
        key = "logits." + key[len("Logits.") :]
    return key


def _listing(what: str, keys: tuple[str, ...]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    more = f", ... ({len(keys)} in all)" if len(keys) > _SHOWN else ""
    return f"{len(keys)} {what} ({shown}{more})"


Convert = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None]


def _load(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], convert: Convert, *, strict: bool, source: str
) -> LoadReport:
    """Match ``state_dict`` to ``model`` by name, convert each tensor (``None``: wrong shape), load."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"{source}: expected a state dict (a mapping of names to tensors), got {type(state_dict)}"
        )
    own = model.state_dict()
    given = {_standard_key(k): v for k, v in state_dict.items()}
    loadable: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    for key, value in given.items():
        if key not in own or not isinstance(value, torch.Tensor):
            continue
        converted = convert(value, own[key])
        if converted is None:
            mismatched.append(f"{key}: {tuple(value.shape)} vs model {tuple(own[key].shape)}")
        else:
            loadable[key] = converted
    missing = tuple(
        k
        for k in own
        if k not in given and not k.endswith("num_batches_tracked")  # absent from old checkpoints
    )
    unexpected = tuple(k for k in given if k not in own)
    report = LoadReport(missing, unexpected, tuple(mismatched))
    if not report.ok:
        problems = "; ".join(
            _listing(what, keys)
            for what, keys in (
                ("missing keys", report.missing),
                ("unexpected keys", report.unexpected),
                ("shape mismatches", report.mismatched),
            )
            if keys
        )
        width = getattr(model, "width_multiplier", None)
        message = f"{source} does not match the I3D model (width_multiplier={width}): {problems}"
        if strict:
            raise ValueError(message)
        logger.warning("%s; loading the rest", message)
    model.load_state_dict(loadable, strict=False)
    return report


def _same_shape(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    return value if value.shape == target.shape else None


def load_i3d_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
) -> LoadReport:
    """Load an I3D checkpoint in the standard layout into ``model`` (an ``InceptionI3d``).

    With ``strict`` (default) any missing, unexpected or wrongly shaped key raises ``ValueError`` naming the
    first few of each and their count; without it, those are skipped (logged) and the rest is loaded, e.g.
    a Charades checkpoint (157 classes) into a 400-class model.
    """
    return _load(model, state_dict, _same_shape, strict=strict, source="I3D state dict")


def load_i3d_file(model: nn.Module, path: str | Path, *, strict: bool = True) -> LoadReport:
    """Load an I3D checkpoint file (a state dict, or a dict holding one under ``state_dict`` / ``model``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such I3D weights file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or non-torch file
        raise ValueError(f"{path}: not a readable torch weights file ({type(exc).__name__}: {exc})") from exc
    if isinstance(payload, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(payload.get(wrapper), Mapping):
                payload = payload[wrapper]
                break
    return _load(model, payload, _same_shape, strict=strict, source=str(path))


def _inflate(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    if value.shape == target.shape:  # BatchNorm parameters and statistics, biases: copied
        return value
    if value.dim() == 4 and target.dim() == 5 and value.shape == target.shape[:2] + target.shape[3:]:
        frames = target.shape[2]
        return value.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames  # (O, I, t, kh, kw)
    return None


def inflate_from_2d(
    model: nn.Module, state_dict_2d: Mapping[str, torch.Tensor], *, strict: bool = True
) -> LoadReport:
    """Initialise ``model`` from 2D Inception-v1 weights by inflation (I3D paper: repeat over time, / t).

    Accepted 2D layout: the 3D model's own names (``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.bias``,
    ``logits.conv3d.weight``, ...) with 4D conv weights ``(out, in, kh, kw)``; BatchNorm parameters and
    running statistics and conv biases (same shape in 2D and 3D) are copied. A ``module.`` prefix is
    accepted. ``strict`` as in :func:`load_i3d_state_dict`.
    """
    return _load(model, state_dict_2d, _inflate, strict=strict, source="2D Inception-v1 state dict")
