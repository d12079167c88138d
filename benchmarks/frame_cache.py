"""Decode once: an end-to-end training epoch from the frame cache against decoding every video every epoch.

Both sides are the real trainer (:class:`~training.trainer.I3D_MTN_Trainer`, one epoch: training and
validation) on the same videos and config (default: the ``surveillance`` preset); the only difference is
where the frames come from: :class:`~training.data.frame_cache.FrameCache` (built once before, timed apart)
or :func:`~training.data.frame_cache.decode_resized` for every item. The items must be identical: the
benchmark compares every training item of one epoch, byte for byte, and fails if one differs.

    python -m benchmarks.frame_cache --data DIR   # DIR: train/ + val/ splits (i3dmtn data prepare writes them)

Goal: the cached epoch at least 5x faster. Exit status 1 when it is missed or an item differs.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["GOAL", "measure", "main"]

GOAL = 5.0  # an epoch from the cache at least 5x faster than decoding every epoch


def _epoch_s(config: dict[str, Any], data: Path, cache: Path | None, out: Path) -> tuple[float, float, Any]:
    """``(seconds to set the data sets up (building the cache), seconds of one epoch, training set)``."""
    from training.checkpoint import new_model
    from training.commands.train import build_datasets
    from training.trainer import I3D_MTN_Trainer

    start = time.perf_counter()
    train, val = build_datasets(config, data, None, frame_cache=cache, progress=False)
    setup = time.perf_counter() - start
    trainer = I3D_MTN_Trainer(new_model(config), config, output_dir=out, progress=False)
    start = time.perf_counter()
    trainer.fit(train, val)
    return setup, time.perf_counter() - start, train


def measure(data: Path, config_name: str = "surveillance", threads: int | None = None) -> dict[str, Any]:
    """Seconds of one epoch decoding every video, of building the cache, of one epoch from it; item check."""
    import numpy as np
    import torch

    from training.configs import create_experiment_config, get_config

    if threads:
        torch.set_num_threads(threads)
    config = create_experiment_config(get_config(config_name), epochs=1, warmup_epochs=0)
    with tempfile.TemporaryDirectory(prefix="i3dmtn-cache-bench-") as tmp:
        work = Path(tmp)
        _, decode_s, decoded = _epoch_s(config, data, None, work / "decode")
        build_s, cached_s, cached = _epoch_s(config, data, work / "cache", work / "cached")
        cached.set_epoch(1)
        decoded.set_epoch(1)
        differ = sum(
            not np.array_equal(cached[i]["clips"].numpy(), decoded[i]["clips"].numpy())
            for i in range(len(cached))
        )
    return {
        "videos": len(decoded),
        "decode_epoch_s": decode_s,
        "cache_build_s": build_s,
        "cached_epoch_s": cached_s,
        "speedup": decode_s / cached_s,
        "items_compared": len(cached),
        "items_differing": differ,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.frame_cache", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", type=Path, required=True, help="a data set with train/ and val/ splits")
    parser.add_argument("--config", default="surveillance", help="preset (default: surveillance)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if not (args.data / "train").is_dir():
        parser.error(
            f"--data {args.data}: expected train/ and val/ folders (i3dmtn data prepare writes them)"
        )
    logging.basicConfig(level=logging.WARNING)
    r = measure(args.data, args.config, args.threads)
    print(f"videos (train): {r['videos']}")
    print(f"epoch decoding every video: {r['decode_epoch_s']:.1f} s")
    print(
        f"building the frame cache once: {r['cache_build_s']:.1f} s (before the first epoch; later runs reuse it)"
    )
    print(f"epoch from the frame cache: {r['cached_epoch_s']:.1f} s")
    met = r["speedup"] >= GOAL
    print(f"speed-up: {r['speedup']:.1f}x   goal >= {GOAL:.0f}x: {'met' if met else 'NOT met'}")
    same = r["items_differing"] == 0
    print(f"items identical: {r['items_compared'] - r['items_differing']} of {r['items_compared']}"
          f"{'' if same else '  <- the cache changes what the model sees'}")  # fmt: skip
    return 0 if met and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
