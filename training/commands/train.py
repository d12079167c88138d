"""``i3dmtn train``: train the detector end to end from videos, or its head on cached features."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from edge_runtime.usage import UsageError
from training.commands.common import add_config_arguments, config_from_args

__all__ = ["add_arguments", "run", "build_datasets"]

logger = logging.getLogger(__name__)


DESCRIPTION = (
    "Train the I3D + MTN + MIL detector. --data_path holds train/ and val/ split folders (each with normal/ "
    "and anomaly/ videos, as `i3dmtn synth` writes), or is itself a normal/ + anomaly/ folder, from which a "
    "seeded, stratified share (config key val_fraction) is held out for validation. Writes best.pt, last.pt, "
    "config.json, history.json and training_curves.png to --output. Under torchrun it trains with "
    "DistributedDataParallel. Two ways to start from an earlier run: --resume continues a killed run in its "
    "own --output (weights, optimizer, schedule, epoch counter); --init fine-tunes, a new run from a "
    "checkpoint's weights only (e.g. on the old data plus the clips `i3dmtn data harvest` added)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    _add_data(parser.add_argument_group("data"))
    _add_config(parser.add_argument_group("configuration"))
    _add_run_folder(parser.add_argument_group("run folder"))
    _add_starting_weights(parser.add_argument_group("starting weights"))
    runtime = parser.add_argument_group("execution")
    runtime.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    runtime.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_data(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--data_path", "--data-path", metavar="DIR", help="videos (required unless --features)"
    )
    group.add_argument(
        "--features",
        metavar="DIR",
        help="train the head only, on a feature cache written by `i3dmtn features` (with train/ and val/ "
        "folders, or one folder split like --data_path); the backbone comes from the cache's source",
    )
    group.add_argument(
        "--frame-cache",
        metavar="DIR",
        help="where each training video is stored decoded once, at the config's frame rate and size "
        "(default: DATA_PATH/.frame_cache; reused across runs, rebuilt for a changed video or parameter)",
    )
    group.add_argument(
        "--no-frame-cache", action="store_true", help="decode every video again for every epoch (slow)"
    )


def _add_config(group: argparse._ArgumentGroup) -> None:
    add_config_arguments(group, default=None, default_text="the --init checkpoint's own config, else default")
    group.add_argument("--epochs", type=int, metavar="N", help="override the config's epochs")
    group.add_argument(
        "--batch_size", "--batch-size", type=int, metavar="N", help="videos per step and process"
    )
    group.add_argument(
        "--learning_rate", "--learning-rate", type=float, metavar="LR", help="peak learning rate"
    )
    group.add_argument("--clip_length", "--clip-length", type=int, metavar="S", help="frames per snippet (S)")


def _add_run_folder(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--output",
        metavar="DIR",
        help="run folder (default: runs/<config name>, with --init runs/<config name>-finetune)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the killed run in --output from its last.pt: weights, optimizer, learning-rate schedule, "
        "epoch counter and best epoch all come back (not with --init)",
    )


def _add_starting_weights(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="fine-tune: a new run whose weights (backbone and head) start from CHECKPOINT (best.pt or last.pt "
        "of an earlier run); optimizer, learning-rate schedule, epoch counter and best epoch start afresh. "
        "The config defaults to the checkpoint's own (its epochs and learning rate unless --epochs, "
        "--learning_rate or --set say otherwise); its architecture and preprocessing contract must be the "
        "checkpoint's. The run records the checkpoint's path and SHA-256 in init.json and its checkpoints "
        "(not with --resume or --i3d_weights)",
    )
    group.add_argument(
        "--i3d_weights", "--i3d-weights", metavar="PT", help="initialise the backbone from an I3D checkpoint"
    )


def _video_datasets(
    config: dict[str, Any], data_path: Path, frame_cache: Path | None, progress: bool = True
) -> tuple[Any, Any]:
    from training.configs import to_preprocess_config
    from training.data import find_splits, scan_videos, split_records
    from training.data.frame_cache import FrameCache
    from training.data.video_dataset import dataset_from_config

    splits = find_splits(data_path)
    cache = FrameCache(frame_cache, to_preprocess_config(config)) if frame_cache is not None else None

    def make(path: Path, train: bool, records: Any = None) -> Any:
        return dataset_from_config(
            config, path, train=train, frame_cache=cache, records=records, progress=progress
        )

    if "train" in splits and "val" in splits:
        return make(splits["train"], True), make(splits["val"], False)
    folder = splits.get("", splits.get("train"))
    if folder is None:
        raise UsageError(
            f"--data_path {data_path}: expected train/ and val/ folders or normal/ + anomaly/ folders"
        )
    records, _ = scan_videos(folder)
    train, val = split_records(records, config["val_fraction"], config["seed"])
    logger.info("%s: no val/ split, held out %d of %d videos for validation", folder, len(val), len(records))
    return make(folder, True, train), make(folder, False, val)


def _feature_datasets(config: dict[str, Any], features: Path) -> tuple[Any, Any]:
    from training.feature_dataset import FeatureDataset

    k, seed, mode = config["num_snippets"], config["seed"], config["snippet_sampling"]
    if (features / "train").is_dir() and (features / "val").is_dir():
        return (
            FeatureDataset(features, "train", num_snippets=k, train=True, seed=seed, snippet_sampling=mode),
            FeatureDataset(features, "val", num_snippets=k, seed=seed, snippet_sampling=mode),
        )
    import numpy as np

    whole = FeatureDataset(features, num_snippets=k)
    rng = np.random.default_rng(seed)
    train_keys, val_keys = [], []
    for label in (0, 1):
        keys = [key for key, lab in whole.items if lab == label]
        order = rng.permutation(len(keys))
        n_val = min(len(keys) - 1, max(1, round(config["val_fraction"] * len(keys)))) if len(keys) > 1 else 0
        val_keys += [keys[i] for i in order[:n_val]]
        train_keys += [keys[i] for i in order[n_val:]]
    return (
        FeatureDataset(
            features, num_snippets=k, train=True, seed=seed, keys=sorted(train_keys), snippet_sampling=mode
        ),
        FeatureDataset(features, num_snippets=k, seed=seed, keys=sorted(val_keys), snippet_sampling=mode),
    )


def build_datasets(
    config: dict[str, Any],
    data_path: str | Path | None,
    features: str | Path | None,
    *,
    frame_cache: str | Path | None = None,
    progress: bool = True,
) -> tuple[Any, Any]:
    """``(train, val)`` datasets: video datasets from ``data_path`` (frames from ``frame_cache`` when given)
    or feature datasets from ``features``."""
    if features:
        return _feature_datasets(config, Path(features))
    if not data_path:
        raise UsageError("--data_path is required (or --features for head-only training)")
    cache = Path(frame_cache) if frame_cache is not None else None
    return _video_datasets(config, Path(data_path), cache, progress)


def _model_for_features(config: dict[str, Any], features: Path, init: Any = None) -> Any:
    """A model whose backbone is the one the feature cache was computed with (checked by weights hash);
    ``init(model)``, when given, loads a fine-tune's weights instead of the cache's source backbone."""
    from training.checkpoint import load_checkpoint, load_model_state, new_model
    from training.feature_cache import check_contract, read_index
    from training.features import contract_for

    index = read_index(features)
    model = new_model(config)
    source = index.get("source", {})
    if init is not None:
        init(model)
    elif "checkpoint" in source:
        _, _, ckpt = load_checkpoint(source["checkpoint"])
        backbone = {
            k.removeprefix("backbone."): v for k, v in ckpt["model"].items() if k.startswith("backbone.")
        }
        load_model_state(model.backbone, backbone, source["checkpoint"])
    elif "i3d_weights" in source:  # `i3dmtn features --i3d_weights`: the same file, checked by the hash below
        from training.model import load_i3d_file

        try:
            load_i3d_file(model.backbone, source["i3d_weights"], strict=False)
        except ValueError as exc:
            raise UsageError(f"--features {features}: its backbone's weights: {exc}") from None
    check_contract(features, index, contract_for(model.backbone, config))
    return model


def _read_init(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--init`` checkpoint (weights_only), after refusing the options it excludes; None without it."""
    if not args.init:
        return None
    if args.resume:
        raise UsageError(
            "--init starts a new run from a checkpoint's weights, --resume continues the killed run in --output: "
            "give one of them"
        )
    if args.i3d_weights:
        raise UsageError(
            "--init and --i3d_weights exclude each other: --init sets every weight, the backbone's too"
        )
    from training.checkpoint import CheckpointError
    from training.finetune import read_init

    try:
        return read_init(args.init)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None


