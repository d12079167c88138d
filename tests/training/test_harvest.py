"""``i3dmtn data harvest``: reviewed clips of a real watcher database and real H.264 clips become training
videos (false alarms -> normal/, fights -> anomaly/ with frame annotations), with provenance, never
overwriting, refusing a hash mismatch."""

from __future__ import annotations

import json

import numpy as np

from alert_consumer.review_store import ReviewStore
from edge_runtime.schema import REVIEW_SCHEMA
from tests.alert_consumer.helpers import make_event, write_clip
from training.cli import main
from training.data.records import load_annotations

FPS, START = 25.0, 1000.0  # the clips: 50 frames from t=1000.00 s, 0.04 s apart


def _watcher(tmp_path, verdicts: dict[str, str]):
    """clips/<device>/<event>.mp4 + clips/watcher.sqlite with an ended event (1000.5 .. 1001.5) per id."""
    clips, store = tmp_path / "clips", None
    store = ReviewStore(clips / "watcher.sqlite")
    for event_id, verdict in verdicts.items():
        clip = write_clip(clips / "cam-door", event_id, seconds=2.0, fps=FPS, start=START)
        end = {
            **make_event("end", event_id=event_id, seq=2),
            "started_at": START + 0.5,
            "ended_at": START + 1.5,
        }
        store.on_event({**end, "clip": clip})
        store.on_review({"schema": REVIEW_SCHEMA, "event_id": event_id, "device_id": "cam-door", "camera": "front",
                         "verdict": verdict, "note": "n", "reviewer": "ann", "reviewed_at": 5.0})  # fmt: skip
    store.close()
    return clips


def _harvest(capsys, clips, out, *extra):
    code = main(["data", "harvest", "--clips", str(clips), "--out", str(out), *extra])
    return code, capsys.readouterr()


def _row(stdout: str, outcome: str) -> tuple[int, int]:
    line = next(x for x in stdout.splitlines() if x.strip().startswith(outcome))
    return tuple(int(v) for v in line.split()[-2:])


def test_false_alarms_go_to_normal_and_fights_to_anomaly_with_frame_annotations(tmp_path, capsys):
    clips = _watcher(tmp_path, {"ev-calm": "false_alarm", "ev-fight": "fight"})
    code, out = _harvest(capsys, clips, tmp_path / "data")
    assert code == 0 and _row(out.out, "harvested") == (1, 1)
    data = tmp_path / "data"
    assert (data / "normal" / "cam-door_ev-calm.mp4").read_bytes() == (
        clips / "cam-door" / "ev-calm.mp4"
    ).read_bytes()
    annotations = load_annotations(data / "annotations.json")  # the format the loader reads
    labels = annotations["anomaly/cam-door_ev-fight.mp4"].frame_annotations
    assert labels is not None and len(labels) == 50
    assert np.flatnonzero(labels).tolist() == list(range(13, 38))  # frames shown from 1000.5 to 1001.5
    provenance = {p["event_id"]: p for p in json.loads((data / "harvest.json").read_text())}
    assert provenance["ev-calm"]["file"] == "normal/cam-door_ev-calm.mp4"
    assert (provenance["ev-fight"]["verdict"], provenance["ev-fight"]["reviewer"]) == ("fight", "ann")
    assert provenance["ev-fight"]["source"].endswith("cam-door/ev-fight.mp4")


def test_a_second_harvest_adds_nothing_and_never_overwrites(tmp_path, capsys):
    clips = _watcher(tmp_path, {"ev-a": "false_alarm", "ev-b": "false_alarm"})
    data = tmp_path / "data"
    (data / "normal").mkdir(parents=True)
    (data / "normal" / "cam-door_ev-b.mp4").write_bytes(b"someone else's video")
    code, out = _harvest(capsys, clips, data)
    assert code == 0 and _row(out.out, "harvested") == (1, 0) and _row(out.out, "name taken") == (1, 0)
    assert (data / "normal" / "cam-door_ev-b.mp4").read_bytes() == b"someone else's video"
    code, out = _harvest(capsys, clips, data)
    assert code == 0 and _row(out.out, "harvested") == (0, 0) and _row(out.out, "already there") == (1, 0)
    assert len(json.loads((data / "harvest.json").read_text())) == 1


def test_a_clip_whose_hash_is_not_its_events_is_refused(tmp_path, capsys):
    clips = _watcher(tmp_path, {"ev-x": "fight"})
    path = clips / "cam-door" / "ev-x.mp4"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    code, out = _harvest(capsys, clips, tmp_path / "data")
    assert code == 0 and _row(out.out, "hash mismatch") == (0, 1) and _row(out.out, "harvested") == (0, 0)
    assert not (tmp_path / "data" / "anomaly").exists()


def test_a_missing_database_is_one_line_naming_the_option(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    code, out = _harvest(capsys, tmp_path / "clips", tmp_path / "data", "--db", str(tmp_path / "none.sqlite"))
    assert code == 2 and out.err.count("\n") == 1 and "--db" in out.err and "none.sqlite" in out.err
