"""``i3dmtn alerts``: watch the anomaly events of one or many edge devices over MQTT.

Prints one line per event (or JSON lines), optionally runs a command for each start, saves the snapshot
near each start, and serves a live web page. Needs only paho-mqtt and the standard library (no torch), so
it runs on any watcher's machine.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_runtime.mqtt_settings import ENV_PASSWORD, ENV_PASSWORD_FILE, ENV_USERNAME, add_mqtt_arguments
from edge_runtime.usage import UsageError

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)

EPILOG = f"""\
Topics (docs/architecture.md, "Events over MQTT"): PREFIX/DEVICE/events (QoS 1 JSON, schema i3dmtn.event/1),
PREFIX/DEVICE/status (retained online/offline/degraded), PREFIX/DEVICE/stats (JSON), PREFIX/DEVICE/snapshot/CAMERA
(retained JPEG). Events are de-duplicated by event_id + seq; invalid messages are skipped with a warning.

Environment:
  {ENV_USERNAME}       MQTT user name (or --username)
  {ENV_PASSWORD}       MQTT password (never an option: argv is visible to every user)
  {ENV_PASSWORD_FILE}  file holding the MQTT password (e.g. a systemd credential)
  I3DMTN_CLIP_TOKEN          token of the devices' clip endpoint (--save-clips); or I3DMTN_CLIP_TOKEN_FILE
  I3DMTN_WEB_PASSWORD        password to review on the --web page (needed beyond loopback); or
                             I3DMTN_WEB_PASSWORD_FILE

Exit status: 0 on Ctrl-C / SIGTERM, after --count events, or at --timeout without --count;
1 if --timeout passes before --count events arrive or the broker cannot be reached; 2 on a bad option.

Examples:
  i3dmtn alerts --broker broker.lan
  i3dmtn alerts --json --device cam-door | jq .peak_score
  i3dmtn alerts --web :8080 --save-snapshots ~/alerts --exec "notify-send 'fight detected'"
  i3dmtn alerts --save-clips ~/clips --clip-server 'http://{{device_id}}.lan:8765'
  I3DMTN_WEB_PASSWORD_FILE=~/.i3dmtn-web i3dmtn alerts --web 0.0.0.0:8080 --save-clips ~/clips \\
      --clip-server 'http://{{device_id}}.lan:8765' --db ~/clips/watcher.sqlite
  i3dmtn alerts --group pager --client-id pager-1 --persistent --exec /usr/local/bin/page-guard
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``i3dmtn alerts`` (argparse only: cheap to import)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    _add_event_arguments(parser)
    _add_session_arguments(parser)
    _add_web_arguments(parser)
    parser.add_argument("--count", metavar="N", type=int, help="exit after N events (after de-duplication)")
    parser.add_argument("--timeout", metavar="S", type=float, help="exit after S seconds")
    add_mqtt_arguments(parser)


def _add_event_arguments(parser: argparse.ArgumentParser) -> None:
    """Which events, and what is done with each: printed, snapshots and clips saved, a command run."""
    parser.add_argument("--device", metavar="ID", help="watch only this device id (default: every device)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each event as one JSON line (the message itself) for piping",
    )
    parser.add_argument(
        "--save-snapshots",
        metavar="DIR",
        type=Path,
        help="write the snapshot near each start to DIR/<device>_<camera>_<event_id>.jpg",
    )
    parser.add_argument(
        "--save-clips",
        metavar="DIR",
        type=Path,
        help="fetch the clip of each event from its device once its end says it exists, check its SHA-256, "
        "and keep it as DIR/<device>/<event_id>.mp4 (needs --clip-server and the clip token)",
    )
    parser.add_argument(
        "--clip-server",
        metavar="URL",
        help="the devices' clip endpoint, e.g. http://{device_id}.lan:8765 ({device_id} is replaced by the "
        "event's device id)",
    )
    parser.add_argument(
        "--exec",
        metavar="CMD",
        dest="exec_cmd",
        help="run CMD (split like a shell, but no shell) for each start event, with the event JSON on stdin; "
        "runs on a worker thread, failures are logged",
    )
    parser.add_argument(
        "--exec-timeout",
        metavar="S",
        type=float,
        default=30.0,
        help="kill an --exec command that runs longer than S seconds (default 30)",
    )


def _add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """The MQTT subscription: a shared group, a fixed client id, a persistent session."""
    parser.add_argument(
        "--group",
        metavar="NAME",
        help="shared subscription $share/NAME/...: consumers in the same group split the events between them",
    )
    parser.add_argument(
        "--client-id", metavar="ID", help="MQTT client id (default: a random one; fixed with --persistent)"
    )
    parser.add_argument(
        "--persistent",
        action="store_true",
        help="keep the MQTT session (needs --client-id): QoS 1 events sent while this consumer is away "
        "are delivered when it comes back",
    )


def _add_web_arguments(parser: argparse.ArgumentParser) -> None:
    """The live page, the watcher's database and the reviewer's name."""
    parser.add_argument(
        "--web",
        metavar="[HOST]:PORT",
        help="also serve a live page at http://HOST:PORT/ (default host 127.0.0.1): events, their clips "
        "(--save-clips) and score timelines, and, with --db, marking an event 'fight' or 'false alarm'. "
        "Viewing needs no login; reviewing from beyond loopback needs I3DMTN_WEB_PASSWORD(_FILE)",
    )
    parser.add_argument(
        "--db",
        metavar="FILE",
        type=Path,
        help="the watcher's SQLite database: every event seen (with its clip and score timeline) and the "
        "reviews, made here or by other watchers (retained on PREFIX/DEVICE/reviews/EVENT_ID); "
        "read by `i3dmtn data harvest` (default: DIR/watcher.sqlite with --save-clips DIR)",
    )
    parser.add_argument(
        "--reviewer",
        metavar="ID",
        help="the name reviews made on this page are signed with (default: the user name)",
    )


