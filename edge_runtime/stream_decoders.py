"""How a network camera's H.264 / H.265 is decoded: OpenCV's FFmpeg (software, the default) or a hardware decoder
in a GStreamer pipeline (Jetson's ``nvv4l2decoder``, Intel's VA-API).

Software decoding works with any OpenCV (the pip wheels included) on any device. A hardware decoder needs an
OpenCV built with GStreamer, which the pip wheels are not: JetPack's ``python3-opencv`` is (Jetson), and on an
Intel board a distribution's ``python3-opencv`` (Debian, Ubuntu) with ``gstreamer1.0-plugins-bad`` (the ``va``
plugin, GStreamer 1.22 or later) and the VA-API driver (``intel-media-va-driver``). :func:`check_decoder` says
so in one line at start instead of letting every stream fail to open later.

:func:`stream_pipeline` writes the pipeline: ``rtspsrc`` (over TCP, as the FFmpeg path) ! depayload ! parse !
the decoder's own elements ! BGR ! ``appsink``. The decoder's part is one string of :data:`DECODERS`:

>>> stream_pipeline("rtsp://10.0.0.5/sub", "nvv4l2decoder").split(" ! ")[3:5]
['nvv4l2decoder', 'nvvidconv']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import cv2

__all__ = [
    "CODECS",
    "DECODERS",
    "SOFTWARE",
    "DecoderError",
    "StreamDecoder",
    "check_decoder",
    "opencv_has_gstreamer",
    "stream_pipeline",
]

SOFTWARE = "software"  # OpenCV's FFmpeg backend
CODECS = ("h264", "h265")


class DecoderError(RuntimeError):
    """A decoder this OpenCV cannot run, or a stream it cannot be used on; one line."""


@dataclass(frozen=True)
class StreamDecoder:
    """A hardware decoder: its GStreamer elements from the parsed stream to raw video, and what it needs."""

    name: str
    elements: str  # "{codec}" is replaced by h264 / h265
    needs: str  # the OpenCV build and system packages it needs, for messages and the docs


DECODERS: dict[str, StreamDecoder] = {
    d.name: d
    for d in (
        StreamDecoder(
            "nvv4l2decoder",
            # NVDEC writes to NVMM (device) memory; nvvidconv copies it out as BGRx for videoconvert
            "nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx",
            "JetPack's python3-opencv (built with GStreamer) and its nvv4l2decoder plugin",
        ),
        StreamDecoder(
            "vaapi",
            "va{codec}dec",  # GStreamer's va plugin (1.22+); it hands videoconvert system memory
            "an OpenCV built with GStreamer (Debian/Ubuntu python3-opencv), gstreamer1.0-plugins-bad 1.22+ "
            "and intel-media-va-driver",
        ),
    )
}


@functools.cache
def opencv_has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines (from ``cv2.getBuildInformation()``)."""
    return bool(re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()))


def check_decoder(decoder: str) -> None:
    """Raise :class:`DecoderError` (one line) when ``decoder`` is unknown or this OpenCV cannot run it."""
    if decoder == SOFTWARE:
        return
    if decoder not in DECODERS:
        raise DecoderError(f"unknown stream decoder {decoder!r}; known: {', '.join([SOFTWARE, *DECODERS])}")
    if not opencv_has_gstreamer():
        raise DecoderError(
            f"stream decoder {decoder!r} runs in a GStreamer pipeline, but this OpenCV ({cv2.__version__}) was "
            f"built without GStreamer: it needs {DECODERS[decoder].needs}; or decode in software "
            '(--stream-decoder software, or [streams] decoder = "software" in the device profile)'
        )


def stream_pipeline(url: str, decoder: str, codec: str = "h264", *, timeout_s: float = 10.0) -> str:
    """The GStreamer pipeline that reads the RTSP stream ``url`` with ``decoder`` into BGR frames for OpenCV.

    ``timeout_s`` bounds how long ``rtspsrc`` waits on the TCP connection (its ``tcp-timeout``). The appsink
    keeps at most 4 decoded frames (the capture thread takes them as they come, and counts what it drops).
    """
    if decoder not in DECODERS:
        raise DecoderError(
            f"no GStreamer pipeline for stream decoder {decoder!r}; known: {', '.join(DECODERS)}"
        )
    if codec not in CODECS:
        raise DecoderError(f"stream codec must be one of {', '.join(CODECS)}, got {codec!r}")
    if not re.match(r"rtsps?://", url, re.IGNORECASE):
        raise DecoderError("a hardware stream decoder reads rtsp:// and rtsps:// streams only")
    if re.search(r'[\s"\\]', url):
        raise DecoderError(
            "a stream URL for a GStreamer pipeline must not contain spaces, quotes or backslashes"
        )
    return " ! ".join(
        [
            f'rtspsrc location="{url}" protocols=tcp latency=200 tcp-timeout={int(timeout_s * 1e6)}',
            f"rtp{codec}depay",
            f"{codec}parse",
            DECODERS[decoder].elements.format(codec=codec),
            "videoconvert",
            "video/x-raw,format=BGR",
            "appsink drop=true max-buffers=4 sync=false",
        ]
    )
