"""``edge-runtime``: score live cameras with an exported bundle and publish anomaly events over MQTT.

A device installs only this (no torch). Bad options exit 2 with one line; a refused bundle, an unusable
outbox, an unreachable camera or a missing backend library exit 1 with one line (``edge-runtime: error:
...``). SIGTERM / SIGINT end open events, flush the outbox and publish ``offline`` before exiting 0; so does
the end of every file source. During start-up (bundle, outbox, models) they abandon it and exit 0 at once:
the outbox keeps what it holds for the next start.

Example::

    edge-runtime --bundle /opt/i3dmtn/bundle --device-profile intel-nuc --camera 0 \\
        --broker broker.lan --device-id nuc-hall
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from devices.profiles import EVENT_SECONDS_MAX, STREAM_DECODERS

from .clip_options import add_clip_arguments
from .logging_setup import LOG_FORMATS, LOG_LEVELS, setup_logging
from .mqtt_settings import ENV_PASSWORD, ENV_PASSWORD_FILE, ENV_USERNAME, add_mqtt_arguments
from .usage import UsageError

__all__ = ["build_parser", "default_outbox", "event_policy", "main"]

log = logging.getLogger("edge_runtime.cli")

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


class _StartupStopped(BaseException):
    """SIGTERM / SIGINT before the loop runs: start-up is abandoned, exit status 0."""


class _Signals:
    """SIGTERM / SIGINT: during start-up they raise :class:`_StartupStopped` (whatever is loading stops at
    once, even a blocked read); once :attr:`runtime` is set they ask its loop to stop (a clean shutdown)."""

    def __init__(self) -> None:
        self.runtime: Any = None
        self.count = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self)

    def restore(self) -> None:
        """The handlers from before :meth:`install` (``main`` called in a process that has its own)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.runtime is None:
            raise _StartupStopped(name)
        log.info("%s: stopping%s", name, " (already stopping)" if self.count > 1 else "")
        self.runtime.request_stop()


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
    src.add_argument("--max-queue", type=int, default=32, metavar="N",
                     help=f"frames buffered per camera before the oldest is dropped (default 32, at most {MAX_QUEUE})")  # fmt: skip
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
    add_mqtt_arguments(p)
    add_clip_arguments(p)
    diag = p.add_argument_group("diagnostics")
    diag.add_argument("--show", action="store_true",
                      help="show each camera with its score in a window (needs a display; else a warning)")  # fmt: skip
    diag.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                      help="text lines, or one JSON object per line for journald / a log collector (default text)")  # fmt: skip
    diag.add_argument("--log-level", choices=LOG_LEVELS, default="INFO", type=str.upper,
                      help="least severe level logged (default INFO)")  # fmt: skip
    return p


def default_outbox(device_id: str, environ: Any = None) -> Path:
    """``$STATE_DIRECTORY/outbox-<id>.sqlite`` (systemd), else ``~/.local/state/i3dmtn/outbox-<id>.sqlite``."""
    env = os.environ if environ is None else environ
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    folder = Path(state) if state else Path.home() / ".local" / "state" / "i3dmtn"
    return folder / f"outbox-{device_id}.sqlite"


def _sources(args: argparse.Namespace, profile: Any) -> list[tuple[str, Any]]:
    from .schema import SchemaError, validate_id
    from .source_specs import RECORD_ROLE, parse_source_specs
    from .sources import CameraSource, GStreamerSource

    cameras = []
    for spec in args.camera:
        head, sep, rest = spec.rpartition("=")
        index = rest.strip()
        if not index.isdigit():
            raise UsageError(
                f"--camera {spec!r}: expected [NAME=]INDEX with INDEX a number, e.g. 0 or door=0"
            )
        try:
            name = validate_id(head.strip(), "camera name") if sep else f"cam{index}"
        except SchemaError as exc:
            raise UsageError(f"--camera {spec!r}: {exc}") from None
        pipeline = profile.camera_pipeline(int(index)) if profile is not None else None
        if pipeline is not None:
            cameras.append((name, GStreamerSource(pipeline)))
        elif profile is not None:
            c = profile.camera
            cameras.append((name, CameraSource(int(index), width=c.width, height=c.height, fps=c.fps)))
        else:
            cameras.append((name, CameraSource(int(index))))
    specs = list(args.source)
    for name, streams in profile.cameras.items() if profile is not None else ():
        specs.append(
            f"{name}={streams.detect}" + (f"{RECORD_ROLE}{streams.record}" if streams.record else "")
        )
    streams = profile.streams if profile is not None else None
    decoder = args.stream_decoder or (streams.decoder if streams is not None else "software")
    codec = streams.codec if streams is not None else "h264"
    parsed = parse_source_specs(specs, realtime=args.realtime, loop=args.loop, decoder=decoder, codec=codec)
    names = [n for n, _ in cameras + parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"camera name(s) {dupes} are used twice: give each --camera / --source a NAME=")
    return cameras + parsed