def _check_init_output(init: Path, output: Path) -> None:
    """Refuse a fine-tune whose run folder holds its starting checkpoint: the run would replace it."""
    if init.absolute().resolve().parent == output.absolute().resolve():
        raise UsageError(
            f"--init {init} is in --output {output}: the fine-tune would replace it; choose another --output"
        )


def _output(args: argparse.Namespace, config: dict, init_ckpt: dict | None) -> Path:
    """The run folder, after checking that a fine-tune fits it and that ``--resume`` has a run to continue."""
    from training.checkpoint import CheckpointError
    from training.finetune import check_fits

    output = Path(args.output or Path("runs") / (config["name"] + ("-finetune" if init_ckpt else "")))
    if init_ckpt:
        _check_init_output(Path(args.init), output)
        try:
            check_fits(init_ckpt["config"], config, args.init)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from None
    if args.resume and not (output / "last.pt").is_file():
        raise UsageError(
            f"--resume: {output / 'last.pt'} not found (train without --resume first, or fix --output)"
        )
    return output


def _frame_cache(args: argparse.Namespace, config: dict) -> Path | None:
    """The frame cache folder (None: no cache), after refusing the options that do not go together."""
    from training.configs import ConfigError, check_training_mode

    if args.frame_cache and args.no_frame_cache:
        raise UsageError("--frame-cache and --no-frame-cache exclude each other")
    if args.features and (args.frame_cache or args.no_frame_cache):
        raise UsageError("--frame-cache does not apply with --features: head-only training reads no frames")
    if args.features and config["motion_forest_trees"]:
        raise UsageError(
            "config key motion_forest_trees needs the videos' flow (--data_path); head-only training on "
            "--features has no snippets to compute motion statistics of: --set motion_forest_trees=0 (with "
            "motion_weight and motion_crops at their defaults)"
        )
    try:
        check_training_mode(config, head_only=bool(args.features))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.features and args.i3d_weights:
        raise UsageError("--i3d_weights does not apply with --features: the cache fixes the backbone")
    if args.features or args.no_frame_cache or not args.data_path:
        return None
    return Path(args.frame_cache) if args.frame_cache else Path(args.data_path) / ".frame_cache"


