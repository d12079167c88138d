"""Where TensorRT engines and timing caches live on a device, and the key that names an engine.

An engine is valid only for the GPU, the TensorRT version, the exact ONNX file, the precision and the
maximum batch it was built for, so all five are in its key: a change of any one builds a new engine instead
of loading a wrong one. Files are written atomically (temporary file + rename), so a power cut during a
build never leaves a half-written engine behind.

>>> engine_key("Orin", "10.3.0", "ab" * 32, "int8", 4)[:28]
'orin__trt10.3.0__int8__b4__a'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "default_cache_dir",
    "engine_key",
    "engine_path",
    "timing_cache_path",
    "write_atomic",
]

# Environment variable naming the cache folder (a device's profile or the systemd unit may set it).
CACHE_ENV = "I3DMTN_ENGINE_CACHE"

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_HEX = re.compile(r"^[0-9a-f]{8,128}$")


def _slug(value: str, what: str, limit: int = 32) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError(f"engine cache {what} must not be empty")
    slug = _UNSAFE.sub("-", text.lower()).strip("-.")
    return (slug or "x")[:limit]


def engine_key(gpu_name: str, trt_version: str, onnx_sha256: str, precision: str, max_batch: int) -> str:
    """A file-name-safe key naming one engine: readable parts plus a digest of every input exactly.

    Same inputs give the same key; changing any one of them changes it. Only ``[a-z0-9._-]``, at most
    ~140 characters, never starting with a dot.
    """
    sha = str(onnx_sha256).strip().lower()
    if not _HEX.match(sha):
        raise ValueError(f"engine cache onnx_sha256 must be a hex digest, got {onnx_sha256!r}")
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"engine cache max_batch must be an integer >= 1, got {max_batch!r}")
    parts = [str(gpu_name), str(trt_version), sha, str(precision), str(max_batch)]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    return "__".join(
        [
            _slug(gpu_name, "gpu_name"),
            "trt" + _slug(trt_version, "trt_version", 16),
            _slug(precision, "precision", 16),
            f"b{max_batch}",
            sha[:12],
            digest,
        ]
    )


def default_cache_dir() -> Path:
    """``$I3DMTN_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/i3d-mtn-edge/engines`` (``~/.cache/...``).

    Never a folder relative to the working directory.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "i3d-mtn-edge" / "engines"


def engine_path(cache_dir: str | Path, key: str) -> Path:
    """The engine file for ``key`` inside ``cache_dir``."""
    if not key or _UNSAFE.search(key) or key.startswith("."):
        raise ValueError(f"engine key {key!r} is not a safe file name (use engine_key())")
    return Path(cache_dir) / f"{key}.engine"


def timing_cache_path(cache_dir: str | Path, gpu_name: str, trt_version: str) -> Path:
    """The timing cache shared by every engine built on this GPU with this TensorRT version."""
    return (
        Path(cache_dir)
        / f"timing__{_slug(gpu_name, 'gpu_name')}__trt{_slug(trt_version, 'trt_version', 16)}.cache"
    )


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename (all or nothing)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
