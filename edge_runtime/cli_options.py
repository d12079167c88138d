"""The ``edge-runtime`` command line: its options, their types and ranges, and its help (argparse only;
nothing heavy is imported here)."""

from __future__ import annotations

import argparse
from typing import Any

from devices.profiles import EVENT_SECONDS_MAX, STREAM_DECODERS

from .clip_options import add_clip_arguments
from .logging_setup import LOG_FORMATS, LOG_LEVELS
from .mqtt_settings import ENV_PASSWORD, ENV_PASSWORD_FILE, ENV_USERNAME, add_mqtt_arguments

__all__ = ["MAX_QUEUE", "PROG", "build_parser"]

PROG = "edge-runtime"
_EPILOG = f"""\
environment:
  {ENV_PASSWORD}       MQTT password (never an option: argv is visible to every user)
  {ENV_PASSWORD_FILE}  file holding the MQTT password (e.g. a systemd credential)
  {ENV_USERNAME}       MQTT user name when --username is not given
  STATE_DIRECTORY            default folder of the outbox (set by systemd's StateDirectory=)
  I3DMTN_ENGINE_CACHE        TensorRT engine cache folder (Jetson)
  I3DMTN_CLIP_TOKEN          token of the clip endpoint ([clips] http_bind); or I3DMTN_CLIP_TOKEN_FILE

exit status: 0 after a clean stop (signal, also during start-up, or every source ended); 1 runtime error
(bundle, outbox unusable or in use by another runtime, camera, backend, a failed file source); 2 bad options.
A full disk is not an error: events are kept in memory and still published; /status says "degraded".
"""


MAX_QUEUE = 300  # frames per camera: 10 s of 30 fps; 300 full-HD frames are 1.9 GB already
MAX_STATS_INTERVAL_S, MAX_FLUSH_TIMEOUT_S = 3600.0, 600.0  # a stop that waits longer is killed by systemd


def _seconds(high: float) -> Any:
    """An argparse type: seconds in [0, high] (finite)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not 0 <= value <= high:
            raise argparse.ArgumentTypeError(f"expected seconds in [0, {high:g}], got {text!r}")
        return value

    return parse


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a score in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a score in [0, 1], got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line (no usage block), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (argparse only; nothing heavy is imported here)."""
    p = _Parser(
        prog=PROG,
        description="Score live cameras (or video files) with an exported i3d-mtn bundle and publish anomaly "
        "events (start / update / end) over MQTT, through a durable outbox.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", required=True, metavar="DIR", help="bundle folder written by `i3dmtn export`")
    _add_camera_arguments(p)
    _add_model_arguments(p)
    _add_event_arguments(p)
    _add_publishing_arguments(p)
    add_mqtt_arguments(p)
    add_clip_arguments(p)
    _add_diagnostics_arguments(p)
    return p


