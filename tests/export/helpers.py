"""Tiny models, data sets and checkpoints shared by the export tests (built once per session by conftest).

Two data sets:

- ``synth``: the project's synthetic fight / normal videos (:mod:`training.synth`), for the exports whose
  INT8 output is compared with FP32;
- ``contrast``: videos where the classes differ in a way an I3D with random weights already sees (normal:
  a dim, smooth, slowly drifting scene; anomalous: bright, high-contrast noise that changes every frame), with
  the head briefly trained on them, so FP32 ranks the held-out videos well and the accuracy gate has an AUC
  that a broken calibration can visibly destroy. An untrained model's scores differ by ~1e-4 between videos:
  its AUC is noise, and a gate test on it would pass or fail by chance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

S, K, SIZE = 8, 4, 32  # snippet length, window, crop: the smallest I3D shapes OpenVINO accepts (S >= 8)


def tiny_config(**overrides: Any) -> dict[str, Any]:
    from training.configs import create_experiment_config, get_config

    base = {
        "clip_length": S,
        "num_snippets": K,
        "frame_size": SIZE,
        "resize_short_side": SIZE,
        "width_multiplier": 0.0625,
        "mtn_hidden_dim": 16,
        "mil_attention_dim": 8,
        "seed": 3,
    }
    return create_experiment_config(get_config("debug"), **{**base, **overrides})


def forest_settings(trees: int = 5) -> list[str]:
    """``--set`` values of :func:`tiny_config` on flow, trained 1 epoch, with a motion forest of ``trees``."""
    keys = ("clip_length", "num_snippets", "frame_size", "resize_short_side", "width_multiplier", "mtn_hidden_dim",
            "mil_attention_dim", "seed")  # fmt: skip
    config = tiny_config()
    return [f"{k}={config[k]}" for k in keys] + [
        "input_modality=flow",
        f"motion_forest_trees={trees}",
        "epochs=1",
    ]


def make_synth(root: Path) -> Path:
    from training.synth import SynthConfig, generate_dataset

    generate_dataset(
        SynthConfig(out=root, seed=1, videos=(3, 3, 2, 2, 3, 3), frames=32, size=(64, 48)), progress=False
    )
    return root


def _contrast_video(path: Path, anomalous: bool, rng: np.random.Generator, frames: int = 32) -> None:
    from edge_runtime.video import write_video

    h, w = 32, 48
    if anomalous:
        video = rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8)
    else:
        base = np.linspace(40, 90, w, dtype=np.float32)[None, :, None] + rng.uniform(0, 10, 3)
        video = np.stack([np.broadcast_to(base + t * 0.3, (h, w, 3)) for t in range(frames)]).astype(np.uint8)
    write_video(path, video, fps=10.0)


def make_contrast(root: Path, counts: dict[str, int] | None = None, seed: int = 5) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (counts or {"train": 3, "val": 2, "test": 3}).items():
        for cls in ("normal", "anomaly"):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _contrast_video(root / split / cls / f"{cls}_{i}.mp4", cls == "anomaly", rng)
    return root


def make_constant_calibration(root: Path) -> Path:
    """A calibration data set of one constant mid-grey clip: every activation range comes out nearly empty."""
    from edge_runtime.video import write_video

    (root / "train" / "normal").mkdir(parents=True, exist_ok=True)
    write_video(root / "train" / "normal" / "grey.mp4", np.full((S, 32, 48, 3), 128, np.uint8), fps=10.0)
    return root


def save_ckpt(path: Path, model: Any, config: dict[str, Any], threshold: float | None = None) -> Path:
    from training.checkpoint import save_checkpoint

    return save_checkpoint(
        path, {"model": model.state_dict(), "config": config, "epoch": 1, "threshold": threshold}
    )


def untrained_model(config: dict[str, Any]) -> Any:
    from training.checkpoint import new_model

    return new_model(config).eval()


def trained_on(root: Path, config: dict[str, Any], steps: int = 60) -> Any:
    """The tiny model with its head trained (backbone frozen, as head-only training does) on ``root/train``:
    BCE of each video's max snippet score, the device's video score. The head stays in eval mode (its
    BatchNorm keeps the fixed statistics; per-video batch statistics would normalise the contrast away)."""
    import torch

    from training.data import iter_snippet_batches, preprocess_config, scan_videos

    model = untrained_model(config)
    pre = preprocess_config(SIZE)
    records = scan_videos(root / "train")[0]
    with torch.no_grad():
        feats = [
            model.backbone(torch.from_numpy(np.concatenate(list(iter_snippet_batches(r.path, S, pre)))))
            for r in records
        ]
    labels = torch.tensor([float(r.label) for r in records])
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.head.parameters(), lr=2e-2)
    for _ in range(steps):
        scores = torch.stack([model.head(f[None]).snippet_scores.max() for f in feats])
        loss = torch.nn.functional.binary_cross_entropy(scores.clamp(1e-6, 1 - 1e-6), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def export(ckpt: Path, calib: Path, out: Path, **kwargs: Any) -> Any:
    from export.pipeline import ExportOptions, run_export

    opts = ExportOptions(
        checkpoint=ckpt, calib_data=calib, out=out, calib_snippets=kwargs.pop("calib_snippets", 24), **kwargs
    )
    return run_export(opts)
