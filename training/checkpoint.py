"""Checkpoints: everything needed to rebuild the model and resume training, loadable without unpickling.

A checkpoint is a dict of plain tensors and JSON-able values only, so ``torch.load(path, weights_only=True)``
reads it::

    {"format": "i3dmtn.checkpoint/1", "model": state_dict, "optimizer": state_dict | None,
     "scheduler": {"step": int}, "config": {flat config}, "epoch": int (epochs completed),
     "best_metric": float, "threshold": float | None (chosen on validation), "history": [per-epoch dicts],
     "rng": {"torch": uint8 tensor, "numpy_keys": tensor, "numpy_pos": int, "python": tensor, "cuda": [...]},
     "started_from": {"path", "sha256", "model", "epoch"} | None (a fine-tune's start: training.finetune)}

It holds the full model even after head-only training, so export always has a backbone.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.configs import ConfigError, config_from_json
from training.model import I3D_MTN_AnomalyDetector, build_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "new_model",
    "save_checkpoint",
    "copy_checkpoint",
    "read_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "rng_state",
    "set_rng_state",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "i3dmtn.checkpoint/1"
_SHOW = 6  # key names listed in a mismatch message


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def new_model(config: Mapping[str, Any]) -> I3D_MTN_AnomalyDetector:
    """A freshly initialised model, seeded by ``config["seed"]``: the same config gives the same weights."""
    torch.manual_seed(int(config["seed"]))
    return build_model(config)


def rng_state() -> dict[str, Any]:
    """The torch, numpy and Python random states as tensors and ints (weights_only-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, _ = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_pos": int(pos),
        "numpy_gauss": [int(has_gauss), float(gauss)],
        "python_version": int(version),
        "python": torch.tensor(internal, dtype=torch.int64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    has_gauss, gauss = state["numpy_gauss"]
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], int(has_gauss), gauss)
    )
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, checkpoint: Mapping[str, Any]) -> Path:
    """Write ``checkpoint`` to ``path`` through a temporary file and a rename: never half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **_plain(checkpoint)}, tmp)
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    """Mappings as plain dicts (a :class:`training.configs.Config` is a dict subclass), so that the file
    holds only what ``torch.load(..., weights_only=True)`` reads back. A state dict (an ``OrderedDict``, which
    that loader reads) stays as it is, with the ``_metadata`` its modules' versions are loaded by."""
    if isinstance(value, Mapping) and not isinstance(value, OrderedDict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def copy_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Give a written checkpoint file a second name ``dst`` (through a temporary name and a rename).

    The trainer writes ``last.pt`` and, on a better epoch, the same dict as ``best.pt``. ``dst`` is a hard
    link to ``src`` where the file system has them, else a byte copy. A link is safe because checkpoints are
    only ever replaced by a rename (:func:`save_checkpoint`), never rewritten in place: the next ``last.pt``
    is a new file, and ``best.pt`` keeps the old one. At full size (~50 MB) the copy took 0.2-0.5 s of a
    head-only epoch on a 2-core machine; pickling the dict again is slower still."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a killed run of this pid: os.link will not replace it
    try:
        os.link(src, tmp)
    except OSError:  # no hard links here (some network and FUSE file systems)
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


_WHAT_A_CHECKPOINT_IS = "one is written by `i3dmtn train`: plain tensors and JSON, read without unpickling"


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict (weights_only load) with its config validated; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except Exception:  # not a torch file, or one holding pickled objects: torch's advice to unpickle is wrong
        raise CheckpointError(
            f"{path} is not a checkpoint of this project ({_WHAT_A_CHECKPOINT_IS})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "model" not in ckpt:
        raise CheckpointError(
            f"{path} is not a checkpoint of this project (no {CHECKPOINT_FORMAT} format / model keys)"
        )
    try:
        ckpt["config"] = config_from_json(json.dumps(ckpt.get("config", {})), source=str(path), saved=True)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} has a bad config: {exc}") from None
    return ckpt


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """``model.load_state_dict(state)``, strictly, with a :class:`CheckpointError` naming mismatched keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected)):
            if keys:
                more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
                parts.append(f"{what} {keys[:_SHOW]}{more}")
        if shapes:
            shown = ", ".join(
                f"{k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shapes[:_SHOW]
            )
            more = f" (+{len(shapes) - _SHOW} more)" if len(shapes) > _SHOW else ""
            parts.append(f"shape mismatch {shown}{more}")
        raise CheckpointError(f"checkpoint {source} does not fit the model architecture: {'; '.join(parts)}")
    model.load_state_dict(state)


def load_checkpoint(
    path: str | Path, model: nn.Module | None = None, *, map_location: str | torch.device = "cpu"
) -> tuple[I3D_MTN_AnomalyDetector, dict[str, Any], dict[str, Any]]:
    """``(model, config, checkpoint)``: the model is built from the checkpoint's config unless given."""
    ckpt = read_checkpoint(path, map_location)
    config = ckpt["config"]
    if model is None:
        model = build_model(config)
    load_model_state(model, ckpt["model"], path)
    return model, config, ckpt  # type: ignore[return-value]
