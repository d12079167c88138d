"""Real video: grouped k-fold cross-validation of a recipe through the project's own commands.

Each round ``i`` of ``k``:

1. ``i3dmtn data prepare SRC --groups FILE --folds k --fold i``: test/ is fold ``i`` of a grouped, stratified
   k-fold (clips of one source video never on two sides), val/ a grouped share of the rest;
2. ``i3dmtn train --config NAME`` on train/ + val/ (one frame cache shared by all rounds);
3. ``i3dmtn evaluate`` of ``best.pt`` on test/: video AUC, AP, EER, and the accuracy at the threshold the
   trainer chose on val/ (never on test/). With a motion forest (``motion_forest_trees``, on in the
   ``surveillance`` preset) the scores are the fused ones, and the table also gives the network-only and
   forest-only video AUC of each fold (columns ``net`` and ``forest``; ``-`` without a forest), and below the
   table the fused video AUC the same models give at other values of ``motion_weight`` (:func:`weight_sweep`,
   from each snippet's network and forest scores in ``report.json``: no training again).

Beside it, in the same run, the floor any trained detector must clear: a score with no training at all, the
mean absolute difference of consecutive grey frames (112 px, at the recipe's frame rate), on the same test
folds. The goal is the project's: mean video AUC >= 0.90 and accuracy >= 0.85; exit status 1 when missed.

Below the table, the source videos with the most errors (fights missed, calm clips alerted, each at its round's
threshold); ``--plot`` / ``--json`` (by default under ``--work``) write the figure and every clip's out-of-fold
score (:mod:`benchmarks.real_quality_report`).

    python -m benchmarks.real_quality --data DIR --groups DIR/groups.json          # 5 folds, ~7 min each alone
    python -m benchmarks.real_quality --data DIR --quick                           # 2 folds, 5 epochs
    python -m benchmarks.real_quality --data DIR --set width_multiplier=0.25 --jobs 2
    python -m benchmarks.real_quality --data DIR --init PRE/best.pt                # every round fine-tunes PRE
    python -m benchmarks.real_quality --data DIR --config kinetics --i3d-weights PT  # a head on Kinetics features
    python -m benchmarks.real_quality --data DIR --work WORK; python -m benchmarks.real_cameras --work WORK
                                          # then its test clips as other cameras send them (";": real_quality exits 1 while the goal is missed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.real_features import round_features
from benchmarks.real_quality_report import fold_clips, plot_cross_validation, write_json
from training.source_errors import error_lines

__all__ = [
    "GOAL_AUC",
    "GOAL_ACCURACY",
    "add_split_arguments",
    "default_data",
    "doc_parser",
    "main",
    "motion_floor_score",
    "prepare_fold",
    "resolve_split_options",
    "run_cli",
    "run_fold",
    "weight_sweep",
]

GOAL_AUC = 0.90
GOAL_ACCURACY = 0.85
FLOOR_SIZE = 112  # short side of the grey frames the floor differences
SWEEP_WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0)  # motion_weight values scored again from the reports


def motion_floor_score(path: Path, frame_rate: float) -> float:
    """Mean absolute difference of consecutive grey frames at :data:`FLOOR_SIZE` px, taken at ``frame_rate``
    by the contract's own resampling: a hand-made motion score with no training."""
    import cv2

    from edge_runtime.preprocess import PreprocessConfig
    from training.data.frame_cache import decode_resized

    cfg = PreprocessConfig.square(FLOOR_SIZE, frame_rate=frame_rate)
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in decode_resized(path, cfg)]).astype(
        np.float32
    )
    return float(np.abs(np.diff(grey, axis=0)).mean()) if len(grey) > 1 else 0.0


