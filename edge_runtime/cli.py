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
import threading
from pathlib import Path
from typing import Any

from .cli_options import MAX_QUEUE, PROG, build_parser
from .cli_settings import camera_sources, default_outbox, event_policy, load_runtime_models
from .logging_setup import setup_logging
from .usage import UsageError

__all__ = ["main"]

log = logging.getLogger("edge_runtime.cli")


class _StartupStopped(BaseException):
    """SIGTERM / SIGINT before the loop runs: start-up is abandoned, exit status 0."""


class _Signals:
    """SIGTERM / SIGINT: during start-up they raise :class:`_StartupStopped` (whatever is loading stops at
    once, even a blocked read); once :attr:`runtime` is set they ask its loop to stop (a clean shutdown)."""

    def __init__(self) -> None:
        self.runtime: Any = None
        self.count = 0
        self.startup_signal = ""  # the first signal that arrived during start-up, by name
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
            self.startup_signal = self.startup_signal or name
            raise _StartupStopped(name)
        log.info("%s: stopping%s", name, " (already stopping)" if self.count > 1 else "")
        # from another thread: this handler runs in the main thread, which may hold the stop event's lock at the
        # moment it was interrupted (inside ``Event.wait``), and setting the event here would wait on it forever
        threading.Thread(target=self.runtime.request_stop, name="stop-request", daemon=True).start()


def _runtime_config(
    args: argparse.Namespace, device_id: str, policy: Any, clips: Any, clips_folder: Any
) -> Any:
    """The runtime's settings from the options and what :func:`_run` resolved."""
    from .runtime import RuntimeConfig

    return RuntimeConfig(
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


def _run(args: argparse.Namespace, signals: _Signals) -> int:
    """Everything after parsing; raises UsageError (exit 2) or the one-line errors of the stages (exit 1)."""
    from devices.profiles import load_profile

    from .bundle import load_bundle
    from .clip_options import clip_settings, serve_clips
    from .mqtt import MqttPublisher
    from .mqtt_settings import MqttSettings
    from .outbox_fallback import FallbackOutbox
    from .outbox_file import OutboxLock
    from .runtime import Runtime
    from .schema import SchemaError, validate_id

    try:
        device_id = validate_id(args.device_id, "--device-id")
        settings = MqttSettings.from_args(args)
    except (SchemaError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.max_queue is not None and not 1 <= args.max_queue <= MAX_QUEUE:
        raise UsageError(f"--max-queue must be in [1, {MAX_QUEUE}], got {args.max_queue}")
    setup_logging(args.log_format, args.log_level, secrets=[settings.password or ""])
    profile = load_profile(args.device_profile) if args.device_profile else None
    if not args.camera and not args.source and not (profile is not None and profile.cameras):
        raise UsageError(
            "give at least one --camera INDEX or --source [NAME=]SOURCE (or [cameras.NAME] in the device profile)"
        )
    cameras = camera_sources(args, profile)
    bundle = load_bundle(args.bundle)
    if profile is not None:
        bundle.check_profile(profile)
        log.info("device: %s", profile.describe())
    policy = event_policy(args, profile, bundle)
    outbox_path = Path(args.outbox).expanduser() if args.outbox else default_outbox(device_id)
    clips, clips_folder = clip_settings(args, profile, device_id, cameras=cameras)
    config = _runtime_config(args, device_id, policy, clips, clips_folder)
    # one runtime per outbox; every problem of the file is one line here, before the models load; a full
    # disk only degrades (events kept in memory)
    with (
        OutboxLock(outbox_path),
        FallbackOutbox.open(outbox_path) as outbox,
        serve_clips(clips, clips_folder),
    ):
        models = load_runtime_models(args, profile, bundle)
        try:
            publisher = MqttPublisher(settings, device_id, outbox)
            signals.runtime = Runtime(bundle, models, cameras, publisher, config)  # signals now stop its loop
            return signals.runtime.run()
        finally:
            models.close()


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
    from .clip_writer import ClipError
    from .outbox_file import OutboxError
    from .pose_model import PoseModelError
    from .sources import SourceError, SourceSpecError

    usage = (UsageError, SourceSpecError)  # exit 2; the rest exit 1
    failures = (BundleError, OutboxError, ProfileError, BackendError, SourceError, ClipError, PoseModelError)
    try:
        return _run(args, signals)
    except (*usage, *failures, OSError, sqlite3.Error) as exc:
        if signals.startup_signal:
            # the stop raised inside a C extension's import (ONNX Runtime's, say) comes back as that import's
            # error ("initialization failed"): it is the signal, not a fault
            raise _StartupStopped(signals.startup_signal) from None
        return _error(str(exc), 2 if isinstance(exc, usage) else 1)


if __name__ == "__main__":
    sys.exit(main())
