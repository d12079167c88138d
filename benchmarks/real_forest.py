"""Real video, the motion forest alone: grouped k-fold cross-validation of its statistics in minutes.

The fused recipe's forest (:mod:`training.motion_forest`) fitted and scored as ``i3dmtn train`` and
``evaluate`` fit and score it, without training the network, so that a change to the statistics, the
preprocessing or the forest is measured in minutes instead of the hour of :mod:`benchmarks.real_quality`:

1. every clip's window statistics, once for all folds: the config's data set (:func:`training.data.
   video_dataset.dataset_from_config`, frames from a frame cache, THE preprocessing), its snippets as
   validation takes them, the statistics of :mod:`edge_runtime.motion_stats`, the streaming rule's windows;
2. round ``i``: ``i3dmtn data prepare --folds k --fold i`` (the grouped split of ``real_quality``), the forest
   fitted on train/'s windows (:func:`training.motion_forest.fit_forest`, the config's trees and seed), a
   video's score the max over its windows (the streaming rule at ``motion_weight = 1``), the threshold chosen
   on val/ (Youden's, as the trainer chooses it); with ``motion_crops = 3`` every window is scored as the max
   over the three crop positions (:func:`edge_runtime.motion_fusion.crops_forest`, the forest still fitted on
   the centre crop's windows), as the device scores it; with ``motion_forest_data = "train+val"`` the forest fitted
   again on train/ + val/, as training refits it; video AUC, AP, EER and accuracy at that threshold on test/.

``--repeats R`` runs the whole k-fold again with the fold seeds ``SEED + 1 .. SEED + R - 1`` (the statistics are
computed once) and reports the mean over the repeats with their spread: on the 29 scenes of the reference
clips, the forest's 5-fold mean AUC moves by 0.04 between fold seeds, so a difference of 0.01 needs repeats.

It states no goal: the product's figures are ``real_quality``'s, where the forest is fused with the network.

    python -m benchmarks.real_forest                                   # the surveillance preset, 5 folds
    python -m benchmarks.real_forest --set flow_short_side=160        # another preprocessing
    python -m benchmarks.real_forest --set motion_forest_data=train   # the forest of train/ alone
    python -m benchmarks.real_forest --set motion_crops=1             # the centre crop alone
    python -m benchmarks.real_forest --set motion_forest_trees=500 --json out.json
    python -m benchmarks.real_forest --repeats 3 --set frame_rate=10  # 3 splits: 0.01 is within one's noise
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.real_quality import (
    DATA_HELP,
    add_split_arguments,
    doc_parser,
    prepare_fold,
    resolve_split_options,
)
from training.data.records import SPLITS

__all__ = ["clip_windows", "fold_metrics", "main", "overall_mean", "repeat_means"]

Windows = dict[Path, tuple[np.ndarray, np.ndarray]]  # clip (resolved) -> (window statistics, labels)


def clip_windows(config: dict[str, Any], folder: Path, frame_cache: Path, known: Windows) -> list[Path]:
    """The clips of ``folder`` (``normal/`` + ``anomaly/``), their window statistics added to ``known`` where
    missing; unreadable clips are skipped (the data set warns and counts them)."""
    from edge_runtime.video import VideoReadError
    from training.configs import to_preprocess_config
    from training.data.frame_cache import FrameCache
    from training.data.video_dataset import dataset_from_config
    from training.motion_forest import video_windows

    cache = FrameCache(frame_cache, to_preprocess_config(config))
    dataset = dataset_from_config(config, folder, train=False, frame_cache=cache, progress=False)
    clips = []
    for index, record in enumerate(dataset.records):
        key = Path(record.path).resolve()
        if key not in known:
            try:
                known[key] = video_windows(
                    dataset, index, int(config["num_snippets"]), int(config["motion_crops"])
                )
            except VideoReadError as exc:
                print(f"skipping {record.path}: {exc}")
                continue
        clips.append(key)
    return clips


def fold_metrics(
    config: dict[str, Any], windows: Windows, train: list[Path], val: list[Path], test: list[Path]
) -> dict[str, Any]:
    """Fit the forest on ``train``'s windows and choose the threshold on ``val``; with ``motion_forest_data =
    "train+val"`` refit it on both, as training does; the video metrics of the last forest on ``test``."""
    from edge_runtime.motion_fusion import crops_forest
    from edge_runtime.motion_stats import WINDOW_STATS_SIZE
    from training.metrics import video_metrics
    from training.motion_forest import fit_forest

    crops = int(config["motion_crops"])

    def fitted(clips: list[Path]) -> tuple[Any, int]:  # on the centre crop's windows, as training fits it
        x = np.concatenate([windows[c][0][:, :WINDOW_STATS_SIZE] for c in clips])
        y = np.concatenate([windows[c][1] for c in clips])
        return fit_forest(x, y, config), len(y)

    def scored(forest: Any, clips: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        labels = np.array([int(windows[c][1].max()) for c in clips])
        return labels, np.array([float(crops_forest(forest, windows[c][0], crops).max()) for c in clips])

    forest, n_windows = fitted(train)
    threshold = video_metrics(*scored(forest, val))["optimal_threshold"]
    if config["motion_forest_data"] == "train+val":
        forest, n_windows = fitted(train + val)
    m = video_metrics(*scored(forest, test), threshold=threshold)
    return {
        "test_videos": m["n_videos"],
        "auc": m["auc_roc"],
        "ap": m["auc_pr"],
        "eer": m["eer"],
        "accuracy": m["accuracy_at_threshold"],
        "threshold": threshold,
        "train_windows": n_windows,
    }


KEYS = ("auc", "ap", "accuracy", "eer")


def repeat_means(rows: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Per fold seed of ``rows`` (each with a ``seed``), the mean of :data:`KEYS` over its folds."""
    seeds = sorted({r["seed"] for r in rows})
    return {s: {k: float(np.mean([r[k] for r in rows if r["seed"] == s])) for k in KEYS} for s in seeds}