def _engine_options(profile: Any, backend: str) -> dict[str, Any]:
    """The profile's [engine] keys as options of the backend that runs."""
    if profile is None or profile.model.backend != backend:
        return {}
    e = profile.engine
    if backend == "onnxruntime" and e.intra_op_threads is not None:
        return {"intra_op_num_threads": e.intra_op_threads}
    if backend == "openvino":
        keys = {
            "performance_hint": e.performance_hint,
            "num_streams": e.num_streams,
            "max_batch": e.max_batch,
        }
        return {key: value for key, value in keys.items() if value is not None}
    if backend == "tensorrt" and e.workspace_mb is not None:
        return {"workspace_mb": e.workspace_mb, "timing_cache": e.timing_cache, "max_batch": e.max_batch,
                "opt_batch": e.opt_batch, "builder_optimization_level": e.builder_optimization_level}  # fmt: skip
    return {}


def event_policy(args: argparse.Namespace, profile: Any, bundle: Any) -> Any:
    """The event policy: each setting from its option, else the device profile's ``[events]`` key, else the
    bundle's event policy (chosen at export on validation videos; a bundle from before it: its threshold), else
    the runtime's default. An off threshold not given follows the on threshold at the profile's ``off_ratio``,
    else at the bundle's off/on ratio (0.8 for a bundle without an event policy)."""
    from .events import EventPolicy

    ev = profile.events if profile is not None else None
    base = bundle.event_policy
    bundle_src = "bundle event policy" if base is not None else "default"

    def pick(option: str, key: str, fallback: Any, fallback_src: str) -> tuple[Any, str]:
        if getattr(args, option) is not None:
            return getattr(args, option), "--" + option.replace("_", "-")
        if ev is not None and getattr(ev, key) is not None:
            return getattr(ev, key), f"profile {profile.name}"
        return fallback, fallback_src

    on, on_src = pick("on_threshold", "on_threshold", base.on_threshold if base else bundle.threshold,
                      "bundle event policy" if base is not None else "bundle threshold")  # fmt: skip
    if args.off_threshold is not None:
        off, off_src = args.off_threshold, "--off-threshold"
    elif ev is not None and ev.off_ratio is not None:
        off, off_src = on * ev.off_ratio, f"profile {profile.name} off_ratio"
    elif base is not None:
        same = on == base.on_threshold
        off = base.off_threshold if same else on * base.off_threshold / base.on_threshold
        off_src = "bundle event policy" if same else "the bundle event policy's off/on ratio"
    else:
        off, off_src = None, "0.8 x on"
    defaults = EventPolicy(on_threshold=on)
    min_s, min_src = pick("min_duration", "min_duration_s",
                          base.min_duration_s if base else defaults.min_duration_s, bundle_src)  # fmt: skip
    cool_s, cool_src = pick("cooldown", "cooldown_s", defaults.cooldown_s, "default")
    every_s, _ = pick("update_interval", "update_interval_s", defaults.update_interval_s, "default")
    try:
        policy = EventPolicy(on_threshold=on, off_threshold=off, min_duration_s=min_s, cooldown_s=cool_s,
                             update_interval_s=every_s)  # fmt: skip
    except ValueError as exc:
        raise UsageError(
            str(exc).replace("event policy ", "--").replace("_threshold", "-threshold")
        ) from None
    log.info(
        "event policy: on %.3f (%s), off %.3f (%s), min duration %g s (%s), cooldown %g s (%s)",
        policy.on_threshold, on_src, policy.off_threshold, off_src, policy.min_duration_s, min_src,
        policy.cooldown_s, cool_src,
    )  # fmt: skip
    return policy