def run_cli(args: list[str], log: Path, threads: int) -> None:
    """``i3dmtn ARGS`` in a child process on ``threads`` threads, its output into ``log``; a failure raises
    with the log's last lines."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "training.cli", *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"i3dmtn {args[0]} failed ({proc.returncode}), see {log}: {' | '.join(tail)}")


def prepare_fold(opts: argparse.Namespace, fold: int, here: Path, threads: int) -> Path:
    """``i3dmtn data prepare`` of round ``fold`` into ``here/data`` (train/, val/, test/); returns that folder."""
    here.mkdir(parents=True, exist_ok=True)
    prepare = ["data", "prepare", str(opts.data), "--out", str(here / "data"), "--folds", str(opts.folds)]
    prepare += ["--fold", str(fold), "--seed", str(opts.seed), "--val", str(opts.val), "--force"]
    run_cli(prepare + (["--groups", str(opts.groups)] if opts.groups else []), here / "prepare.log", threads)
    return here / "data"


def weight_sweep(
    videos: list[dict[str, Any]], weights=SWEEP_WEIGHTS, *, pose_weight: float = 0.0
) -> dict[float, float]:
    """The fused video AUC of ``report.json``'s ``videos`` at each ``motion_weight`` in ``weights``: each
    snippet's score ``(1 - w) * network + w * forest`` (the fused head's rule; with a pose forest, that times
    ``1 - pose_weight`` plus ``pose_weight * pose``), a video's the highest. Empty when the report holds no
    parts (a run without a motion forest)."""
    from sklearn.metrics import roc_auc_score

    if not videos or any("parts" not in v for v in videos):
        return {}
    labels = [v["label"] for v in videos]
    net = [np.asarray(v["parts"]["network"]) for v in videos]
    forest = [np.asarray(v["parts"]["forest"]) for v in videos]
    pose = [np.asarray(v["parts"].get("pose", np.zeros(len(n)))) for v, n in zip(videos, net, strict=True)]
    p = float(pose_weight)

    def fused(w: float) -> list[float]:
        return [
            ((1 - p) * ((1 - w) * n + w * f) + p * q).max() for n, f, q in zip(net, forest, pose, strict=True)
        ]

    return {w: float(roc_auc_score(labels, fused(w))) for w in weights}


def _sweep_line(rows: list[dict[str, Any]]) -> str | None:
    """The mean over the folds of each weight's fused AUC, or None without parts."""
    if not rows or any(not r["weight_auc"] for r in rows):
        return None
    means = {w: np.mean([r["weight_auc"][w] for r in rows]) for w in rows[0]["weight_auc"]}
    return "fused video AUC at motion_weight (mean of the folds, the same models): " + "  ".join(
        f"{w:g}: {auc:.3f}" for w, auc in means.items()
    )


def run_fold(opts: argparse.Namespace, fold: int, work: Path, threads: int) -> dict[str, Any]:
    """Prepare, train and evaluate round ``fold``; returns its metrics and the floor's AUC on its test/."""
    from sklearn.metrics import roc_auc_score

    from training.configs import create_experiment_config, get_config
    from training.data.records import scan_videos

    here = work / f"fold{fold}"
    data, run = prepare_fold(opts, fold, here, threads), here / "run"
    sets = [a for kv in opts.overrides for a in ("--set", kv)]
    start = time.perf_counter()
    train = ["train", "--config", opts.config, "--output", str(run), "--no-progress"]
    if opts.i3d_weights:  # the pretrained backbone's features once per clip, the head trained on them
        feats = round_features(run_cli, work=work, data=data, here=here, config=opts.config, sets=sets,
                               weights=opts.i3d_weights, threads=threads)  # fmt: skip
        train += ["--features", str(feats)]
    else:
        train += ["--data_path", str(data), "--frame-cache", str(opts.frame_cache)]
    init = ["--init", str(opts.init)] if opts.init else []
    run_cli(train + [*init, *sets], here / "train.log", threads)
    train_s = time.perf_counter() - start
    evaluate = ["evaluate", "--model_path", str(run / "best.pt"), "--test_path", str(data / "test")]
    run_cli(evaluate + ["--output", str(run / "eval"), "--no-progress"], here / "evaluate.log", threads)
    report = json.loads((run / "eval" / "report.json").read_text())
    video = report["video_metrics"]
    parts = report.get("motion_forest", {}).get("video_auc", {})
    from training.commands.common import parse_set

    config = create_experiment_config(get_config(opts.config), **parse_set(opts.overrides))
    records, _ = scan_videos(data / "test")
    floor = [motion_floor_score(r.path, config["frame_rate"]) for r in records]
    return {
        "fold": fold,
        "clips": fold_clips(data, report),
        "floor": [{"label": r.label, "score": score} for r, score in zip(records, floor, strict=True)],
        "test_videos": video["n_videos"],
        "auc": video["auc_roc"],
        "ap": video["auc_pr"],
        "eer": video["eer"],
        "accuracy": video["accuracy_at_threshold"],
        "threshold": video["threshold"],
        "train_s": train_s,
        "floor_auc": float(roc_auc_score([r.label for r in records], floor)),
        "network_auc": parts.get("network", float("nan")),
        "forest_auc": parts.get("forest", float("nan")),
        "pose_auc": parts.get("pose", float("nan")),
        "weight_auc": weight_sweep(
            report["videos"], pose_weight=report.get("motion_forest", {}).get("pose_weight", 0.0)
        ),
    }