def overall_mean(means: dict[int, dict[str, float]]) -> dict[str, float]:
    """The mean of :data:`KEYS` over the repeats' means (each repeat weighs the same)."""
    return {k: float(np.mean([v[k] for v in means.values()])) for k in KEYS}


def _table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        f"{'seed':>4} {'fold':>4} {'videos':>6} {'AUC':>6} {'AP':>6} {'acc@val':>7} {'EER':>6} {'windows':>7}"
    ]
    for r in rows:
        out.append(
            f"{r['seed']:>4} {r['fold']:>4} {r['test_videos']:>6} {r['auc']:6.3f} {r['ap']:6.3f} "
            f"{r['accuracy']:7.3f} {r['eer']:6.3f} {r['train_windows']:>7}"
        )
    means = repeat_means(rows)

    def line(name: str, v: dict[str, float]) -> str:
        return f"{name:>11} {'':>4} {v['auc']:6.3f} {v['ap']:6.3f} {v['accuracy']:7.3f} {v['eer']:6.3f}"

    if len(means) > 1:
        out += [line(f"mean {s}", v) for s, v in means.items()]
    out.append(line("mean", overall_mean(means)))
    if len(means) > 1:  # how far one k-fold split's mean moves with the split
        out.append(line("std repeats", {k: float(np.std([v[k] for v in means.values()])) for k in KEYS}))
    else:
        out.append(line("std folds", {k: float(np.std([r[k] for r in rows])) for k in KEYS}))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = doc_parser("benchmarks.real_forest", __doc__)
    parser.add_argument("--data", type=Path, help=DATA_HELP)
    add_split_arguments(parser)
    parser.add_argument("--work", type=Path, help="keep every round's data links here")
    parser.add_argument("--frame-cache", type=Path, help="frame cache (default: WORK/frames)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="repeat the k-fold with the fold seeds SEED .. SEED+R-1, the statistics computed once; the mean "
        "over the repeats and their spread (default 1)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows and their means here")
    opts = parser.parse_args(argv)
    folds = resolve_split_options(parser, opts)
    if opts.repeats < 1:
        parser.error(f"--repeats {opts.repeats}: expected 1 or more k-fold splits")
    from training.commands.common import parse_set
    from training.configs import ConfigError, create_experiment_config, get_config

    try:
        config = create_experiment_config(get_config(opts.config), **parse_set(opts.overrides))
    except (ConfigError, ValueError) as exc:
        parser.error(f"--config {opts.config} --set {' '.join(opts.overrides)}: {exc}")
    if not config["motion_forest_trees"]:
        parser.error(f"config {opts.config} has motion_forest_trees = 0: --set motion_forest_trees=N")
    start, windows, rows = time.perf_counter(), {}, []
    with tempfile.TemporaryDirectory(prefix="i3dmtn-real-forest-") as tmp:
        work = opts.work or Path(tmp)
        cache = opts.frame_cache or work / "frames"
        for seed in range(opts.seed, opts.seed + opts.repeats):
            split_opts = argparse.Namespace(**{**vars(opts), "seed": seed})
            here = work / f"seed{seed}" if opts.repeats > 1 else work
            for fold in folds:
                data = prepare_fold(split_opts, fold, here / f"fold{fold}", threads=2)
                split = {s: clip_windows(config, data / s, cache, windows) for s in SPLITS}
                rows.append({"seed": seed, "fold": fold, **fold_metrics(config, windows, **split)})
                elapsed = time.perf_counter() - start
                print(f"seed {seed} fold {fold}: AUC {rows[-1]['auc']:.3f} ({elapsed:.0f} s)", flush=True)
    print(f"forest alone, config {opts.config} {' '.join(opts.overrides)}: {len(windows)} clips")
    print("\n".join(_table(rows)))
    if opts.json:
        means = repeat_means(rows)
        result = {
            "overrides": opts.overrides,
            "rows": rows,
            "mean": overall_mean(means),
            "repeat_means": means,
        }
        opts.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
