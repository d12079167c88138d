"""Reading a bundle: the one contract between workstation and device (docs/architecture.md, "The bundle").

A bundle is a folder with ``manifest.json`` (schema ``i3dmtn.bundle/1``) and the model files it lists.
:func:`load_bundle` refuses, with a one-line :class:`BundleError` naming the file, a bundle that is missing,
malformed, of another schema version, asks for a preprocessing contract this runtime does not implement,
has inconsistent shapes, lists paths outside its folder, or whose files changed since export (SHA-256).

>>> bundle = load_bundle("bundle/")                                # doctest: +SKIP
>>> bundle.model("backbone").path, bundle.model("head", "fp32").format  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_runtime.bundle_event_policy import BundleEventPolicy, parse_event_policy
from edge_runtime.bundle_files import Companion, ModelFile, TensorSpec, check_shapes, parse_files
from edge_runtime.bundle_manifest import (
    BUNDLE_SCHEMA,
    GATES,
    MANIFEST_NAME,
    PRECISIONS,
    ROLES,
    TARGETS,
    BundleError,
    Field,
    MotionForestEntry,
    Window,
    check_relative_path,
    check_started_from,
    parse_motion_forest,
    parse_window,
)
from edge_runtime.bundle_pose import PoseForestEntry, parse_pose_forest
from edge_runtime.forest import ForestError, load_forest
from edge_runtime.motion_fusion import MotionFusion, MotionFusionError, load_motion_fusion
from edge_runtime.pose_fusion import PoseFusion, PoseFusionError
from edge_runtime.preprocess import PreprocessConfig, PreprocessError

if TYPE_CHECKING:
    from devices.profile_settings import DeviceProfile

__all__ = [
    "BUNDLE_SCHEMA",
    "MANIFEST_NAME",
    "BundleError",
    "TensorSpec",
    "Companion",
    "ModelFile",
    "Window",
    "BundleEventPolicy",
    "Bundle",
    "parse_manifest",
    "load_bundle",
    "sha256_file",
]

log = logging.getLogger(__name__)

_TOP_LEVEL = (
    "schema",
    "model",
    "target",
    "precision",
    "preprocess",
    "window",
    "threshold",
    "event_policy",
    "motion_forest",
    "pose_forest",
    "files",
    "accuracy",
    "report",
    "calibration_set",
)
# The largest preprocessing numbers a device runs (the window's are in bundle_manifest); beyond: refused by key.
MAX_CROP = 1024  # model input side in pixels (I3D: 224)
MAX_RESIZE = 4096  # short side after the resize, pixels (a 4K frame)
_CHUNK = 1 << 20  # hash in 1 MiB reads: a full-width I3D backbone is ~50 MB, never read whole into memory


@dataclass(frozen=True)
class Bundle:
    """A validated bundle. ``files`` paths are absolute; ``manifest`` is the raw parsed JSON."""

    path: Path
    manifest: dict[str, Any] = field(repr=False)
    model_name: str
    model_version: str
    target: str
    precision: str
    preprocess: PreprocessConfig
    window: Window
    threshold: float
    files: tuple[ModelFile, ...]
    accuracy: dict[str, Any]
    feature_dim: int  # D: backbone output width == head input width
    report: Path | None = None
    calibration_set: Path | None = None
    event_policy: BundleEventPolicy | None = None  # None: a bundle from before it, the runtime's defaults
    motion_forest: MotionForestEntry | None = None  # None: the network's scores alone
    pose_forest: PoseForestEntry | None = None  # beside the motion forest: several people's poses; None: none

    def motion_fusion(self) -> MotionFusion | None:
        """The motion forest at its weight, with the pose forest when there is one, for
        :class:`~edge_runtime.scoring.StreamingScorer` (None without a motion forest)."""
        if self.motion_forest is None:
            return None
        try:
            forest = self.motion_forest
            fusion = load_motion_fusion(forest.path, forest.weight, forest.crops)
        except (ForestError, MotionFusionError) as exc:
            raise BundleError(f"{self.path}: motion_forest: {exc}") from None
        if self.pose_forest is None:
            return fusion
        p = self.pose_forest
        try:
            pose = PoseFusion(load_forest(p.path), p.weight, self.window.snippet_length, p.every, p.height)
        except (ForestError, PoseFusionError) as exc:
            raise BundleError(f"{self.path}: pose_forest: {exc}") from None
        return replace(fusion, pose=pose)

    @property
    def motion_crops(self) -> int:
        """Crop positions each snippet carries (:class:`~edge_runtime.preprocess.FramePreprocessor`'s crops)."""
        return self.motion_forest.crops if self.motion_forest is not None else 1

    @property
    def precisions(self) -> tuple[str, ...]:
        """Precisions with a backbone and a head in this bundle, e.g. ``("fp32", "int8")``."""
        present = {mf.precision for mf in self.files}
        return tuple(p for p in PRECISIONS if p in present)

    def has(self, role: str, precision: str | None = None) -> bool:
        p = precision or self.precision
        return any(mf.role == role and mf.precision == p for mf in self.files)

    def model(self, role: str, precision: str | None = None) -> ModelFile:
        """The ``role`` model (``backbone``/``head``) at ``precision`` (default: the bundle's; ``"fp32"`` is the
        fallback every bundle has)."""
        if role not in ROLES:
            raise BundleError(f"{self.path}: role must be one of {', '.join(ROLES)}, got {role!r}")
        p = precision or self.precision
        for mf in self.files:
            if mf.role == role and mf.precision == p:
                return mf
        raise BundleError(
            f"{self.path}: no {role} model at precision {p!r}; this bundle has {', '.join(self.precisions)}"
        )

    def model_info(self) -> dict[str, str]:
        """The ``model`` object of every event: ``{"name", "version", "target", "precision"}``."""
        return {
            "name": self.model_name,
            "version": self.model_version,
            "target": self.target,
            "precision": self.precision,
        }

    def check_profile(self, profile: DeviceProfile) -> None:
        """Refuse a device profile this bundle cannot serve: another target, another input size, or a
        precision it has no files for (TensorRT ``fp16`` is built from the fp32 ONNX, so it always fits)."""
        m = profile.model
        where = f"{self.path} with profile {profile.name!r}"
        if m.target != self.target:
            raise BundleError(
                f"{where}: the bundle is for target {self.target!r}, the profile wants {m.target!r}"
            )
        if self.preprocess.crop_size != (m.input_size, m.input_size):
            raise BundleError(
                f"{where}: the bundle's input is {self.preprocess.crop_size}, the profile's input_size is {m.input_size}"
            )
        if m.precision not in self.precisions and not (m.precision == "fp16" and self.target == "jetson"):
            raise BundleError(
                f"{where}: no {m.precision} models in the bundle; it has {', '.join(self.precisions)}"
            )


def sha256_file(path: Path, chunk_size: int = _CHUNK) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _optional_path(f: Field, key: str, root: Path) -> Path | None:
    value = f.get(key, str, None)
    if value is None:
        return None
    return root / check_relative_path(value, key, f.where)


def _check_preprocess_bounds(config: PreprocessConfig, where: str) -> None:
    """The preprocessing numbers fit a device (contract checks are PreprocessConfig's own)."""
    crop, resize = config.crop_size, config.resize_short_side
    if max(crop) > MAX_CROP:
        raise BundleError(
            f"{where}: preprocess.crop_size must be at most {MAX_CROP} per side, got {list(crop)}"
        )
    for key, side in (("resize_short_side", resize), ("flow_short_side", config.flow_short_side)):
        if side > MAX_RESIZE:
            raise BundleError(f"{where}: preprocess.{key} must be at most {MAX_RESIZE}, got {side}")
    for key, values, low, high in (("mean", config.mean, -10.0, 10.0), ("std", config.std, 0.001, 10.0)):
        if not all(math.isfinite(v) and low <= v <= high for v in values):
            raise BundleError(
                f"{where}: preprocess.{key} must be numbers in [{low:g}, {high:g}], got {list(values)}"
            )


def parse_manifest(data: Any, root: Path | str, *, where: str | None = None) -> Bundle:
    """Validate a parsed manifest against ``i3dmtn.bundle/1`` and build the :class:`Bundle` it describes for
    the folder ``root``. Checks the contract only; :func:`load_bundle` also checks the files on disk."""
    root = Path(root)
    where = where or str(root / MANIFEST_NAME)
    f = Field(data, "", where)
    schema = f.get("schema", str)
    if schema != BUNDLE_SCHEMA:
        if schema.startswith("i3dmtn.bundle/"):
            raise f.error(
                f"bundle schema {schema!r} is not supported: this runtime reads {BUNDLE_SCHEMA!r} "
                "(update edge-runtime or export again)"
            )
        raise f.error(f"not a bundle manifest: schema must be {BUNDLE_SCHEMA!r}, got {schema!r}")
    f.only(_TOP_LEVEL)

    model = Field(f.get("model", dict), "model", where)
    model.only(("name", "version", "created_at", "config", "started_from"))
    model.text("created_at")
    check_started_from(model)
    model.get("config", dict, {})
    target = f.choice("target", TARGETS)
    precision = f.choice("precision", PRECISIONS)
    try:
        preprocess = PreprocessConfig.from_dict(f.get("preprocess", dict))
    except PreprocessError as exc:
        raise f.error(f"preprocess: {exc}") from None
    _check_preprocess_bounds(preprocess, where)
    window = parse_window(f.get("window", dict), where)
    threshold = f.number("threshold", 0.0, 1.0)
    files = parse_files(f.get("files", list), root, target, precision, where)
    feature_dim = check_shapes(files, window, preprocess.crop_size, where, preprocess.channels)
    accuracy = Field(f.get("accuracy", dict), "accuracy", where)
    accuracy.choice("gate", GATES)
    if "event_gate" in accuracy.obj:
        accuracy.choice("event_gate", GATES)
    policy = f.get("event_policy", dict, None)
    forest = f.get("motion_forest", dict, None)
    pose = f.get("pose_forest", dict, None)
    return Bundle(
        path=root,
        manifest=dict(data),
        model_name=model.text("name"),
        model_version=model.text("version"),
        target=target,
        precision=precision,
        preprocess=preprocess,
        window=window,
        threshold=threshold,
        files=files,
        accuracy=dict(accuracy.obj),
        feature_dim=feature_dim,
        report=_optional_path(f, "report", root),
        calibration_set=_optional_path(f, "calibration_set", root),
        event_policy=parse_event_policy(policy, where) if policy is not None else None,
        motion_forest=parse_motion_forest(forest, root, where, preprocess.modality)
        if forest is not None
        else None,
        pose_forest=parse_pose_forest(pose, root, where, window, forest is not None)
        if pose is not None
        else None,
    )


def _read_manifest(folder: Path) -> Any:
    if not folder.exists():
        raise BundleError(f"bundle folder {folder} does not exist")
    if not folder.is_dir():
        raise BundleError(f"{folder} is not a bundle folder (expected a folder holding {MANIFEST_NAME})")
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise BundleError(f"{manifest} is missing: {folder} is not a bundle written by `i3dmtn export`")
    try:
        return json.loads(manifest.read_bytes())
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"{manifest}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError as exc:
        raise BundleError(
            f"{manifest}: not valid JSON: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except RecursionError:  # json.loads recurses once per nesting level
        raise BundleError(f"{manifest}: not valid JSON: nested too deeply") from None
    except OSError as exc:
        raise BundleError(f"{manifest}: cannot read: {exc.strerror}") from None


def _check_file(root: Path, path: Path, sha256: str | None, what: str) -> None:
    rel = path.relative_to(root)
    if not path.resolve().is_relative_to(root.resolve()):
        raise BundleError(f"{root}: {rel} points outside the bundle folder (a link to {path.resolve()})")
    if not path.is_file():
        raise BundleError(f"{root}: {what} {rel} listed in {MANIFEST_NAME} is missing")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise BundleError(
                f"{root}: {rel} changed since export (SHA-256 {actual[:16]}..., {MANIFEST_NAME} says "
                f"{sha256[:16]}...); export again or restore the file"
            )


def load_bundle(path: Path | str, *, verify_hashes: bool = True) -> Bundle:
    """Read and validate the bundle folder ``path``; with ``verify_hashes`` every model file and companion is
    hashed and compared with the manifest. Raises :class:`BundleError` (one line) on any problem."""
    folder = Path(path).absolute()
    data = _read_manifest(folder)
    bundle = parse_manifest(data, folder, where=str(folder / MANIFEST_NAME))
    for mf in bundle.files:
        _check_file(folder, mf.path, mf.sha256 if verify_hashes else None, "model file")
        for comp in mf.companions:
            _check_file(
                folder, comp.path, comp.sha256 if verify_hashes else None, f"companion of {mf.path.name}"
            )
    if bundle.motion_forest is not None:
        forest = bundle.motion_forest
        _check_file(folder, forest.path, forest.sha256 if verify_hashes else None, "motion_forest file")
    for path, sha256, what in bundle.pose_forest.files if bundle.pose_forest is not None else ():
        _check_file(folder, path, sha256 if verify_hashes else None, what)
    for extra, key in ((bundle.report, "report"), (bundle.calibration_set, "calibration_set")):
        if extra is not None:
            _check_file(folder, extra, None, f"{key} file")
    log.info(
        "loaded bundle %s: %s %s, target %s, precisions %s",
        folder,
        bundle.model_name,
        bundle.model_version,
        bundle.target,
        ", ".join(bundle.precisions),
    )
    return bundle
