"""``edge-runtime`` with its outbox on a full disk (a real 2 MiB tmpfs): detection never stops, every event still
reaches the broker, the fault is one log line (not one per event) and /status says ``degraded``."""

from __future__ import annotations

import json

import pytest

from edge_runtime.outbox import Outbox
from tests.edge_runtime.runtime_helpers import (
    BRIGHT,
    DARK,
    Subscriber,
    dedup,
    finish,
    json_logs,
    make_bundle,
    make_video,
    read_audit,
    runtime_argv,
    start_runtime,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("storage_bundle"))


@pytest.fixture(scope="module")
def fights(tmp_path_factory):
    return make_video(
        tmp_path_factory.mktemp("storage_video") / "fights.mp4",
        [(0.5, DARK), (1, BRIGHT), (1, DARK), (1, BRIGHT), (1, DARK)],
    )


def _run(bundle, video, outbox, audit, broker) -> tuple[int, str, set, Subscriber]:
    """One edge-runtime run on ``video``: exit status, stderr, the messages it produced, the subscriber (closed
    once all of them arrived, or after 20 s)."""
    sub = Subscriber(broker.port)
    argv = runtime_argv(bundle, broker.port, outbox, [f"hall={video}"], "--audit-log", str(audit))
    code, err = finish(start_runtime(argv))
    produced = {(r["event_id"], r["seq"]) for r in read_audit(audit)}
    sub.wait_for(lambda s: set(dedup(s.events())) >= produced, timeout=20)
    sub.close()
    assert code == 0, err[-3000:]
    return code, err, produced, sub


def test_a_full_disk_neither_stops_the_runtime_nor_loses_an_event_with_the_broker_up(
    bundle, fights, small_disk, broker, tmp_path
):
    outbox = small_disk.folder / "outbox.sqlite"
    Outbox(outbox).close()  # the device's outbox, then its disk fills up (logs, recordings...)
    small_disk.fill()
    code, err, produced, sub = _run(bundle, fights, outbox, tmp_path / "audit.jsonl", broker)
    assert len({e for e, _ in produced}) == 2 and set(dedup(sub.events())) == produced  # 2 fights, 0 lost
    logs = json_logs(err)
    faults = [r for r in logs if "cannot store events" in r["message"]]
    assert len(faults) == 1 and "disk is full" in faults[0]["message"], [r["message"] for r in faults]
    assert b"degraded" in sub.payloads("/status")
    storage = [json.loads(p)["storage"] for p in sub.payloads("/stats")]
    assert storage and not storage[-1]["ok"] and storage[-1]["lost"] == 0
    assert not [r for r in logs if "kept in memory could not be stored" in r["message"]]  # all delivered


def test_a_disk_too_full_to_create_the_outbox_still_runs(bundle, fights, small_disk, broker, tmp_path):
    small_disk.fill()
    outbox = small_disk.folder / "state" / "outbox.sqlite"
    code, err, produced, sub = _run(bundle, fights, outbox, tmp_path / "audit.jsonl", broker)
    assert produced and set(dedup(sub.events())) == produced
