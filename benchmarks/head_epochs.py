"""Head-only vs end-to-end training per epoch, measured: real videos, the real feature cache, the real trainer.

``i3dmtn features`` + ``i3dmtn train --features`` exist to skip the video decoding and the backbone in every
epoch. This times whole epochs both ways on the same videos with the same config:

- end to end: :class:`~training.trainer.I3D_MTN_Trainer` on the videos (decoding, preprocessing, backbone and
  head forward + backward, validation, checkpoints), the median of ``e2e_epochs`` epochs;
- head only: :func:`training.features.extract_features` once (timed apart), then the trainer on the cache,
  the median of ``head_epochs`` epochs (the first one reads the files, later ones memory).

:func:`head_only_epochs` is the head-only half, also used by ``benchmarks/quality.py`` on its trained
``debug`` model. :func:`measure` runs both halves at a preset's full sizes (by default ``violence``: the
full-width I3D at 224 px, K = 10 snippets of 16 frames) on a few synthetic videos. Few videos keep the end-to-end
epochs short enough for a CPU, and they make the ratio conservative: the head-only epoch's fixed costs
(validation, the full-size ``last.pt``) are spread over few videos, where an end-to-end epoch costs the
same per video whatever their number.

    python -m benchmarks.head_epochs                       # violence preset, 1 training video per class
    python -m benchmarks.head_epochs --videos-per-class 2  # a larger ratio; ~14 GB of memory instead of ~7.5
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["GOAL", "head_only_epochs", "median_epoch_s", "measure", "format_measure", "main"]

GOAL = 50  # the goal: an epoch on cached features >= 50x faster than end to end
HEAD_EPOCHS = 5
E2E_EPOCHS = 3


def median_epoch_s(history: list[dict[str, Any]]) -> float:
    """Median seconds of an epoch: training, validation and writing the checkpoints."""
    times = sorted(r["time_s"] + r["checkpoint_s"] for r in history)
    return times[len(times) // 2]


def head_only_epochs(
    model: Any, config: dict[str, Any], data: Path, work: Path, epochs: int = HEAD_EPOCHS
) -> tuple[float, float]:
    """``(seconds to cache the features once, median seconds of a head-only epoch)`` for ``model`` on the
    ``train/`` and ``val/`` videos of ``data``; writes ``work/features`` and ``work/head_run``."""
    from training.commands.train import build_datasets
    from training.features import extract_features
    from training.trainer import I3D_MTN_Trainer

    start = time.perf_counter()
    extract_features(model.backbone, config, data, work / "features", device="cpu", progress=False)
    features_s = time.perf_counter() - start
    train, val = build_datasets(config, None, work / "features")
    history = I3D_MTN_Trainer(
        model, {**config, "epochs": epochs}, output_dir=work / "head_run", device="cpu", progress=False
    ).fit(train, val)
    return features_s, median_epoch_s(history)


def measure(
    work: Path,
    config_name: str = "violence",
    *,
    videos_per_class: int = 1,
    e2e_epochs: int = E2E_EPOCHS,
    head_epochs: int = HEAD_EPOCHS,
) -> dict[str, Any]:
    """Median epoch seconds end to end and head only at ``config_name``'s sizes on synthetic videos."""
    import torch

    from training.checkpoint import new_model
    from training.commands.train import build_datasets
    from training.configs import create_experiment_config, get_config
    from training.synth import SynthConfig, generate_dataset
    from training.trainer import I3D_MTN_Trainer

    if videos_per_class < 1:
        raise ValueError(f"videos_per_class must be >= 1, got {videos_per_class}")
    # no DataLoader workers on a 2-core machine; every epoch counts (no early stop)
    config = create_experiment_config(
        get_config(config_name), num_workers=0, epochs=e2e_epochs, early_stopping_patience=0
    )
    side = config["resize_short_side"]
    frames = config["num_snippets"] * config["clip_length"] * config["frame_stride"]
    n = videos_per_class
    generate_dataset(
        SynthConfig(out=work / "data", seed=0, videos=(n, n, 1, 1, 0, 0), frames=frames, size=(side, side)),
        progress=False,
    )
    train, val = build_datasets(config, work / "data", None)
    model = new_model(config)
    history = I3D_MTN_Trainer(model, config, output_dir=work / "e2e_run", device="cpu", progress=False).fit(
        train, val
    )
    features_s, head_s = head_only_epochs(model, config, work / "data", work, head_epochs)
    return {
        "config": config_name,
        "train_videos": len(train),
        "val_videos": len(val),
        "num_snippets": config["num_snippets"],
        "clip_length": config["clip_length"],
        "frame_size": config["frame_size"],
        "feature_dim": model.head.feature_dim,
        "threads": torch.get_num_threads(),
        "e2e_epoch_s": median_epoch_s(history),
        "head_epoch_s": head_s,
        "features_s": features_s,
        "speedup": median_epoch_s(history) / head_s,
    }


def format_measure(r: dict[str, Any]) -> str:
    """A line for :func:`measure`'s result."""
    return (
        f"one epoch (median) at the {r['config']} preset's sizes ({r['frame_size']} px, K {r['num_snippets']} x "
        f"S {r['clip_length']}, D {r['feature_dim']}; {r['train_videos']} train + {r['val_videos']} val videos, "
        f"measured): end to end {r['e2e_epoch_s']:.1f} s, head only on cached features "
        f"{r['head_epoch_s']:.3f} s -> {r['speedup']:.0f}x faster (feature caching took {r['features_s']:.1f} s once)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.head_epochs", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--config", default="violence", help="preset whose sizes are used (default: violence)"
    )
    parser.add_argument(
        "--videos-per-class",
        type=int,
        default=1,
        help="training videos per class (default: 1); end to end at 224 px each needs ~3.5 GB of memory",
    )
    parser.add_argument("--e2e-epochs", type=int, default=E2E_EPOCHS, help="end-to-end epochs timed")
    parser.add_argument("--head-epochs", type=int, default=HEAD_EPOCHS, help="head-only epochs timed")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    args = parser.parse_args(argv)
    for option in ("videos_per_class", "e2e_epochs", "head_epochs", "threads"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    from training.configs import CONFIG_NAMES

    if args.config not in CONFIG_NAMES:
        parser.error(f"--config must be one of {', '.join(CONFIG_NAMES)}, got {args.config!r}")
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="i3dmtn_head_epochs_") as tmp:
        result = measure(
            Path(tmp),
            args.config,
            videos_per_class=args.videos_per_class,
            e2e_epochs=args.e2e_epochs,
            head_epochs=args.head_epochs,
        )
    print(format_measure(result))
    met = result["speedup"] >= GOAL
    print(f"head-only goal (epoch >= {GOAL}x faster than end to end): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
