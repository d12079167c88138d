"""``edge-runtime``'s event clips: the ``--clips-dir`` and ``--clip-mode`` options, the profile's ``[clips]``
and the HTTP endpoint.

Clips are recorded when the device profile has a ``[clips]`` section (devices/clip_settings.py) or
``--clips-dir DIR`` is given (the profile's settings, else the defaults, in DIR). ``--clip-mode`` overrides
the profile's ``mode`` (:mod:`edge_runtime.clip_sources`); ``copy`` is checked against the cameras here. The folder defaults to
``$STATE_DIRECTORY/clips-<ID>``, else ``~/.local/state/i3dmtn/clips-<ID>``. With ``http_bind`` the clips are
served read-only (:mod:`edge_runtime.clip_server`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from devices.clip_settings import CLIP_MODES, ClipSettings

from .sources import FrameSource
from .usage import UsageError

__all__ = ["add_clip_arguments", "clip_settings", "serve_clips"]


def add_clip_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("event clips")
    group.add_argument("--clips-dir", metavar="DIR",
                       help="record a clip of each event (pre-capture + event + post-capture, H.264 mp4 by "
                       "default) into DIR, with the profile's [clips] settings (else the defaults: 3 s before, "
                       "2 s after, 2000 MB, 7 days); needs PyAV (pip install 'i3d-mtn-edge[clips]')")  # fmt: skip
    group.add_argument("--clip-mode", choices=CLIP_MODES,
                       help="how clips are made (overrides [clips] mode): auto (default) copies the H.264 packets "
                       "of a camera's RTSP record stream, else of its RTSP detect stream, else re-encodes frames; "
                       "copy refuses a camera without an RTSP H.264 stream; reencode always encodes frames")  # fmt: skip


def clip_settings(args: argparse.Namespace, profile: Any, device_id: str, environ: Any = None,
                  cameras: Sequence[tuple[str, FrameSource]] = ()) -> tuple[ClipSettings | None, Path | None]:  # fmt: skip
    """The clip settings and folder of this run (``(None, None)``: no clips). Raises
    :class:`~edge_runtime.clip_writer.ClipError` when PyAV or the encoder is missing, or when ``mode`` is
    ``copy`` and one of ``cameras`` (``[(name, source)]``) has no RTSP H.264 stream (naming it)."""
    from .clip_sources import packet_url
    from .clip_writer import check_encoder

    settings = profile.clips if profile is not None else None
    if settings is None and not args.clips_dir:
        if args.clip_mode:
            raise UsageError("--clip-mode needs clips: --clips-dir DIR or a device profile with [clips]")
        return None, None
    settings = settings or ClipSettings()
    if args.clip_mode:
        settings = dataclasses.replace(settings, mode=args.clip_mode)
    for name, source in cameras:  # copy refused by name now, before anything opens or loads
        packet_url(name, source, settings.mode)
    env = os.environ if environ is None else environ
    if args.clips_dir:
        folder = Path(args.clips_dir).expanduser()
    elif settings.folder:
        folder = Path(settings.folder)
    else:
        state = env.get("STATE_DIRECTORY", "").split(":")[0]
        folder = (
            Path(state) if state else Path.home() / ".local" / "state" / "i3dmtn"
        ) / f"clips-{device_id}"
    check_encoder(settings.codec)
    return settings, folder


@contextlib.contextmanager
def serve_clips(settings: ClipSettings | None, folder: Path | None) -> Iterator[Any]:
    """The clip endpoint while the runtime runs, when ``http_bind`` is set; raises
    :class:`~edge_runtime.clip_writer.ClipError` for a missing token or an address that cannot be bound."""
    if settings is None or folder is None or settings.http_bind is None:
        yield None
        return
    from .clip_server import ClipServer, read_clip_token
    from .clip_writer import ClipError

    host, _, port = settings.http_bind.rpartition(":")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        server = ClipServer(folder, host.strip("[]"), int(port), read_clip_token(settings.token_file)).start()
    except ValueError as exc:
        raise ClipError(str(exc)) from None
    except OSError as exc:
        raise ClipError(
            f"[clips] http_bind {settings.http_bind}: cannot listen ({exc.strerror or exc})"
        ) from None
    try:
        yield server
    finally:
        server.stop()