def _check_seconds(value: float, option: str) -> None:
    """A duration option must be a finite number > 0: ``nan`` and ``inf`` parse as floats but never expire."""
    if not 0 < value < math.inf:  # False for nan too
        raise UsageError(f"{option} must be > 0 seconds and finite, got {value}")


def _check_args(args: argparse.Namespace) -> None:
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be >= 1, got {args.count}")
    if args.timeout is not None:
        _check_seconds(args.timeout, "--timeout")
    _check_seconds(args.exec_timeout, "--exec-timeout")
    if args.save_clips is not None and not args.clip_server:
        raise UsageError("--save-clips needs --clip-server URL (where the devices serve their clips)")
    if args.clip_server and not args.clip_server.startswith(("http://", "https://")):
        raise UsageError(f"--clip-server must be an http:// or https:// URL, got {args.clip_server!r}")
    if args.persistent and not args.client_id:
        raise UsageError("--persistent needs --client-id (the broker keeps the session under that id)")


def run(args: argparse.Namespace) -> int:
    """Run until Ctrl-C, ``--count`` or ``--timeout``; see ``i3dmtn alerts --help``. A bad option raises
    :class:`~edge_runtime.usage.UsageError` (one line, exit status 2)."""
    from alert_consumer.actions import EventCounter, TerminalPrinter
    from alert_consumer.consumer import AlertConsumer
    from alert_consumer.sinks import add_sinks
    from edge_runtime.mqtt_settings import MqttSettings
    from edge_runtime.schema import SchemaError, validate_id

    _check_args(args)
    try:
        settings = MqttSettings.from_args(args)
        client_id = validate_id(args.client_id, "--client-id") if args.client_id else None
    except (ValueError, SchemaError) as exc:
        raise UsageError(str(exc)) from None
    exec_argv = _exec_argv(args)
    printer = TerminalPrinter(as_json=args.json)
    counter = EventCounter(args.count)
    sinks: list[Any] = [printer, counter]
    closers: list[Callable[[], None]] = []
    try:
        desk = add_sinks(args, settings.topic_prefix, exec_argv, sinks, closers)
        try:
            consumer = AlertConsumer(settings.topic_prefix, sinks, device=args.device, group=args.group)
        except SchemaError as exc:
            raise UsageError(str(exc)) from None
        return _watch(settings, consumer, client_id, args, counter, printer, desk)
    finally:
        for close in reversed(closers):
            close()


def _exec_argv(args: argparse.Namespace) -> list[str] | None:
    """``--exec`` split like a shell (no shell runs it)."""
    if args.exec_cmd is None:
        return None
    try:
        argv = shlex.split(args.exec_cmd)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise UsageError(f"--exec: cannot parse the command line ({exc})") from None
    if not argv:
        raise UsageError("--exec needs a command, got an empty string")
    return argv


def _watch(settings: Any, consumer: Any, client_id: str | None, args: Any, counter: Any, printer: Any,
           desk: Any = None) -> int:  # fmt: skip
    """Connect, subscribe (again on every reconnect), wait for the end condition; the exit status."""
    from alert_consumer.connection import ConsumerConnection

    connection = ConsumerConnection(
        settings, consumer.subscriptions(), consumer.handle, client_id, persistent=args.persistent
    )
    if desk is not None:
        desk.attach(connection.client)
    _stop_on_sigterm()
    timed_out = False
    try:  # Ctrl-C from here on, even while connecting, is a clean stop: paho's thread is joined, exit 0
        connection.start()
        timed_out = _wait(connection.stopped, counter, printer, args.timeout)
    except (OSError, ValueError) as exc:
        print(
            f"i3dmtn alerts: error: cannot connect to the broker {settings.url} (--broker): {exc}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        log.info("interrupted: %d event(s) seen", counter.count)
    finally:
        connection.stop()
    return _exit_status(connection.failure, timed_out, args, counter)


def _wait(stop: threading.Event, counter: Any, printer: Any, timeout: float | None) -> bool:
    """Until ``stop``, ``--count`` events, a closed stdout or ``--timeout``; True if the timeout ended it."""
    deadline = time.monotonic() + timeout if timeout else None
    while not (stop.is_set() or counter.done.is_set() or printer.closed.is_set()):
        if deadline is not None and time.monotonic() >= deadline:
            return True
        stop.wait(0.2)
    return False


def _exit_status(failure: str | None, timed_out: bool, args: Any, counter: Any) -> int:
    """1 when the broker refused us, or ``--timeout`` came before ``--count`` events; else 0."""
    if failure:
        print(f"i3dmtn alerts: error: {failure}", file=sys.stderr)
        return 1
    if timed_out and args.count is not None and counter.count < args.count:
        print(
            f"i3dmtn alerts: --timeout {args.timeout:g}s passed with {counter.count} of --count {args.count} events",
            file=sys.stderr,
        )
        return 1
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, docker stop) ends the watch as Ctrl-C does: it raises ``KeyboardInterrupt`` in the
    main thread (a handler that set an event could wait forever on the event's lock, held by the main thread
    it interrupted)."""
    try:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread (embedded use): the caller handles its own signals
        pass
