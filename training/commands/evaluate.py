"""``i3dmtn evaluate``: score a test set as the device does; metrics, report.json and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_runtime.usage import UsageError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Score every video of --test_path in full, as the edge device does (backbone over every snippet, head "
        "over the last K features, newest snippet's score; video score = max), compute video metrics (AUC, AP, "
        "EER, accuracy at the threshold) and frame metrics (frame AUC/AP, temporal IoU, precision@k), write "
        "report.json and print a summary. The threshold is the checkpoint's (chosen on validation). A run with "
        "a motion forest (config key motion_forest_trees) is scored fused, as the device scores it, and the "
        "report also gives the network-only and forest-only video AUC. For a test folder of i3dmtn data prepare "
        "--groups it also names the source videos with the most errors (fights missed, calm clips alerted)."
    )
    parser.add_argument(
        "--model_path", "--model-path", required=True, metavar="PT", help="checkpoint (best.pt)"
    )
    parser.add_argument(
        "--test_path",
        "--test-path",
        required=True,
        metavar="DIR",
        help="a split folder: normal/ and anomaly/ videos",
    )
    parser.add_argument(
        "--output", metavar="DIR", help="report folder (default: <checkpoint folder>/eval_<test folder name>)"
    )
    parser.add_argument(
        "--visualize",
        action="store_true",
        help="also write ROC/PR, per-video score timelines, attention plots, training curves (history.json next "
        "to the checkpoint) and a few score-annotated videos",
    )
    parser.add_argument(
        "--annotate", type=int, default=3, metavar="N", help="annotated videos with --visualize (3)"
    )
    parser.add_argument("--threshold", type=float, help="use this threshold instead of the checkpoint's")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from edge_runtime.video import VideoReadError
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.data import DatasetError
    from training.evaluate import evaluate, format_summary
    from training.motion_forest import load_checkpoint_fusion

    model_path = Path(args.model_path)
    test_path = Path(args.test_path)
    try:
        model, config, ckpt = load_checkpoint(model_path)
        fusion = load_checkpoint_fusion(model_path, ckpt)  # the run's motion forest, if it has one
    except CheckpointError as exc:
        raise UsageError(f"--model_path: {exc}") from None
    output = Path(args.output) if args.output else model_path.parent / f"eval_{test_path.resolve().name}"
    threshold = args.threshold if args.threshold is not None else ckpt.get("threshold")
    try:
        report = evaluate(
            model,
            config,
            test_path,
            output,
            threshold=threshold,
            visualize=args.visualize,
            history_path=model_path.parent / "history.json",
            annotate_videos=args.annotate,
            device=args.device,
            progress=not args.no_progress,
            fusion=fusion,
        )
    except (DatasetError, VideoReadError) as exc:
        raise UsageError(f"--test_path: {exc}") from None
    print(format_summary(report))
    for line in _source_lines(test_path, report):
        print(line)
    print(f"report: {output / 'report.json'}")
    return 0


def _source_lines(test_path: Path, report: dict) -> list[str]:
    """Where the errors are by source video, for a test folder that ``data prepare --groups`` wrote (its
    ``split.json`` names each clip's source), at the report's threshold; nothing for another folder."""
    from training.source_errors import clips_with_sources, error_lines, read_split

    folder = test_path.resolve()
    split = read_split(folder)
    if split is None or not split.get("options", {}).get("groups"):
        return []
    clips = clips_with_sources(split, folder.name, report["videos"])
    return error_lines([{"threshold": report["threshold"], "clips": clips}])
