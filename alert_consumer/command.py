"""``i3dmtn alerts``: watch the anomaly events of one or many edge devices over MQTT.

Prints one line per event (or JSON lines), optionally runs a command for each start, saves the snapshot
near each start, and serves a live web page. Needs only paho-mqtt and the standard library (no torch), so
it runs on any watcher's machine.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from edge_runtime.mqtt_settings import ENV_PASSWORD, ENV_PASSWORD_FILE, ENV_USERNAME, add_mqtt_arguments

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
    parser.add_argument("--count", metavar="N", type=int, help="exit after N events (after de-duplication)")
    parser.add_argument("--timeout", metavar="S", type=float, help="exit after S seconds")
    add_mqtt_arguments(parser)


class _BadOption(Exception):
    """A bad option: printed as one line ``i3dmtn alerts: error: ...``, exit status 2."""


def _usage_error(message: str) -> Exception:
    return _BadOption(message)


def _check_seconds(value: float, option: str) -> None:
    """A duration option must be a finite number > 0: ``nan`` and ``inf`` parse as floats but never expire."""
    if not 0 < value < math.inf:  # False for nan too
        raise _usage_error(f"{option} must be > 0 seconds and finite, got {value}")


def _check_args(args: argparse.Namespace) -> None:
    if args.count is not None and args.count < 1:
        raise _usage_error(f"--count must be >= 1, got {args.count}")
    if args.timeout is not None:
        _check_seconds(args.timeout, "--timeout")
    _check_seconds(args.exec_timeout, "--exec-timeout")
    if args.save_clips is not None and not args.clip_server:
        raise _usage_error("--save-clips needs --clip-server URL (where the devices serve their clips)")
    if args.clip_server and not args.clip_server.startswith(("http://", "https://")):
        raise _usage_error(f"--clip-server must be an http:// or https:// URL, got {args.clip_server!r}")
    if args.persistent and not args.client_id:
        raise _usage_error("--persistent needs --client-id (the broker keeps the session under that id)")


def run(args: argparse.Namespace) -> int:
    """Run until Ctrl-C, ``--count`` or ``--timeout``; see ``i3dmtn alerts --help``."""
    try:
        return _run(args)
    except _BadOption as exc:
        print(f"i3dmtn alerts: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from alert_consumer.actions import EventCounter, ExecRunner, SnapshotSaver, TerminalPrinter
    from alert_consumer.consumer import AlertConsumer
    from edge_runtime.mqtt_settings import MqttSettings
    from edge_runtime.schema import SchemaError, validate_id

    _check_args(args)
    try:
        settings = MqttSettings.from_args(args)
        client_id = validate_id(args.client_id, "--client-id") if args.client_id else None
    except (ValueError, SchemaError) as exc:
        raise _usage_error(str(exc)) from None
    try:
        exec_argv = shlex.split(args.exec_cmd) if args.exec_cmd is not None else None
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise _usage_error(f"--exec: cannot parse the command line ({exc})") from None
    if exec_argv is not None and not exec_argv:
        raise _usage_error("--exec needs a command, got an empty string")

    printer = TerminalPrinter(as_json=args.json)
    counter = EventCounter(args.count)
    sinks: list[Any] = [printer, counter]
    runner = ExecRunner(exec_argv, timeout=args.exec_timeout) if exec_argv else None
    if runner:
        sinks.append(runner)
    if args.save_snapshots is not None:
        try:
            sinks.append(SnapshotSaver(args.save_snapshots))
        except OSError as exc:
            raise _usage_error(
                f"--save-snapshots {str(args.save_snapshots)!r}: {exc.strerror or exc}"
            ) from None
    fetcher = _clip_fetcher(args) if args.save_clips is not None else None
    if fetcher:
        sinks.append(fetcher)
    store = _review_store(args)
    if store:
        sinks.append(store)
    web, desk = _start_web(args, settings.topic_prefix, sinks, store, fetcher) if args.web else (None, None)
    try:
        consumer = AlertConsumer(settings.topic_prefix, sinks, device=args.device, group=args.group)
    except SchemaError as exc:
        if web:
            web.stop()
        raise _usage_error(str(exc)) from None
    try:
        return _watch(settings, consumer, client_id, args, counter, printer, desk)
    finally:
        if web:
            web.stop()
        if store:
            store.close()
        if runner:
            runner.close(timeout=args.exec_timeout)
        if fetcher:
            fetcher.close(timeout=30.0)


def _clip_fetcher(args: argparse.Namespace) -> Any:
    from alert_consumer.clip_fetcher import ClipFetcher
    from edge_runtime.clip_server import read_clip_token

    try:
        token = read_clip_token()
    except ValueError as exc:
        raise _usage_error(f"--save-clips: {exc}") from None
    try:
        return ClipFetcher(args.save_clips, args.clip_server, token)
    except OSError as exc:
        raise _usage_error(f"--save-clips {str(args.save_clips)!r}: {exc.strerror or exc}") from None


def _review_store(args: argparse.Namespace) -> Any:
    import sqlite3

    from alert_consumer.review_store import ReviewStore

    path = args.db or (args.save_clips / "watcher.sqlite" if args.save_clips is not None else None)
    if path is None:
        return None
    try:
        return ReviewStore(path)
    except (OSError, sqlite3.Error) as exc:
        raise _usage_error(f"--db {str(path)!r}: cannot open it as a SQLite database ({exc})") from None


def _start_web(args: argparse.Namespace, prefix: str, sinks: list[Any], store: Any, fetcher: Any) -> Any:
    from alert_consumer.reviewing import ReviewDesk, default_reviewer, page_record
    from alert_consumer.state import RECENT_EVENTS, AlertState
    from alert_consumer.web import AlertWebServer, clip_url, parse_listen_address
    from alert_consumer.web_auth import read_web_password
    from edge_runtime.schema import SchemaError

    try:
        host, port = parse_listen_address(args.web)
        password = read_web_password()
    except ValueError as exc:
        raise _usage_error(str(exc)) from None
    state = AlertState(prefix)
    desk = None
    if store is not None:
        try:
            desk = ReviewDesk(prefix, store, state, args.reviewer or default_reviewer())
        except SchemaError as exc:
            raise _usage_error(str(exc)) from None
        state.restore([page_record(r, args.save_clips) for r in store.recent_events(RECENT_EVENTS)
                       if r["ended_at"] is not None])  # fmt: skip
        for review in store.reviews():
            state.on_review(review)
    if fetcher is not None:
        fetcher.listeners.append(
            lambda event, path: state.on_clip_saved(
                event["event_id"], clip_url(event["device_id"], path.name), event["clip"]["duration_s"]
            )
        )
    try:
        web = AlertWebServer(
            state, host, port, desk=desk, password=password, clips_dir=args.save_clips
        ).start()
    except OSError as exc:
        raise _usage_error(
            f"--web {args.web!r}: cannot listen on {host}:{port} ({exc.strerror or exc})"
        ) from None
    if web.auth.read_only and desk is not None:
        log.warning(
            "--web %s is beyond loopback and no I3DMTN_WEB_PASSWORD is set: the page is read-only", args.web
        )
    sinks.append(state)
    return web, desk


def _watch(settings: Any, consumer: Any, client_id: str | None, args: Any, counter: Any, printer: Any,
           desk: Any = None) -> int:  # fmt: skip
    """Connect, subscribe (again on every reconnect), and wait for the end condition."""
    from edge_runtime.mqtt_settings import make_client

    stop = threading.Event()
    fatal: list[str] = []
    client_id = client_id or f"i3dmtn-alerts-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        client = make_client(settings, client_id, clean_session=not args.persistent)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a file that is not PEM, a wrong key
        if not settings.tls:
            raise
        tls_files = [
            f"{option} {str(path)!r}"
            for option, path in (
                ("--ca-file", settings.ca_file),
                ("--cert-file", settings.cert_file),
                ("--key-file", settings.key_file),
            )
            if path is not None
        ]
        raise _usage_error(
            f"cannot set up TLS with {', '.join(tls_files) or 'the system CAs'}: {exc}"
        ) from None
    subscriptions = consumer.subscriptions()
    if desk is not None:
        desk.attach(client)

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            fatal.append(f"broker {settings.url} refused the connection: {reason_code}")
            stop.set()
            return
        log.info(
            "connected to %s as %s (session present: %s)", settings.url, client_id, flags.session_present
        )
        client.subscribe(subscriptions)

    def on_subscribe(client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        refused = [
            topic for (topic, _), rc in zip(subscriptions, reason_codes, strict=False) if rc.is_failure
        ]
        if refused:
            fatal.append(f"broker {settings.url} refused the subscription to {refused}")
            stop.set()
            return
        log.info("subscribed to %s", ", ".join(t for t, _ in subscriptions))

    def on_disconnect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not stop.is_set():
            log.warning("lost the connection to %s (%s); reconnecting", settings.url, reason_code)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    client.on_message = consumer.on_message
    try:
        client.connect(settings.host, settings.port, settings.keepalive)
    except (OSError, ValueError) as exc:
        print(
            f"i3dmtn alerts: error: cannot connect to the broker {settings.url} (--broker): {exc}",
            file=sys.stderr,
        )
        return 1
    _stop_on_sigterm(stop)
    client.loop_start()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    timed_out = False
    try:
        while not (stop.is_set() or counter.done.is_set() or printer.closed.is_set()):
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                break
            stop.wait(0.2)
    except KeyboardInterrupt:
        log.info("interrupted: %d event(s) seen", counter.count)
    finally:
        stop.set()
        client.disconnect()
        client.loop_stop()
    if fatal:
        print(f"i3dmtn alerts: error: {fatal[0]}", file=sys.stderr)
        return 1
    if timed_out and args.count is not None and counter.count < args.count:
        print(
            f"i3dmtn alerts: --timeout {args.timeout:g}s passed with {counter.count} of --count {args.count} events",
            file=sys.stderr,
        )
        return 1
    return 0


def _stop_on_sigterm(stop: threading.Event) -> None:
    """SIGTERM (systemd, docker stop) ends the watch as cleanly as Ctrl-C does."""
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    except ValueError:  # not the main thread (embedded use): the caller handles its own signals
        pass
