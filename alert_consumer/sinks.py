"""The sinks the options of ``i3dmtn alerts`` ask for (``--exec``, ``--save-snapshots``, ``--save-clips``,
``--db``, ``--web``), each refused by name with a :class:`~edge_runtime.usage.UsageError` when it cannot start.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from alert_consumer.actions import ExecRunner, SnapshotSaver
from alert_consumer.clip_fetcher import ClipFetcher
from alert_consumer.review_store import ReviewStore
from alert_consumer.reviewing import ReviewDesk, default_reviewer, page_record
from alert_consumer.state import RECENT_EVENTS, AlertState
from alert_consumer.web import AlertWebServer, clip_url, parse_listen_address
from alert_consumer.web_auth import read_web_password
from edge_runtime.clip_server import read_clip_token
from edge_runtime.schema import SchemaError
from edge_runtime.usage import UsageError

__all__ = ["add_sinks"]

log = logging.getLogger(__name__)


def add_sinks(
    args: argparse.Namespace,
    prefix: str,
    exec_argv: list[str] | None,
    sinks: list[Any],
    closers: list[Callable[[], None]],
) -> Any:
    """The sinks the options ask for, appended to ``sinks`` (each one's clean-up to ``closers``, in the order
    they start); returns the review desk of the page, if there is one."""
    if exec_argv:
        runner = ExecRunner(exec_argv, timeout=args.exec_timeout)
        closers.append(lambda: runner.close(timeout=args.exec_timeout))
        sinks.append(runner)
    if args.save_snapshots is not None:
        try:
            sinks.append(SnapshotSaver(args.save_snapshots))
        except OSError as exc:
            raise UsageError(
                f"--save-snapshots {str(args.save_snapshots)!r}: {exc.strerror or exc}"
            ) from None
    fetcher = _clip_fetcher(args) if args.save_clips is not None else None
    if fetcher:
        closers.append(lambda: fetcher.close(timeout=30.0))
        sinks.append(fetcher)
    store = _review_store(args)
    if store:
        closers.append(store.close)
        sinks.append(store)
    if not args.web:
        return None
    web, desk = _start_web(args, prefix, sinks, store, fetcher)
    closers.append(web.stop)
    return desk


def _clip_fetcher(args: argparse.Namespace) -> Any:
    try:
        token = read_clip_token()
    except ValueError as exc:
        raise UsageError(f"--save-clips: {exc}") from None
    try:
        return ClipFetcher(args.save_clips, args.clip_server, token)
    except OSError as exc:
        raise UsageError(f"--save-clips {str(args.save_clips)!r}: {exc.strerror or exc}") from None


def _review_store(args: argparse.Namespace) -> Any:
    path = args.db or (args.save_clips / "watcher.sqlite" if args.save_clips is not None else None)
    if path is None:
        return None
    try:
        return ReviewStore(path)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"--db {str(path)!r}: cannot open it as a SQLite database ({exc})") from None


def _start_web(args: argparse.Namespace, prefix: str, sinks: list[Any], store: Any, fetcher: Any) -> Any:
    try:
        host, port = parse_listen_address(args.web)
        password = read_web_password()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    state = AlertState(prefix)
    desk = None
    if store is not None:
        try:
            desk = ReviewDesk(prefix, store, state, args.reviewer or default_reviewer())
        except SchemaError as exc:
            raise UsageError(str(exc)) from None
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
        raise UsageError(
            f"--web {args.web!r}: cannot listen on {host}:{port} ({exc.strerror or exc})"
        ) from None
    if web.auth.read_only and desk is not None:
        log.warning(
            "--web %s is beyond loopback and no I3DMTN_WEB_PASSWORD is set: the page is read-only", args.web
        )
    sinks.append(state)
    return web, desk
