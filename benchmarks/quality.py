"""Quality benchmark: train the debug model end to end on CPU on synthetic videos and score a held-out test set.

Train / validation videos come from one seed, test videos from another (different scenes, people, lighting
and fight timing). Prints video AUC, AP, EER, frame AUC and the training time; then caches backbone features
of the train / val videos with the trained checkpoint and times head-only epochs on them against the
end-to-end epochs (the speed-up of ``i3dmtn features`` + ``train --features``), and measures the same
speed-up at the ``violence`` preset's full sizes on a few videos (:mod:`benchmarks.head_epochs`).

Target (the debug recipe's goal): video AUC >= 0.97 and frame AUC >= 0.90 in under 10 minutes on 2 cores,
and a head-only epoch >= ``GOAL`` times faster than an end-to-end one at full size. The full run exits 1 when a
goal is missed; ``--quick`` checks no goal (its numbers are not meaningful).

    python -m benchmarks.quality            # the full benchmark
    python -m benchmarks.quality --quick    # a smoke run: fewer videos and epochs (numbers not meaningful)
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "exit_status", "goals", "RECIPE", "QUICK", "TARGET"]

logger = logging.getLogger(__name__)

TRAIN_SEED, TEST_SEED = 0, 1
# square videos: the debug crop (resize the short side to 64, centre 64x64) then keeps the whole frame in view;
# on the generator's default 160x120 it would cut 25% of the width, where people (and fights) may be
SIZE = (128, 128)
# debug config overrides of this benchmark's recipe (see the report for why each is needed)
RECIPE: dict[str, Any] = {
    "epochs": 30,  # ~8 s per epoch on 192 videos; AUC keeps rising until ~25 epochs
    "frame_loss_weight": 1.0,  # the synthetic videos are annotated per frame: use it (dense supervision)
}
# (videos: train_n, train_a, val_n, val_a; test_n, test_a), synth frames, epochs
# 48 training videos overfit the backgrounds (train AUC 1.0, val ~0.6); 192 generalise. 64 frames = K snippets.
FULL = {"train_videos": (96, 96, 16, 16), "test_videos": (16, 16), "frames": 64}
QUICK = {"train_videos": (4, 4, 2, 2), "test_videos": (2, 2), "frames": 48, "epochs": 2}
TARGET = {
    "video_auc": 0.97,
    "frame_auc": 0.90,
    "train_s": 600.0,
}  # the debug recipe's goal (minimum, maximum s)


def goals(result: dict[str, Any], head_goal: float) -> dict[str, bool]:
    """Each goal of a full run: met or not (``result`` as :func:`run` returns it)."""
    return {
        f"video AUC >= {TARGET['video_auc']}": result["video_auc"] >= TARGET["video_auc"],
        f"frame AUC >= {TARGET['frame_auc']}": result["frame_auc"] >= TARGET["frame_auc"],
        f"training < {TARGET['train_s']:g} s": result["train_s"] < TARGET["train_s"],
        f"head-only epoch >= {head_goal:g}x faster at full size": result["full_size_epoch_speedup"]
        >= head_goal,
    }


def _synth(out: Path, seed: int, videos: tuple[int, ...], frames: int) -> None:
    from training.synth import SynthConfig, generate_dataset

    generate_dataset(SynthConfig(out=out, seed=seed, videos=videos, frames=frames, size=SIZE), progress=False)


def _whole_window_aucs(model: Any, config: dict[str, Any], test_path: Path) -> tuple[float, float]:
    """Video / frame AUC when the head scores each whole test video in one call (no streaming windows)."""
    import numpy as np
    import torch

    from edge_runtime.snippets import frame_to_snippet
    from training.data import scan_videos
    from training.evaluate import video_features
    from training.metrics import frame_metrics, video_metrics

    records, _ = scan_videos(test_path)
    videos, frames = [], []
    with torch.no_grad():
        for r in records:
            feats = torch.from_numpy(video_features(model.backbone, r.path, config, torch.device("cpu")))
            s = model.head(feats[None]).snippet_scores[0].numpy()
            videos.append(s.max())
            frames.append(s[np.minimum(frame_to_snippet(r.num_frames, config["clip_length"]), len(s) - 1)])
    video = video_metrics([r.label for r in records], videos)["auc_roc"]
    frame = frame_metrics([r.frame_labels for r in records], frames, 0.5)["frame_auc"]
    return video, frame


def _train(work: Path, plan: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Synthetic train / val and test videos, then the debug model trained end to end on them (with the
    recipe's motion forest when it has one, as ``i3dmtn train`` fits it); times both."""
    from training.checkpoint import new_model
    from training.commands.train import build_datasets
    from training.motion_forest import fit_motion_forest
    from training.trainer import I3D_MTN_Trainer

    start = time.perf_counter()
    _synth(work / "data", TRAIN_SEED, (*plan["train_videos"], 0, 0), plan["frames"])
    _synth(work / "test_data", TEST_SEED, (0, 0, 0, 0, *plan["test_videos"]), plan["frames"])
    synth_s = time.perf_counter() - start
    train_set, val_set = build_datasets(config, work / "data", None)
    start = time.perf_counter()
    trainer = I3D_MTN_Trainer(new_model(config), config, output_dir=work / "run", device="cpu")
    history = trainer.fit(train_set, val_set)
    if config["motion_forest_trees"]:  # a --set flow recipe with a motion forest
        fit_motion_forest(trainer, train_set, val_set, progress=False)
    return {"history": history, "train_videos": len(train_set), "val_videos": len(val_set),
            "synth_s": synth_s, "train_s": time.perf_counter() - start}  # fmt: skip