def _starting_model(
    args: argparse.Namespace, config: dict, init_ckpt: dict | None
) -> tuple[Any, dict[str, Any] | None]:
    """The model to train with its starting weights (a fine-tune's, the I3D file's or the feature cache's
    backbone), and the fine-tune's provenance (None when it is not one)."""
    from training.checkpoint import new_model
    from training.finetune import init_from

    started: list[dict[str, Any]] = []  # the fine-tune's provenance, once its weights are loaded

    def init(model: Any) -> None:
        started.append(init_from(model, args.init, init_ckpt))

    if args.features:
        model = _model_for_features(config, Path(args.features), init if init_ckpt else None)
    else:
        model = new_model(config)
        if init_ckpt:
            init(model)
        if args.i3d_weights:
            from training.model import load_i3d_file

            load_i3d_file(model.backbone, args.i3d_weights, strict=False)
    return model, started[0] if started else None


def best_summary(best: Path, epochs: int) -> str:
    """What ``best.pt`` holds, in one line: its epoch, its validation figure (with a motion forest the fused
    video AUC and its parts, as the threshold was chosen) and its threshold."""
    from training.checkpoint import read_checkpoint

    if not best.is_file():
        return "no best.pt (no epoch was validated)"
    ckpt = read_checkpoint(best)
    forest = ckpt.get("motion_forest")
    if forest:
        auc = forest["val_auc"]
        figure = (f"validation video AUC {auc['fused']:.4f} fused (network {auc['network']:.4f}, "
                  f"forest {auc['forest']:.4f})")  # fmt: skip
    else:
        figure = f"validation AUC {ckpt['best_metric']:.4f}"
    threshold = ckpt.get("threshold")
    at = f", threshold {threshold:.4f}" if threshold is not None else ""
    return f"best.pt: epoch {ckpt['epoch']} of {epochs}, {figure}{at}"


def run(args: argparse.Namespace) -> int:
    from training.checkpoint import CheckpointError
    from training.configs import ConfigError
    from training.data import DatasetError
    from training.feature_cache import FeatureCacheError
    from training.trainer import I3D_MTN_Trainer

    init_ckpt = _read_init(args)
    config = config_from_args(
        args,
        base=init_ckpt["config"] if init_ckpt else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        clip_length=args.clip_length,
    )
    output = _output(args, config, init_ckpt)
    frame_cache = _frame_cache(args, config)
    try:
        if config["pose_forest_trees"]:  # the pose model is needed after the epochs: say now if it is missing
            from training.pose_forest import pose_model_path

            pose_model_path(config)
        train_set, val_set = build_datasets(
            config, args.data_path, args.features, frame_cache=frame_cache, progress=not args.no_progress
        )
        model, started_from = _starting_model(args, config, init_ckpt)
        trainer = I3D_MTN_Trainer(
            model, config, output_dir=output, device=args.device, progress=not args.no_progress
        )
        trainer.started_from = started_from
        history = trainer.fit(train_set, val_set, resume=args.resume)
        if config["motion_forest_trees"]:  # the threshold too, on the fused scores
            from training.motion_forest import fit_motion_forest

            fit_motion_forest(trainer, train_set, val_set, progress=not args.no_progress)
        else:
            from training.video_threshold import write_video_thresholds

            write_video_thresholds(trainer, val_set)
    except FeatureCacheError as exc:
        raise UsageError(
            f"--features: {exc}; recompute the cache for this config (i3dmtn features --overwrite) or train end to end"
        ) from None
    except (DatasetError, CheckpointError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        if args.i3d_weights and str(args.i3d_weights) in str(exc):
            raise UsageError(f"--i3d_weights: {exc}") from None
        raise
    if trainer.dist.is_main:
        from training.plots import plot_training_curves

        plot_training_curves(history, save_path=output / "training_curves.png")
        print(f"trained {len(history)} epochs -> {output}; {best_summary(output / 'best.pt', len(history))}")
    from training.distributed import cleanup_distributed

    cleanup_distributed()
    return 0
