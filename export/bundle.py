"""Writing a bundle folder atomically: the export side of the contract read by :mod:`edge_runtime.bundle`.

:func:`write_bundle` never leaves a half-written bundle at ``out_dir``:

1. the manifest is checked (the reader's own validation, with placeholder hashes) before anything is copied;
2. model files, companions and extras are copied into ``.<name>.tmp-<pid>-XXXX`` in the same parent folder,
   hashed (SHA-256) while copied, and fsynced;
3. ``manifest.json`` is written last (indent 2, sorted keys), fsynced, and the folder is read back with
   :func:`edge_runtime.bundle.load_bundle`;
4. the temp folder is renamed to ``out_dir`` (atomic on one file system). With ``overwrite`` an existing bundle
   is first renamed aside to ``.<name>.old-<pid>-XXXX`` and deleted only once the new one is in place.

On an exception the temp folder is removed. A process killed midway leaves at most a hidden ``.tmp-`` (or
``.old-``) folder; :func:`clean_stale_temp_dirs`, run at the start of every write, removes those whose writer
process is gone, and puts an old bundle back if it was moved aside but never replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from edge_runtime.bundle import (
    BUNDLE_SCHEMA,
    MANIFEST_NAME,
    BundleError,
    TensorSpec,
    load_bundle,
    parse_manifest,
)
from edge_runtime.bundle_manifest import check_relative_path

__all__ = ["BundleFileSpec", "BundleWriteError", "write_bundle", "clean_stale_temp_dirs"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_PLACEHOLDER_SHA = "0" * 64  # lets the manifest be validated before the files are copied and hashed


class BundleWriteError(BundleError):
    """The bundle cannot be written (bad spec, existing folder, unreadable source); one line naming the file."""


@dataclass(frozen=True)
class BundleFileSpec:
    """A model file to put into the bundle, with what the manifest says about it.

    ``inputs``/``outputs`` are :class:`TensorSpec` or dicts ``{"name", "shape", "dtype"}``; ``companions`` are
    files the model needs beside it (OpenVINO's ``.bin``), kept under their own names; ``name`` is the file's
    name in the bundle (default: ``source.name``).
    """

    source: Path
    role: str
    precision: str
    format: str
    inputs: Sequence[TensorSpec | Mapping[str, Any]]
    outputs: Sequence[TensorSpec | Mapping[str, Any]]
    companions: Sequence[Path] = ()
    name: str | None = None

    @property
    def bundle_name(self) -> str:
        return self.name or Path(self.source).name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _leftover_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(name)}\.(tmp|old)-(\d+)-[^/]+$")


def clean_stale_temp_dirs(out_dir: Path | str) -> list[Path]:
    """Remove the ``.<name>.tmp-<pid>-*`` / ``.<name>.old-<pid>-*`` folders next to ``out_dir`` left by writer
    processes that are no longer running (a folder of a live process is left alone). An ``.old-`` folder whose
    replacement never arrived (``out_dir`` missing) is renamed back to ``out_dir`` instead. Returns the folders
    removed or restored."""
    out_dir = Path(out_dir).absolute()
    if not out_dir.parent.is_dir():
        return []
    pattern = _leftover_re(out_dir.name)
    handled = []
    for entry in sorted(out_dir.parent.iterdir()):
        match = pattern.match(entry.name)
        if not match or _pid_alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not out_dir.exists() and (entry / MANIFEST_NAME).is_file():
            os.rename(entry, out_dir)
            log.warning("restored %s from %s (a replacing write was interrupted)", out_dir, entry.name)
        else:
            _remove(entry)
            log.info("removed %s left by an interrupted bundle write", entry)
        handled.append(entry)
    return handled


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tensor_dicts(specs: Sequence[TensorSpec | Mapping[str, Any]]) -> list[Any]:
    return [s.to_dict() if isinstance(s, TensorSpec) else dict(s) for s in specs]


def _source(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise BundleWriteError(f"{what} {path} does not exist or is not a file")
    return path


def _plan(
    out_dir: Path, manifest: Mapping[str, Any], files: Sequence[BundleFileSpec], extras: Mapping[str, Path]
):
    """Check everything that can be checked before copying; returns (manifest dict, copy list)."""
    if not isinstance(manifest, Mapping):
        raise BundleWriteError(f"manifest must be a dict, got {type(manifest).__name__}")
    reserved = sorted({"files", "schema"} & set(manifest))
    if reserved:
        raise BundleWriteError(f"manifest must not hold {reserved}: write_bundle fills them in")
    try:
        doc = json.loads(json.dumps(dict(manifest), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise BundleWriteError(f"manifest for {out_dir} is not plain JSON: {exc}") from None
    doc["schema"] = BUNDLE_SCHEMA
    model = doc.get("model")
    if isinstance(model, dict):
        model.setdefault("created_at", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    copies: list[tuple[Path, str]] = []  # (source, name in bundle)
    entries = []
    for spec in files:
        entry = {
            "path": spec.bundle_name,
            "role": spec.role,
            "precision": spec.precision,
            "format": spec.format,
            "sha256": _PLACEHOLDER_SHA,
            "inputs": _tensor_dicts(spec.inputs),
            "outputs": _tensor_dicts(spec.outputs),
            "companions": [{"path": Path(c).name, "sha256": _PLACEHOLDER_SHA} for c in spec.companions],
        }
        entries.append(entry)
        copies.append((_source(spec.source, f"{spec.role} {spec.precision} model file"), spec.bundle_name))
        copies += [(_source(c, f"companion of {spec.bundle_name}"), Path(c).name) for c in spec.companions]
    doc["files"] = entries
    where = f"{out_dir} (manifest to be written)"
    for name, src in extras.items():
        check_relative_path(name, "extra", where)
        if not Path(src).exists():
            raise BundleWriteError(f"extra {name!r}: {src} does not exist")
    for key in ("report", "calibration_set"):
        if isinstance(doc.get(key), str) and doc[key] not in extras:
            raise BundleWriteError(
                f"manifest {key} {doc[key]!r} must be one of the extras, got {sorted(extras)}"
            )
    clash = sorted({name for _, name in copies} & set(extras))
    if clash:
        raise BundleWriteError(f"extras {clash} have the same names as model files")
    parse_manifest(doc, out_dir, where=where)  # the reader's own checks, before any copying
    return doc, copies


def _copy_hashed(src: Path, dst: Path, bar: tqdm) -> str:
    digest = hashlib.sha256()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while block := fin.read(_CHUNK):
            digest.update(block)
            fout.write(block)
            bar.update(len(block))
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest()


def _copy_extra(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
        targets = [p for p in dst.rglob("*") if p.is_file()]
    else:
        shutil.copyfile(src, dst)
        targets = [dst]
    for path in targets:
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())


def _check_replaceable(out_dir: Path, overwrite: bool) -> bool:
    """True when ``out_dir`` exists and may be replaced; raises when it may not."""
    if not (out_dir.exists() or out_dir.is_symlink()):
        return False
    if not overwrite:
        raise BundleWriteError(f"{out_dir} already exists; pass overwrite=True (--overwrite) to replace it")
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise BundleWriteError(f"refusing to replace {out_dir}: it is not a folder")
    if not (out_dir / MANIFEST_NAME).is_file() and any(out_dir.iterdir()):
        raise BundleWriteError(
            f"refusing to replace {out_dir}: it is not a bundle folder (no {MANIFEST_NAME})"
        )
    return True


def write_bundle(
    out_dir: Path | str,
    *,
    manifest: Mapping[str, Any],
    files: Sequence[BundleFileSpec],
    extras: Mapping[str, Path] | None = None,
    overwrite: bool = False,
    on_file: Callable[[str], None] | None = None,
    progress: bool = True,
) -> Path:
    """Write the bundle folder ``out_dir`` atomically and return its absolute path.

    ``manifest`` is everything but ``schema`` and ``files`` (``model.created_at`` is filled in when absent);
    ``files`` are copied and hashed; ``extras`` maps names in the bundle (``"report.json"``, ``"plots"``) to
    files or folders to copy as they are. ``on_file(name)`` is called after each file is in the temp folder
    (progress reporting); ``progress``: a bar on a terminal. Raises :class:`BundleWriteError` /
    :class:`BundleError` with a one-line message.
    """
    out_dir = Path(out_dir).absolute()
    extras = {str(k): Path(v) for k, v in (extras or {}).items()}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_dirs(out_dir)
    doc, copies = _plan(out_dir, manifest, files, extras)
    _check_replaceable(out_dir, overwrite)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    aside: Path | None = None
    try:
        total = _fill(tmp, doc, copies, extras, on_file, desc=f"writing {out_dir.name}", progress=progress)
        if _check_replaceable(out_dir, overwrite):
            aside = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(out_dir, aside)
        os.rename(tmp, out_dir)
        _fsync_dir(out_dir.parent)
    except BaseException:
        _remove(tmp)
        if aside is not None and not out_dir.exists():
            os.rename(aside, out_dir)  # the old bundle goes back: nothing lost
            aside = None
        raise
    if aside is not None:
        _remove(aside)
    log.info("wrote bundle %s: %d files, %.1f MB", out_dir, len(copies), total / 1e6)
    return out_dir


def _fill(
    tmp: Path, doc: dict, copies: list[tuple[Path, str]], extras: Mapping[str, Path],
    on_file: Callable[[str], None] | None, desc: str, progress: bool = True,
) -> int:  # fmt: skip
    """Copy the model files (hashing them) and the extras into ``tmp``, write the manifest with the hashes and
    read the folder back as a bundle; returns the model files' bytes."""
    hashes: dict[str, str] = {}
    total = sum(src.stat().st_size for src, _ in copies)
    with tqdm(
        total=total, unit="B", unit_scale=True, desc=desc, leave=False, disable=None if progress else True
    ) as bar:
        for src, name in copies:
            hashes[name] = _copy_hashed(src, tmp / name, bar)
            if on_file is not None:
                on_file(name)
    for name, src in extras.items():
        _copy_extra(src, tmp / name)
        if on_file is not None:
            on_file(name)
    for entry in doc["files"]:
        entry["sha256"] = hashes[entry["path"]]
        for comp in entry["companions"]:
            comp["sha256"] = hashes[comp["path"]]
    with open(tmp / MANIFEST_NAME, "x", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
    load_bundle(tmp, verify_hashes=False)  # it reads back, or we stop here
    return total