# the table's figure columns: title, row key, width (a row without the key, or NaN, shows "-")
_COLUMNS = (
    ("AUC", "auc", 6), ("AP", "ap", 6), ("acc@val", "accuracy", 7), ("EER", "eer", 6), ("floor", "floor_auc", 6),
    ("net", "network_auc", 6), ("forest", "forest_auc", 6), ("pose", "pose_auc", 6),
)  # fmt: skip


def _table(rows: list[dict[str, Any]]) -> list[str]:
    def cells(values: dict[str, float]) -> str:
        nan = float("nan")
        return " ".join(
            f"{values.get(k, nan):{w}.3f}" if np.isfinite(values.get(k, nan)) else f"{'-':>{w}}"
            for _, k, w in _COLUMNS
        )

    def stat(fn: Any) -> dict[str, float]:
        return {k: float(fn([r.get(k, float("nan")) for r in rows])) for _, k, _ in _COLUMNS}

    out = [f"{'fold':>4} {'videos':>6} " + " ".join(f"{t:>{w}}" for t, _, w in _COLUMNS) + f" {'train':>7}"]
    for r in rows:
        out.append(f"{r['fold']:>4} {r['test_videos']:>6} {cells(r)} {r['train_s']:6.0f}s")
    mean_train = np.mean([r["train_s"] for r in rows])
    out.append(
        f"{'mean':>4} {sum(r['test_videos'] for r in rows):>6} {cells(stat(np.mean))} {mean_train:6.0f}s"
    )
    out.append(f"{'std':>4} {'':>6} {cells(stat(np.std))}")
    return out


DATA_HELP = "SRC for i3dmtn data prepare (default: the reference clips beside the project's own checkout)"


