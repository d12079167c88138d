"""Reviewed event clips back into training data (``i3dmtn data harvest``).

Reads a watcher's saved clips (``i3dmtn alerts --save-clips DIR``: ``DIR/<device>/<event_id>.mp4``) and its
database (``--db``, default ``DIR/watcher.sqlite``: events and their latest reviews) and copies each reviewed
clip into a data set folder in the project's layout::

    out/normal/<device>_<event_id>.mp4     reviewed "false alarm": a hard normal example
    out/anomaly/<device>_<event_id>.mp4    reviewed "fight"
    out/annotations.json                   a record per harvested anomaly: its frames inside the event are 1
                                           (the clip's pre- and post-capture are 0); records of others kept
    out/harvest.json                       where each clip came from: event, device, camera, verdict, reviewer,
                                           note, the clip's SHA-256 and source path, when it was harvested

A clip whose SHA-256 is not the one its event announced is refused; an existing file is never overwritten
(the same clip again is "already there"; another file of that name is refused). numpy + OpenCV only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.bundle import sha256_file
from edge_runtime.schema import CLIP_FILE_RE, SchemaError, validate_id
from edge_runtime.video import VideoReadError, probe_video
from training.data.records import ANNOTATIONS_FILE, DatasetError, load_annotations, read_json

__all__ = ["HARVEST_FILE", "VERDICT_CLASS", "HarvestResult", "harvest", "frame_labels"]

log = logging.getLogger(__name__)

HARVEST_FILE = "harvest.json"
VERDICT_CLASS = {"false_alarm": "normal", "fight": "anomaly"}
OUTCOMES = ("harvested", "already there", "hash mismatch", "name taken", "no clip", "unreadable")


@dataclass
class HarvestResult:
    counts: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in VERDICT_CLASS.values()})
    harvested: list[dict[str, Any]] = field(default_factory=list)


def frame_labels(num_frames: int, clip: dict[str, Any], started_at: float, ended_at: float) -> np.ndarray:
    """0/1 per frame of a clip: 1 for the frames shown between the event's start and end.

    Frame ``i`` is shown at ``clip.started_at + i * clip.duration_s / clip.frames`` (the clip's own frame
    spacing; its first frame is the pre-capture's first)."""
    step = float(clip["duration_s"]) / max(1, int(clip["frames"]))
    times = float(clip["started_at"]) + step * np.arange(num_frames)
    return ((times >= started_at) & (times <= ended_at)).astype(np.uint8)


def _reviewed(db: Path) -> list[dict[str, Any]]:
    if not db.is_file():
        raise DatasetError(f"--db {db}: no such file (the watcher's database, i3dmtn alerts --db)")
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT e.event_id, e.device_id, e.camera, e.started_at, e.ended_at, e.clip, r.verdict, r.note,"
                " r.reviewer, r.reviewed_at FROM reviews r JOIN events e ON e.event_id = r.event_id"
                " ORDER BY r.reviewed_at"
            ).fetchall()
    except sqlite3.Error as exc:
        raise DatasetError(f"--db {db}: not a watcher's database ({exc})") from None
    return [dict(r) for r in rows]


def _existing_annotations(out: Path) -> list[dict[str, Any]]:
    path = out / ANNOTATIONS_FILE
    if not path.exists():
        return []
    load_annotations(path)  # validates, naming the file
    data = read_json(path, path, "annotation file")
    if not isinstance(data, list):
        raise DatasetError(f"{path}: harvest appends to a JSON list of records; this file holds another form")
    return data


def harvest(clips_dir: Path, db: Path, out: Path) -> HarvestResult:
    """Copy every reviewed clip of ``clips_dir`` (reviews in ``db``) into ``out``; see the module docstring."""
    if not clips_dir.is_dir():
        raise DatasetError(f"--clips {clips_dir}: not a folder (i3dmtn alerts --save-clips DIR)")
    rows = _reviewed(db)
    annotations = _existing_annotations(out)
    provenance_path = out / HARVEST_FILE
    provenance = (
        read_json(provenance_path, provenance_path, "harvest file") if provenance_path.exists() else []
    )
    result = HarvestResult()
    for row in rows:
        kind = VERDICT_CLASS.get(row["verdict"])
        if kind is None:
            continue
        outcome, entry = _harvest_one(row, clips_dir, out / kind)
        result.counts[kind][outcome] += 1
        if entry is None:
            continue
        entry.update(file=f"{kind}/{entry['file']}", class_dir=kind)
        result.harvested.append(entry)
        provenance.append(entry)
        if kind == "anomaly":
            annotations.append(entry.pop("annotation"))
        else:
            entry.pop("annotation")
    if result.harvested:
        _write_json(out / ANNOTATIONS_FILE, annotations)
        _write_json(provenance_path, provenance)
    return result


def _harvest_one(row: dict[str, Any], clips_dir: Path, dest_dir: Path) -> tuple[str, dict[str, Any] | None]:
    clip = json.loads(row["clip"]) if row["clip"] else None
    try:
        device = validate_id(row["device_id"], "device_id")
        event_id = validate_id(row["event_id"], "event_id")
    except SchemaError as exc:
        log.warning("review skipped: %s", exc)
        return "unreadable", None
    if not clip or not CLIP_FILE_RE.fullmatch(str(clip.get("file"))) or row["ended_at"] is None:
        return "no clip", None
    source = clips_dir / device / clip["file"]
    if not source.is_file():
        log.warning("event %s was reviewed but its clip %s is not here", event_id, source)
        return "no clip", None
    digest = sha256_file(source)
    if digest != clip["sha256"]:
        log.warning(
            "clip %s refused: its SHA-256 %s is not its event's %s", source, digest[:16], clip["sha256"][:16]
        )
        return "hash mismatch", None
    dest = dest_dir / f"{device}_{event_id}{source.suffix}"
    if dest.exists():
        if dest.is_file() and sha256_file(dest) == digest:
            return "already there", None
        log.warning("not harvested: %s exists and is another file (never overwritten)", dest)
        return "name taken", None
    try:
        info = probe_video(source)
    except VideoReadError as exc:
        log.warning("clip %s skipped: %s", source, exc)
        return "unreadable", None
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    shutil.copyfile(source, part)
    try:
        os.link(part, dest)  # fails if dest appeared meanwhile: never overwritten
    finally:
        part.unlink()
    label = 1 if dest_dir.name == "anomaly" else 0
    labels = frame_labels(info.num_frames, clip, row["started_at"], row["ended_at"]) if label else None
    annotation = {"video_path": f"{dest_dir.name}/{dest.name}", "label": label, "num_frames": info.num_frames,
                  "fps": round(info.fps, 3), "frame_annotations": labels.tolist() if labels is not None else None}  # fmt: skip
    entry = {
        "file": dest.name, "event_id": event_id, "device_id": device, "camera": row["camera"],
        "verdict": row["verdict"], "reviewer": row["reviewer"], "reviewed_at": row["reviewed_at"], "note": row["note"],
        "started_at": row["started_at"], "ended_at": row["ended_at"], "clip_started_at": clip["started_at"],
        "sha256": digest, "source": str(source.resolve()), "harvested_at": round(time.time(), 3),
        "annotation": annotation,
    }  # fmt: skip
    return "harvested", entry


def _write_json(path: Path, value: Any) -> None:
    part = path.with_name(f".{path.name}.part")
    part.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
    os.replace(part, path)
