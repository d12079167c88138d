"""The ``[clips]`` section of a device profile: event clips recorded on the device and how they are served.

::

    [clips]                                # present: every camera records a clip of each event
    folder = "/var/lib/i3dmtn/clips"       # absolute path; default $STATE_DIRECTORY/clips-<ID>, else
                                           # ~/.local/state/i3dmtn/clips-<ID>
    pre_s = 3.0                            # seconds before the event's start, 0-30; default 3
    post_s = 2.0                           # seconds after its end, 0-30; default 2
    max_s = 120.0                          # longest clip (pre + event + post), 1-3600 s; default 120
    budget_mb = 2000                       # disk budget of the folder, 1-1000000 MB; the oldest clips go
                                           # first; default 2000
    max_age_days = 7.0                     # clips older than this are deleted, (0, 3650]; default 7
    mode = "auto"                          # auto | copy | reencode: how clips are made; auto copies the
                                           # H.264 packets of the camera's RTSP record stream, else of its
                                           # RTSP detect stream, else re-encodes frames; copy refuses a camera
                                           # without an RTSP stream at start; reencode always encodes frames;
                                           # default auto
    codec = "h264"                         # h264 (mp4) | vp9 (webm): both play in browsers (re-encoded clips;
                                           # copied clips are the camera's H.264 in mp4); default h264
    max_height = 480                       # rows of the clip, scaled down (never up) from the frame as
                                           # decoded (the record stream's when the camera has one), not the
                                           # model's small input; 0: as decoded; else 32-4320; default 480
    fps = 15.0                             # frames per second of the clip (and of the pre-capture ring), by
                                           # timestamp; 0: every frame of the stream; else 1-120; default 15
    http_bind = "0.0.0.0:8765"             # serve clips read-only over HTTP at HOST:PORT (token needed);
                                           # default: not served
    token_file = "/etc/i3dmtn/clip-token"  # the HTTP token's file (else I3DMTN_CLIP_TOKEN[_FILE] in the
                                           # environment; never an option)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["CLIP_CODECS", "CLIP_MODES", "ClipSettings", "parse_clips"]

CLIP_CODECS = ("h264", "vp9")
CLIP_MODES = ("auto", "reencode", "copy")


@dataclass(frozen=True)
class ClipSettings:
    folder: str | None = None  # None: the state folder of the device id (edge_runtime.cli_settings)
    pre_s: float = 3.0  # enough to see what led to the fight
    post_s: float = 2.0  # and how it ended
    max_s: float = 120.0  # a clip of a long event stops growing: bounded disk use per event
    budget_mb: float = 2000.0  # about 3.5 hours of 854x480 clips (163 kB/s, docs/benchmarks.md)
    max_age_days: float = 7.0  # a week to review an event
    mode: str = "auto"  # copy the camera's H.264 packets when it has an RTSP stream: the least CPU
    codec: str = "h264"  # what every browser plays
    max_height: int = 480  # 854x480 from a 16:9 camera: people recognisable, a ring of a few MB (JPEG)
    fps: float = 15.0  # smooth enough to follow a fight; half the CPU and ring of 30 fps
    http_bind: str | None = None  # None: the clips are not served
    token_file: str | None = None


def parse_clips(s: Any) -> ClipSettings:
    """``s``: the profile's typed reader of the ``[clips]`` table (``devices.profile_section.Section``)."""
    s.only(tuple(f.name for f in dataclasses.fields(ClipSettings)))
    folder = s.get("folder", (str,), "a string", None)
    if folder is not None and not folder.startswith("/"):
        raise s.error(f"[clips] folder must be an absolute path, got {folder!r}")
    bind = s.get("http_bind", (str,), "a string", None)
    if bind is not None:
        host, sep, port = bind.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise s.error(f"[clips] http_bind must be HOST:PORT (e.g. 127.0.0.1:8765), got {bind!r}")
    token_file = s.get("token_file", (str,), "a string", None)
    if token_file is not None and not token_file.startswith("/"):
        raise s.error(f"[clips] token_file must be an absolute path, got {token_file!r}")
    max_height = s.integer("max_height", 0, 4320, 480)
    if 0 < max_height < 32:
        raise s.error(
            f"[clips] max_height must be 0 (as decoded) or an integer in [32, 4320], got {max_height}"
        )
    fps = s.number("fps", 15.0, low=0.0, high=120.0)
    if 0 < fps < 1:
        raise s.error(f"[clips] fps must be 0 (every frame) or a number in [1, 120], got {fps!r}")
    return ClipSettings(
        folder=folder,
        pre_s=s.number("pre_s", 3.0, low=0.0, high=30.0),
        post_s=s.number("post_s", 2.0, low=0.0, high=30.0),
        max_s=s.number("max_s", 120.0, low=1.0, high=3600.0),
        budget_mb=s.number("budget_mb", 2000.0, low=1.0, high=1e6),
        max_age_days=s.number("max_age_days", 7.0, low=0.0, open_low=True, high=3650.0),
        mode=s.choice("mode", CLIP_MODES, "auto"),
        codec=s.choice("codec", CLIP_CODECS, "h264"),
        max_height=max_height,
        fps=fps,
        http_bind=bind,
        token_file=token_file,
    )