def _check_goals(result: dict[str, Any], work: Path) -> None:
    """A full run: the head-only speed-up at full size, then every goal met or not (into ``result``)."""
    from benchmarks.head_epochs import GOAL, format_measure, measure

    # the debug model's backbone is so cheap that a head step's fixed overhead bounds its speed-up;
    # head-only training is meant for full-size models: measure epochs of one on a few videos
    full = measure(work / "full_size")
    result["full_size_epoch_speedup"] = full["speedup"]
    print(format_measure(full))
    met = goals(result, GOAL)
    result["goals"] = met
    target = [g for g in met if not g.startswith("head-only")]
    ok = all(met[g] for g in target)
    print(f"target ({', '.join(target)}): {'met' if ok else 'NOT met'}")
    debug_x = result["e2e_epoch_s"] / max(result["head_epoch_s"], 1e-9)
    print(
        f"head-only goal (epoch >= {GOAL}x faster than end to end): "
        f"{'met' if full['speedup'] >= GOAL else 'NOT met'} at full size ({full['speedup']:.0f}x, "
        f"{full['config']} preset); the debug model {debug_x:.1f}x"
        + ("" if debug_x >= GOAL else " (bounded by a head step's fixed overhead: docs/quality.md)")
    )


def run(
    work: Path, quick: bool, threads: int | None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    import torch

    from benchmarks.head_epochs import head_only_epochs, median_epoch_s
    from training.checkpoint import load_checkpoint
    from training.configs import create_experiment_config, get_config
    from training.evaluate import evaluate, format_summary
    from training.motion_forest import load_checkpoint_fusion

    if threads:
        torch.set_num_threads(threads)
    plan = QUICK if quick else FULL
    recipe = {**RECIPE, **({"epochs": QUICK["epochs"]} if quick else {}), **(overrides or {})}
    trained = _train(work, plan, create_experiment_config(get_config("debug"), **recipe))
    history, train_s, synth_s = trained["history"], trained["train_s"], trained["synth_s"]

    model, config, ckpt = load_checkpoint(work / "run" / "best.pt")
    fusion = load_checkpoint_fusion(work / "run" / "best.pt", ckpt)  # None without a forest
    report = evaluate(
        model, config, work / "test_data" / "test", work / "eval", threshold=ckpt["threshold"], device="cpu",
        fusion=fusion,
    )  # fmt: skip

    whole_video, whole_frame = _whole_window_aucs(model, config, work / "test_data" / "test")

    # head-only epochs on cached features vs the end-to-end epochs, same videos, same config
    features_s, head_epoch_s = head_only_epochs(model, config, work / "data", work)
    e2e_epoch_s = median_epoch_s(history)  # median: the first epoch warms up
    v, f = report["video_metrics"], report["frame_metrics"]
    result = {
        "video_auc": v["auc_roc"],
        "video_ap": v["auc_pr"],
        "eer": v["eer"],
        "frame_auc": f["frame_auc"],
        "train_s": train_s,
        "epochs": len(history),
        "synth_s": synth_s,
        "features_s": features_s,
        "e2e_epoch_s": e2e_epoch_s,
        "head_epoch_s": head_epoch_s,
    }
    print(format_summary(report))
    print(
        f"\ntrain {trained['train_videos']} / val {trained['val_videos']} videos (seed {TRAIN_SEED}), "
        f"test {v['n_videos']} (seed {TEST_SEED})"
        f"\nend-to-end training: {len(history)} epochs in {train_s:.1f} s (synthetic data {synth_s:.1f} s)"
        f"\nvideo AUC {v['auc_roc']:.4f}  AP {v['auc_pr']:.4f}  EER {v['eer']:.4f}  frame AUC {f['frame_auc']:.4f}"
        f"\n(diagnostic, not the device's scoring: head over each whole video at once: video AUC {whole_video:.4f}, "
        f"frame AUC {whole_frame:.4f})"
        f"\none epoch (median): end to end {e2e_epoch_s:.2f} s, head only on cached features {head_epoch_s:.3f} s "
        f"-> {e2e_epoch_s / max(head_epoch_s, 1e-9):.1f}x faster (feature caching took {features_s:.1f} s once)"
    )
    if not quick:
        _check_goals(result, work)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer videos and epochs")
    parser.add_argument(
        "--work", metavar="DIR", help="keep data, run and report here (default: a temp folder)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    from training.commands.common import add_set_argument, parse_set

    add_set_argument(
        parser,
        "override a key of the recipe's debug config, e.g. --set epochs=10 (repeatable; for experiments)",
    )
    args = parser.parse_args(argv)

    overrides = parse_set(args.overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        result = run(Path(args.work), args.quick, args.threads, overrides)
    else:
        with tempfile.TemporaryDirectory(prefix="i3dmtn_quality_") as tmp:
            result = run(Path(tmp), args.quick, args.threads, overrides)
    return exit_status(result)


def exit_status(result: dict[str, Any]) -> int:
    """1 when a goal of a full run was missed (named on stdout), else 0; a quick run checks no goal."""
    missed = [goal for goal, met in result.get("goals", {}).items() if not met]
    if missed:
        print(f"goal(s) missed: {'; '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