def _add_camera_arguments(p: argparse.ArgumentParser) -> None:
    """Where frames come from: cameras, sources, stream decoding, file playback, queues."""
    src = p.add_argument_group("cameras (at least one; each is its own camera with its own events)")
    src.add_argument("--camera", action="append", default=[], metavar="[NAME=]INDEX",
                     help="a V4L2 camera by index (repeatable); with a device profile its size/fps or GStreamer "
                     "pipeline is used; the camera name defaults to cam<INDEX>")  # fmt: skip
    src.add_argument("--source", action="append", default=[], metavar="[NAME=]SOURCE",
                     help="a camera index, /dev/video path, rtsp:// or http:// URL, gst:PIPELINE ! appsink, or "
                     "a video file (repeatable); NAME is the event's camera field (letters, digits, - _ .); "
                     "'SOURCE|record=URL' adds the camera's full-resolution record stream (SOURCE is scored)")  # fmt: skip
    src.add_argument("--stream-decoder", choices=STREAM_DECODERS,
                     help="how rtsp:// streams are decoded: software (OpenCV's FFmpeg, any OpenCV) or a hardware "
                     "decoder in a GStreamer pipeline, nvv4l2decoder (Jetson) or vaapi (Intel), which needs an "
                     "OpenCV built with GStreamer (default: the profile's [streams] decoder, else software)")  # fmt: skip
    src.add_argument("--realtime", action="store_true",
                     help="play video files at their own fps, like a live camera (default: as fast as possible)")  # fmt: skip
    src.add_argument("--loop", action="store_true", help="restart video files at their end (never ends)")
    src.add_argument("--max-queue", type=int, metavar="N",
                     help=f"frames buffered per camera before the oldest is dropped, at most {MAX_QUEUE}; frames at "
                     "the model's frame rate (the others are skipped before the queue). Default: 1.5 snippets, at "
                     "least 32: 48 for a bundle of 32-frame snippets, 3.2 s at 15 fps")  # fmt: skip


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The device profile and how the model runs."""
    model = p.add_argument_group("model")
    model.add_argument("--device-profile", metavar="NAME|PATH",
                       help="device profile: shipped name (generic-cpu, intel-nuc, jetson-orin-nano, ...) or a "
                       ".toml path; sets backend, precision, inference device, camera settings, event defaults")  # fmt: skip
    model.add_argument("--precision", choices=("int8", "fp16", "fp32"),
                       help="model precision (default: the profile's, else the bundle's); int8 falls back to "
                       "fp32 with a warning when the backend cannot load it")  # fmt: skip
    model.add_argument("--backend", choices=("openvino", "onnxruntime", "tensorrt"),
                       help="inference toolkit (default: the profile's, else chosen by the model format)")  # fmt: skip
    model.add_argument("--inference-device", metavar="DEV",
                       help="where the backend runs: CPU, GPU, NPU, AUTO (OpenVINO), cuda:0 (TensorRT); "
                       "default: the profile's")  # fmt: skip


def _add_event_arguments(p: argparse.ArgumentParser) -> None:
    """The event policy's settings."""
    ev = p.add_argument_group(
        "events (defaults: the profile's [events], else the bundle's event policy chosen at export, else the "
        "bundle's threshold)"
    )
    ev.add_argument("--on-threshold", type=_score, metavar="X", help="score that starts an event")
    ev.add_argument("--off-threshold", type=_score, metavar="Y",
                    help="score below which an event ends (default: the bundle's, else 0.8 x on)")  # fmt: skip
    ev.add_argument("--min-duration", type=_seconds(EVENT_SECONDS_MAX["min_duration_s"]), metavar="S",
                    help="seconds above the threshold before start is sent (default: the bundle's, else 1)")  # fmt: skip
    ev.add_argument("--cooldown", type=_seconds(EVENT_SECONDS_MAX["cooldown_s"]), metavar="S",
                    help="quiet seconds after an end before a new event (default 5)")  # fmt: skip
    ev.add_argument("--update-interval", type=_seconds(EVENT_SECONDS_MAX["update_interval_s"]), metavar="S",
                    help="an open event sends an update at least this often (default 2)")  # fmt: skip


def _add_publishing_arguments(p: argparse.ArgumentParser) -> None:
    """The device id, the outbox and what is published besides events."""
    out = p.add_argument_group("publishing")
    out.add_argument("--device-id", required=True, metavar="ID",
                     help="this device's id in topics and events (letters, digits, - _ .; no # + /)")  # fmt: skip
    out.add_argument("--outbox", metavar="PATH",
                     help="SQLite outbox of unsent events (default $STATE_DIRECTORY/outbox-<ID>.sqlite, else "
                     "~/.local/state/i3dmtn/outbox-<ID>.sqlite)")  # fmt: skip
    out.add_argument("--stats-interval", type=_seconds(MAX_STATS_INTERVAL_S), default=10.0, metavar="S",
                     help="seconds between /stats messages (default 10)")  # fmt: skip
    out.add_argument("--flush-timeout", type=_seconds(MAX_FLUSH_TIMEOUT_S), default=10.0, metavar="S",
                     help="at stop, seconds to wait for the outbox to drain; the rest is sent on next start "
                     "(default 10)")  # fmt: skip
    out.add_argument("--ha-discovery", action="store_true",
                     help="publish Home Assistant MQTT discovery configs (retained) once connected")  # fmt: skip
    out.add_argument("--audit-log", metavar="PATH",
                     help="append every produced event message (event_id, seq, type, camera) as a JSON line")  # fmt: skip


def _add_diagnostics_arguments(p: argparse.ArgumentParser) -> None:
    """A window per camera and the log's format and level."""
    diag = p.add_argument_group("diagnostics")
    diag.add_argument("--show", action="store_true",
                      help="show each camera with its score in a window (needs a display; else a warning)")  # fmt: skip
    diag.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                      help="text lines, or one JSON object per line for journald / a log collector (default text)")  # fmt: skip
    diag.add_argument("--log-level", choices=LOG_LEVELS, default="INFO", type=str.upper,
                      help="least severe level logged (default INFO)")  # fmt: skip
