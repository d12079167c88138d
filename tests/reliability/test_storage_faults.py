"""``edge-runtime`` with its outbox on a full disk (a real 2 MiB tmpfs, filled to the last byte): what reaches the
broker and what is lost, with the broker up, with it down, with a power cut (SIGKILL) on top, and when the
disk fills and frees mid-run. Each test prints its figures as one ``[...]`` line (``pytest -s``); the README's
reliability table and docs/reliability.md quote them."""

from __future__ import annotations

import signal
import time

import pytest

from edge_runtime.broker import LocalBroker
from edge_runtime.outbox import Outbox
from tests.edge_runtime.runtime_helpers import (
    BRIGHT,
    DARK,
    Subscriber,
    dedup,
    finish,
    make_bundle,
    make_video,
    read_audit,
    runtime_argv,
    start_runtime,
)
from tests.reliability.helpers import needs_mosquitto, persistent_broker_lines, wait_for

pytestmark = needs_mosquitto

FIGHT = [(0.5, DARK), (1.0, BRIGHT), (1.0, DARK)]  # one event: start, updates, end


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("storage_faults_bundle"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("storage_faults_videos")
    return {
        "fights": make_video(folder / "fights.mp4", FIGHT * 4),
        "quiet": make_video(folder / "quiet.mp4", [(0.5, DARK)]),
    }


def _broker(tmp_path) -> LocalBroker:
    return LocalBroker(config_lines=persistent_broker_lines(tmp_path / "broker"))


def _figures(name: str, produced: set, delivered: set, **more: object) -> None:
    lost = produced - delivered
    extra = "".join(f" / {k.replace('_', ' ')} {v}" for k, v in more.items())
    print(f"\n[{name}] produced {len(produced)} ({len({e for e, _ in produced})} events) / delivered "
          f"{len(produced & delivered)} / lost {len(lost)}{extra}")  # fmt: skip


def _messages(audit) -> set:
    return {(r["event_id"], r["seq"]) for r in read_audit(audit)}


def test_full_disk_broker_up(bundle, videos, small_disk, tmp_path):
    outbox, audit = small_disk.folder / "outbox.sqlite", tmp_path / "audit.jsonl"
    Outbox(outbox).close()
    small_disk.fill()
    with _broker(tmp_path) as broker:
        sub = Subscriber(broker.port)
        argv = runtime_argv(bundle, broker.port, outbox, [f"hall={videos['fights']}"], "--realtime",
                            "--audit-log", str(audit))  # fmt: skip
        code, err = finish(start_runtime(argv))
        produced = _messages(audit)
        sub.wait_for(lambda s: set(dedup(s.events())) >= produced, timeout=20)
        sub.close()
    delivered = set(dedup(sub.events()))
    _figures("full disk, broker up", produced, delivered, exit_status=code)
    assert code == 0 and len({e for e, _ in produced}) == 4 and produced <= delivered


def test_full_disk_broker_down_then_back(bundle, videos, small_disk, tmp_path):
    outbox, audit = small_disk.folder / "outbox.sqlite", tmp_path / "audit.jsonl"
    Outbox(outbox).close()
    small_disk.fill()
    with _broker(tmp_path) as broker:
        sub = Subscriber(broker.port, client_id="storage-sub", clean=False)
        broker.stop()
        argv = runtime_argv(bundle, broker.port, outbox, [f"hall={videos['fights']}"], "--realtime",
                            "--audit-log", str(audit))  # fmt: skip
        proc = start_runtime(argv)
        wait_for(lambda: len({e for e, _ in _messages(audit)}) >= 3, timeout=60, what="3 events produced")
        broker.start()  # the events kept in memory go out once it is back
        code, err = finish(proc)
        produced = _messages(audit)
        sub.wait_for(lambda s: set(dedup(s.events())) >= produced, timeout=30)
        sub.close()
    delivered = set(dedup(sub.events()))
    _figures("full disk, broker down then back", produced, delivered, exit_status=code)
    assert code == 0 and produced <= delivered


def test_full_disk_broker_down_power_cut_loses_what_memory_held(bundle, videos, small_disk, tmp_path):
    """The worst case: the disk refuses writes, the broker is away, and the device loses power."""
    outbox, audit = small_disk.folder / "outbox.sqlite", tmp_path / "audit.jsonl"
    with Outbox(outbox):
        pass
    with _broker(tmp_path) as broker:
        sub = Subscriber(broker.port, client_id="storage-sub", clean=False)
        broker.stop()
        small_disk.fill()
        argv = runtime_argv(bundle, broker.port, outbox, [f"hall={videos['fights']}"], "--realtime",
                            "--audit-log", str(audit))  # fmt: skip
        proc = start_runtime(argv)
        wait_for(lambda: len({e for e, _ in _messages(audit)}) >= 2, timeout=60, what="2 events produced")
        time.sleep(0.6)  # the second event is open (start, maybe an update) when the power goes
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        produced = _messages(audit)
        small_disk.free()
        broker.start()
        code, err = finish(
            start_runtime(runtime_argv(bundle, broker.port, outbox, [f"hall={videos['quiet']}"]))
        )
        time.sleep(2.0)  # nothing of the killed run was on disk: there is nothing to wait for
        sub.close()
    delivered = set(dedup(sub.events()))
    lost = produced - delivered
    open_forever = {e for e, _ in produced} - {e["event_id"] for e in sub.events() if e["type"] == "end"}
    _figures("full disk, broker down, power cut", produced, delivered,
             events_never_ended=len(open_forever), restart_exit_status=code)  # fmt: skip
    # what memory held is what is lost: every message of the run (none was stored, none was sent)
    assert code == 0 and lost == produced and len(produced) >= 4


def test_disk_fills_then_frees_mid_run(bundle, videos, small_disk, tmp_path):
    outbox, audit = small_disk.folder / "outbox.sqlite", tmp_path / "audit.jsonl"
    with _broker(tmp_path) as broker:
        sub = Subscriber(broker.port)
        argv = runtime_argv(bundle, broker.port, outbox, [f"hall={videos['fights']}"], "--realtime",
                            "--audit-log", str(audit))  # fmt: skip
        proc = start_runtime(argv)
        wait_for(lambda: len({e for e, _ in _messages(audit)}) >= 1, timeout=60, what="the first event")
        small_disk.fill()
        wait_for(
            lambda: len({e for e, _ in _messages(audit)}) >= 3, timeout=60, what="2 events on a full disk"
        )
        small_disk.free()
        code, err = finish(proc)
        produced = _messages(audit)
        sub.wait_for(lambda s: set(dedup(s.events())) >= produced, timeout=20)
        sub.close()
    delivered = set(dedup(sub.events()))
    began = err.count("publishing them directly")  # the line that says the fault began
    resumed = err.count("storing events again")
    _figures("disk fills and frees mid-run", produced, delivered, fault_lines=began, resumed=resumed)
    assert code == 0 and produced <= delivered
    assert began == 1 and resumed == 1, err[-3000:]
