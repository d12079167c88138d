"""Head-only vs end-to-end training, per optimizer step, at a preset's real sizes (an estimate, on random data).

``benchmarks/quality.py`` measures whole epochs of the ``debug`` model, whose 1/8-width backbone at 64 px is
so cheap that a head step's fixed overhead (~3 ms of Python and autograd) bounds the speed-up. Head-only
training is meant for the full-size presets, where an epoch end to end takes hours on a CPU; this estimates
the speed-up there from steps:

- end to end: forward + backward of the whole model over ``snippets`` snippets of ``S`` frames at the
  preset's frame size, scaled to a batch's ``batch_size * K`` snippets. The optimizer step, video decoding and
  preprocessing are left out, so the end-to-end figure (and the ratio) is on the low side;
- head only: forward, loss, backward, gradient clipping and the AdamW step of the head on
  ``(batch_size, K, D)`` features, as :class:`~training.trainer.I3D_MTN_Trainer` runs it.

Random weights and inputs: only the time is measured.

    python -m benchmarks.head_speedup                  # the default preset (I3D at 224 px, K = 32)
    python -m benchmarks.head_speedup --config violence
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

__all__ = ["head_step_s", "e2e_snippet_s", "step_speedup", "format_speedup", "main"]


def _best_of(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def head_step_s(model: Any, config: dict[str, Any], repeats: int = 10) -> float:
    """Seconds of one head-only training step on ``(batch_size, K, D)`` random features."""
    import torch

    from training.losses import AnomalyLoss
    from training.train_step import outputs_from_head

    head = model.head.train()
    b, k, s = config["batch_size"], config["num_snippets"], config["clip_length"]
    feats = torch.randn(b, k, head.feature_dim)
    labels = (torch.arange(b) % 2).float()
    frame_labels = torch.zeros(b, k * s)
    annotated = torch.zeros(b, dtype=torch.bool)
    loss_fn = AnomalyLoss(config)
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-6, fused=True)

    def step() -> None:
        out = outputs_from_head(head(feats), s)
        loss_fn(out, labels, frame_labels, annotated).total.backward()
        torch.nn.utils.clip_grad_norm_(params, config["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return _best_of(step, repeats)


def e2e_snippet_s(model: Any, config: dict[str, Any], snippets: int = 2, repeats: int = 2) -> float:
    """Seconds per snippet of the whole model's forward + backward over ``snippets`` (>= 2) random snippets."""
    import torch

    if snippets < 2:
        raise ValueError(
            f"snippets must be >= 2 (the MTN's BatchNorm needs two values per channel), got {snippets}"
        )

    size, s = config["frame_size"], config["clip_length"]
    clips = torch.randn(1, 3, snippets * s, size, size)
    model.train()

    def step() -> None:
        model(clips)["video_anomaly_score"].sum().backward()
        model.zero_grad(set_to_none=True)

    return _best_of(step, repeats) / snippets


def step_speedup(config_name: str = "default", snippets: int = 2) -> dict[str, Any]:
    """Estimated seconds per training step end to end and head only at ``config_name``'s sizes."""
    import torch

    from training.configs import get_config
    from training.model import build_model

    config = get_config(config_name)
    torch.manual_seed(0)
    model = build_model(config)
    head_s = head_step_s(model, config)
    per_snippet = e2e_snippet_s(model, config, snippets)
    e2e_s = per_snippet * config["batch_size"] * config["num_snippets"]
    return {
        "config": config_name,
        "batch_size": config["batch_size"],
        "num_snippets": config["num_snippets"],
        "frame_size": config["frame_size"],
        "feature_dim": model.head.feature_dim,
        "e2e_snippet_s": per_snippet,
        "e2e_step_s": e2e_s,
        "head_step_s": head_s,
        "speedup": e2e_s / head_s,
    }


def format_speedup(r: dict[str, Any]) -> str:
    """One line for :func:`step_speedup`'s result."""
    return (
        f"per step at the {r['config']} preset's sizes (batch {r['batch_size']} x K {r['num_snippets']} snippets, "
        f"{r['frame_size']} px, D {r['feature_dim']}; estimate on random data): end to end "
        f"{r['e2e_step_s']:.3g} s ({r['e2e_snippet_s']:.3g} s per snippet, forward + backward), head only "
        f"{r['head_step_s'] * 1e3:.1f} ms -> {r['speedup']:.0f}x faster"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.head_speedup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", default="default", help="preset whose sizes are timed (default: default)")
    parser.add_argument(
        "--snippets", type=int, default=2, help="snippets in the timed end-to-end pass (default: 2)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print(format_speedup(step_speedup(args.config, args.snippets)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
