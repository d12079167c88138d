"""What a cross-validation of :mod:`benchmarks.real_quality` leaves to look at: every test clip's out-of-fold
score with its source video, a figure and a JSON file.

The rounds' metrics are means over folds; the errors are clips, and on real video they gather by scene
(:mod:`training.source_errors` counts them per source video). :func:`plot_cross_validation` draws each fold's
ROC curve beside every clip's score minus its fold's threshold, one column per source: a fight under the line
is missed, a calm clip over it an alert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.source_errors import clips_with_sources, read_split, source_errors

__all__ = ["fold_clips", "plot_cross_validation", "write_json"]

FIGHT_COLOUR, CALM_COLOUR = "tab:red", "tab:blue"


def fold_clips(data: Path, report: dict[str, Any]) -> list[dict[str, Any]]:
    """The test clips of one round (``data/test``), each with its source video from the round's ``split.json``
    (:func:`training.source_errors.clips_with_sources`)."""
    split = read_split(data / "test")
    if split is None:
        raise FileNotFoundError(f"{data / 'split.json'}: no split written by i3dmtn data prepare")
    return clips_with_sources(split, "test", report["videos"])


def plot_cross_validation(rows: Sequence[dict[str, Any]], save_path: Path | str | None = None):
    """Left: each fold's ROC curve of the clips' scores, the floor's pooled over the folds (dashed). Right:
    every clip's score minus its fold's threshold, one column per source video (grouped by fold), fights red,
    calm clips blue: red under zero are missed fights, blue over it false alarms."""
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    from training.plots import save_figure

    errors = {s["group"]: s for s in source_errors(rows)}
    order = sorted(errors, key=lambda g: (errors[g]["fold"], g))
    fig = Figure(figsize=(6 + 0.25 * len(order), 4.5), layout="constrained")
    roc, strip = fig.add_gridspec(1, 2, width_ratios=[1, max(1.5, 0.06 * len(order))]).subplots()
    for row in rows:
        labels = [c["label"] for c in row["clips"]]
        if len(set(labels)) == 2:
            fpr, tpr, _ = roc_curve(labels, [c["score"] for c in row["clips"]])
            roc.plot(fpr, tpr, label=f"fold {row['fold']} (AUC {row['auc']:.3f})")
    floor = [(c["label"], c["score"]) for row in rows for c in row.get("floor", [])]
    if len({label for label, _ in floor}) == 2:
        fpr, tpr, _ = roc_curve(*zip(*floor, strict=True))
        roc.plot(fpr, tpr, "k--", alpha=0.6, label="floor (no training), pooled")
    roc.plot([0, 1], [0, 1], color="grey", lw=0.5)
    roc.set(xlabel="false alarm rate", ylabel="fights alerted", title="ROC per test fold", aspect="equal")
    roc.legend(fontsize=8, loc="lower right")
    column = {g: i for i, g in enumerate(order)}
    jitter = np.random.default_rng(0)
    for row in rows:
        for clip in row["clips"]:
            x = column[clip["group"]] + jitter.uniform(-0.2, 0.2)
            colour, marker = (FIGHT_COLOUR, "x") if clip["label"] else (CALM_COLOUR, "o")
            strip.scatter(x, clip["score"] - row["threshold"], c=colour, marker=marker, s=18, alpha=0.8)
    strip.axhline(0, color="black", lw=1)
    strip.set_xticks(
        range(len(order)), [f"{g[:12]} ({errors[g]['fold']})" for g in order], rotation=90, fontsize=7
    )
    strip.set(
        ylabel="score - the fold's threshold",
        title="every test clip by source video (fold): red x fight, blue o calm",
        xlim=(-0.6, len(order) - 0.4),
    )
    strip.grid(axis="y", alpha=0.3)
    return save_figure(fig, save_path)


def write_json(path: Path, rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """The rounds (each with its clips) and the summary, as JSON, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"summary": summary, "folds": list(rows)}, indent=1))
    tmp.replace(path)
    return path
