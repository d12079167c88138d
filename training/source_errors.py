"""Where a test set's errors are, by source video.

On real video the errors gather by scene: a scene's calm clips all above the threshold, or its fights all below
(docs/real-video.md). ``i3dmtn data prepare`` records each clip's source video (``--groups``) in the
``split.json`` beside the split folders; :func:`clips_with_sources` joins an ``evaluate`` report's videos with
it, :func:`source_errors` counts the fights missed and the calm clips alerted per source, and
:func:`error_lines` says it in a few lines. ``i3dmtn evaluate`` prints them for a prepared test folder, and
``benchmarks.real_quality`` over the rounds of a cross-validation (a row per round).

>>> rows = [{"threshold": 0.5, "clips": [{"group": "hall", "label": 1, "score": 0.2},
...                                      {"group": "hall", "label": 0, "score": 0.1}]}]
>>> error_lines(rows)
['errors by source video: 1 of 1 sources have one', '  hall: 1 of 1 fights missed, 0 of 1 calm clips alerted']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["clips_with_sources", "error_lines", "read_split", "source_errors"]

SPLIT_FILE = "split.json"  # written by ``i3dmtn data prepare`` beside train/ val/ test/


def read_split(folder: Path) -> dict[str, Any] | None:
    """The ``split.json`` that ``data prepare`` wrote beside the split ``folder`` (such as ``DATA/test``), or
    ``None`` when there is none or it does not read as one."""
    path = Path(folder).parent / SPLIT_FILE
    try:
        split = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return split if isinstance(split, dict) and isinstance(split.get("clips"), list) else None


def clips_with_sources(split: dict[str, Any], folder: str, videos: Sequence[dict[str, Any]]) -> list[dict]:
    """An ``evaluate`` report's ``videos`` of the split folder named ``folder`` (``"test"``), each as ``video``
    (the data set's own path of the clip), ``label``, ``score`` and ``group`` (its source video; the clip itself
    when the split had no groups or does not list it)."""
    by_path = {c.get("path"): c for c in split["clips"]}
    clips = []
    for video in videos:
        clip = by_path.get(f"{folder}/{video['video']}", {})
        source = clip.get("source", video["video"])
        clips.append(
            {
                "video": source,
                "label": int(video["label"]),
                "score": float(video["score"]),
                "group": clip.get("group") or source,
            }
        )
    return clips


def source_errors(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source video, over every row's ``clips`` judged at that row's ``threshold`` (a row per test set or
    cross-validation round, with an optional ``fold``): its fold, fights and fights missed, calm clips and calm
    clips alerted; the sources with the most errors first."""
    sources: dict[str, dict[str, Any]] = {}
    for row in rows:
        for clip in row["clips"]:
            s = sources.setdefault(
                clip["group"], {"group": clip["group"], "fold": row.get("fold"), "fights": 0, "missed": 0,
                                "calm": 0, "alerted": 0},
            )  # fmt: skip
            alert = clip["score"] >= row["threshold"]
            if clip["label"]:
                s["fights"] += 1
                s["missed"] += not alert
            else:
                s["calm"] += 1
                s["alerted"] += alert
    return sorted(sources.values(), key=lambda s: (-(s["missed"] + s["alerted"]), s["fold"] or 0, s["group"]))


def error_lines(rows: Sequence[dict[str, Any]], limit: int = 5) -> list[str]:
    """A heading (how many sources have an error) and a line for each of the ``limit`` sources with the most."""
    errors = source_errors(rows)
    wrong = [s for s in errors if s["missed"] + s["alerted"]]
    shown = f", the {limit} with the most" if len(wrong) > limit else ""
    lines = [f"errors by source video: {len(wrong)} of {len(errors)} sources have one{shown}"]
    for s in wrong[:limit]:
        fold = f" (fold {s['fold']})" if s["fold"] is not None else ""
        lines.append(
            f"  {s['group']}{fold}: {s['missed']} of {s['fights']} fights missed, "
            f"{s['alerted']} of {s['calm']} calm clips alerted"
        )
    return lines