def _run(args: argparse.Namespace, signals: _Signals) -> int:
    """Everything after parsing; raises UsageError (exit 2) or the one-line errors of the stages (exit 1)."""
    from devices.profiles import load_profile

    from .bundle import load_bundle
    from .clip_options import clip_settings, serve_clips
    from .mqtt import MqttPublisher
    from .mqtt_settings import MqttSettings
    from .outbox_fallback import FallbackOutbox
    from .outbox_file import OutboxLock
    from .runtime import Runtime, RuntimeConfig
    from .schema import SchemaError, validate_id

    try:
        device_id = validate_id(args.device_id, "--device-id")
        settings = MqttSettings.from_args(args)
    except (SchemaError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= args.max_queue <= MAX_QUEUE:
        raise UsageError(f"--max-queue must be in [1, {MAX_QUEUE}], got {args.max_queue}")
    setup_logging(args.log_format, args.log_level, secrets=[settings.password or ""])
    profile = load_profile(args.device_profile) if args.device_profile else None
    if not args.camera and not args.source and not (profile is not None and profile.cameras):
        raise UsageError(
            "give at least one --camera INDEX or --source [NAME=]SOURCE (or [cameras.NAME] in the device profile)"
        )
    cameras = _sources(args, profile)
    bundle = load_bundle(args.bundle)
    if profile is not None:
        bundle.check_profile(profile)
    policy = event_policy(args, profile, bundle)
    outbox_path = Path(args.outbox).expanduser() if args.outbox else default_outbox(device_id)
    clips, clips_folder = clip_settings(args, profile, device_id)
    config = RuntimeConfig(
        device_id=device_id,
        policy=policy,
        stats_interval_s=max(args.stats_interval, 0.1),
        flush_timeout_s=args.flush_timeout,
        max_queue=args.max_queue,
        show=args.show,
        audit_log=Path(args.audit_log).expanduser() if args.audit_log else None,
        ha_discovery=args.ha_discovery,
        clips=clips,
        clips_folder=clips_folder,
    )
    # one runtime per outbox; every problem of the file is one line here, before the models load; a full
    # disk only degrades (events kept in memory)
    with (
        OutboxLock(outbox_path),
        FallbackOutbox.open(outbox_path) as outbox,
        serve_clips(clips, clips_folder),
    ):
        models = _load_models(args, profile, bundle)
        try:
            publisher = MqttPublisher(settings, device_id, outbox)
            signals.runtime = Runtime(bundle, models, cameras, publisher, config)  # signals now stop its loop
            return signals.runtime.run()
        finally:
            models.close()


def _load_models(args: argparse.Namespace, profile: Any, bundle: Any) -> Any:
    from .runtime import load_models

    backend = args.backend or (profile.model.backend if profile is not None else None)
    return load_models(
        bundle,
        precision=args.precision or (profile.model.precision if profile is not None else None),
        backend=backend,
        device=args.inference_device or (profile.model.device if profile is not None else None),
        options=_engine_options(profile, backend) if backend else {},
    )


def _error(message: str, status: int) -> int:
    first = (message.strip().splitlines() or [""])[0]
    print(f"{PROG}: error: {first}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edge-runtime`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage + one error line, or --help
        return int(exc.code or 0)
    signals = _Signals()
    signals.install()  # from here on, SIGTERM / SIGINT exit 0 (the imports below take a while)
    try:
        return _run_reporting_errors(args, signals)
    except _StartupStopped as stop:
        log.info("%s during start-up: stopped before running (the outbox is kept for the next start)", stop)
        return 0
    finally:
        signals.restore()


def _run_reporting_errors(args: argparse.Namespace, signals: _Signals) -> int:
    """:func:`_run`, each stage's one-line error printed with its exit status (2 usage, 1 the rest)."""
    import sqlite3

    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV's own warnings would bypass our log format
    from devices.profiles import ProfileError

    from .backends import BackendError
    from .bundle import BundleError
    from .clips import ClipError
    from .outbox_file import OutboxError
    from .sources import SourceError, SourceSpecError

    try:
        return _run(args, signals)
    except (UsageError, SourceSpecError) as exc:
        return _error(str(exc), 2)
    except (BundleError, OutboxError, ProfileError, BackendError, SourceError, OSError, sqlite3.Error) as exc:
        return _error(str(exc), 1)
    except ClipError as exc:
        return _error(str(exc), 1)


if __name__ == "__main__":
    sys.exit(main())
