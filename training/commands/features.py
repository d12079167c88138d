"""``i3dmtn features``: cache backbone features of every snippet of every video (for head-only training)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from edge_runtime.usage import UsageError
from training.commands.common import add_config_arguments, config_from_args

__all__ = ["add_arguments", "run"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the backbone once over every snippet of every video under --data_path and store one (n, D) "
        "float32 .npy per video (+ its frame labels) under --out, with index.json recording the preprocessing, "
        "S, stride, D and the backbone's weights hash. Reruns skip videos already done; a cache from another "
        "backbone or preprocessing is refused unless --overwrite. Under torchrun each rank takes its shard."
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--checkpoint", metavar="PT", help="take the backbone (and config) from this checkpoint"
    )
    add_config_arguments(parser, default=None)
    parser.add_argument(
        "--i3d_weights",
        "--i3d-weights",
        metavar="PT",
        help="the backbone's weights from an I3D checkpoint (e.g. the Kinetics-400 RGB weights of `i3dmtn "
        "weights fetch`) instead of an untrained one; `train --features` loads the same file",
    )
    parser.add_argument(
        "--data_path",
        "--data-path",
        required=True,
        metavar="DIR",
        help="a split folder (normal/, anomaly/) or a root of split folders (train/, val/, test/)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="feature cache folder (mirrors --data_path)"
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="process only shard I of N of the sorted video list (default: torchrun's RANK/WORLD_SIZE, else 0/1)",
    )
    parser.add_argument(
        "--batch-size", "--batch_size", type=int, default=16, help="snippets per backbone call (default: 16)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="recompute a cache made under another contract"
    )
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")


def _load_i3d(model, path: str) -> None:
    from training.model import load_i3d_file

    try:
        load_i3d_file(model.backbone, path, strict=False)
    except ValueError as exc:
        raise UsageError(f"--i3d_weights: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from training.checkpoint import CheckpointError, load_checkpoint, new_model
    from training.data import DatasetError
    from training.features import FeatureCacheError, extract_features, parse_shard, shard_from_env

    if args.batch_size <= 0:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    try:
        shard = parse_shard(args.shard) if args.shard else shard_from_env()
    except ValueError as exc:
        raise UsageError(f"--shard: {exc}") from None
    if args.checkpoint:
        if args.overrides or args.config or args.i3d_weights:
            raise UsageError(
                "--checkpoint gives the model and config: leave out --config, --set and --i3d_weights"
            )
        try:
            model, config, _ = load_checkpoint(args.checkpoint)
        except CheckpointError as exc:
            raise UsageError(f"--checkpoint: {exc}") from None
        source = {"checkpoint": str(args.checkpoint)}
    else:
        args.config = args.config or "default"
        config = config_from_args(args)
        model = new_model(config)  # untrained (seeded): the same config gives the same features
        if args.i3d_weights:
            source = {"config": config["name"], "i3d_weights": str(Path(args.i3d_weights).absolute())}
            _load_i3d(model, args.i3d_weights)
        else:
            source = {"config": config["name"], "seed": config["seed"], "untrained": True}
            logger.warning("no --checkpoint: features of an untrained backbone (config %r)", config["name"])
    device = args.device
    if device is None and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():  # one GPU per torchrun process
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    try:
        summary = extract_features(
            model.backbone,
            config,
            args.data_path,
            args.out,
            shard=shard,
            batch_size=args.batch_size,
            overwrite=args.overwrite,
            device=device,
            source=source,
        )
    except (DatasetError, FeatureCacheError) as exc:
        raise UsageError(str(exc)) from None
    print(
        f"features: {summary.written} written, {summary.existing} already cached, "
        f"{len(summary.failed)} unreadable, of {summary.total} videos -> {args.out}"
    )
    return 0