def default_data() -> Path:
    """The reference clips beside the project's own checkout (a user's clone has none): ``../shared/data/
    surveillance-fight``. Used only when ``--data`` is not given."""
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "surveillance-fight"


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the rounds and the recipe (shared with :mod:`benchmarks.real_forest`)."""
    parser.add_argument(
        "--groups", type=Path, help="clip -> source JSON (default: DATA/groups.json if present)"
    )
    parser.add_argument("--folds", type=int, default=5, help="k of the k-fold (default 5)")
    parser.add_argument("--only", type=int, nargs="*", help="run only these folds (default: all)")
    parser.add_argument("--val", type=float, default=0.2, help="share of each round's other folds for val/")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds (default 0)")
    parser.add_argument("--config", default="surveillance", help="preset to train (default: surveillance)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def resolve_split_options(
    parser: argparse.ArgumentParser, opts: argparse.Namespace, count: int = 0
) -> list[int]:
    """Check ``--data``, default ``--groups`` to DATA/groups.json, and return the folds to run (``--only``,
    else the first ``count``, else all)."""
    if opts.data is None:
        if not default_data().is_dir():
            parser.error(
                "--data DIR is needed: the reference clips (../shared/data/surveillance-fight) sit beside the "
                "project's own checkout only; give a folder of real clips that i3dmtn data prepare reads"
            )
        opts.data = default_data()
    if not opts.data.is_dir():
        parser.error(
            f"--data {opts.data}: not a folder (a data set of real clips that i3dmtn data prepare reads)"
        )
    if opts.groups is None and (opts.data / "groups.json").is_file():
        opts.groups = opts.data / "groups.json"
    folds = opts.only if opts.only is not None else list(range(count or opts.folds))
    if any(not 0 <= f < opts.folds for f in folds):
        parser.error(f"--only: folds must be in 0 .. {opts.folds - 1}, got {folds}")
    return folds


def doc_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``python -m MODULE``: the module docstring's first paragraph as its description, the rest
    (verbatim) as its epilog."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split("\n\n", 1)[1],
    )


def main(argv: list[str] | None = None) -> int:
    parser = doc_parser("benchmarks.real_quality", __doc__)
    parser.add_argument("--data", type=Path, help=DATA_HELP)
    add_split_arguments(parser)
    parser.add_argument(
        "--quick", action="store_true", help="2 folds of 5 epochs: checks the chain, not the goal"
    )
    parser.add_argument("--jobs", type=int, default=1, help="rounds run at once, each on cores/jobs threads")
    parser.add_argument("--work", type=Path, help="keep every round's data links, runs and logs here")
    parser.add_argument(
        "--frame-cache", type=Path, help="frame cache shared by the rounds (default: WORK/frames)"
    )
    parser.add_argument(
        "--init",
        type=Path,
        metavar="CHECKPOINT",
        help="every round fine-tunes from this checkpoint (i3dmtn train --init), e.g. a run pretrained elsewhere",
    )
    parser.add_argument(
        "--i3d-weights",
        type=Path,
        metavar="PT",
        help="a recipe on a pretrained backbone (e.g. `i3dmtn weights fetch`'s, with --config kinetics): every "
        "round trains its head on the backbone's features (i3dmtn features --i3d_weights, then train --features), "
        "each clip's computed once for all rounds",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help="write the figure here: ROC per fold, every clip's score by source video (default: WORK/real_quality.png with --work)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="write every round's metrics and clips here (default: WORK/real_quality.json with --work)",
    )
    opts = parser.parse_args(argv)
    if opts.work is not None:
        opts.plot = opts.plot or opts.work / "real_quality.png"
        opts.json = opts.json or opts.work / "real_quality.json"
    for option, path in (("--plot", opts.plot), ("--json", opts.json)):
        if path is not None and path.is_dir():  # refused now, not after an hour of training
            parser.error(f"{option} {path}: is a folder; give the file to write")
    if opts.i3d_weights is not None and not opts.i3d_weights.is_file():
        parser.error(f"--i3d-weights {opts.i3d_weights}: no such file (`i3dmtn weights fetch` writes one)")
    if opts.init is not None and not opts.init.is_file():
        parser.error(f"--init {opts.init}: no such checkpoint file (best.pt or last.pt of an earlier run)")
    folds = resolve_split_options(parser, opts, 2 if opts.quick else 0)
    if opts.quick:
        opts.overrides = ["epochs=5", *opts.overrides]
    with tempfile.TemporaryDirectory(prefix="i3dmtn-real-quality-") as tmp:
        work = opts.work or Path(tmp)
        opts.frame_cache = opts.frame_cache or work / "frames"
        threads = max(1, (os.cpu_count() or 1) // max(1, opts.jobs))
        print(f"{len(folds)} of {opts.folds} grouped folds of {opts.data} (groups: {opts.groups}); config "
              f"{opts.config} {' '.join(opts.overrides)}; {opts.jobs} at once, {threads} thread(s) each", flush=True)  # fmt: skip
        with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
            rows = list(pool.map(lambda f: run_fold(opts, f, work, threads), folds))
    print("\n".join(_table(rows)))
    sweep = _sweep_line(rows)
    if sweep:
        print(sweep)
    print("\n".join(error_lines(rows)))
    mean_auc = float(np.mean([r["auc"] for r in rows]))
    mean_acc = float(np.mean([r["accuracy"] for r in rows]))
    met = mean_auc >= GOAL_AUC and mean_acc >= GOAL_ACCURACY
    summary = {"config": opts.config, "set": opts.overrides, "data": str(opts.data), "folds": opts.folds,
               "seed": opts.seed, "auc": mean_auc, "accuracy": mean_acc, "goal_met": met}  # fmt: skip
    if opts.json:
        print(f"rounds and clips: {write_json(opts.json, rows, summary)}")
    if opts.plot:
        print(f"figure: {plot_cross_validation(rows, opts.plot)}")
    print(
        f"goal: video AUC >= {GOAL_AUC} and accuracy >= {GOAL_ACCURACY} (grouped {opts.folds}-fold mean): "
        f"{'met' if met else 'NOT met'} (AUC {mean_auc:.3f}, accuracy {mean_acc:.3f}; "
        f"motion-difference floor AUC {np.mean([r['floor_auc'] for r in rows]):.3f})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
