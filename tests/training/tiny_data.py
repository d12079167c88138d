"""Tiny real data sets and configs shared by the data / features / trainer / evaluate tests.

Videos are real mp4 files written by the synthetic generator (OpenCV ``mp4v``); they are generated once per
test session (cached here by the pytest temp folder) so each test stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_CACHE: dict[str, Path] = {}


def synth_root(tmp_path_factory: Any, name: str = "tiny", seed: int = 1, videos=(4, 4, 2, 2, 2, 2)) -> Path:
    """A synth data set root (``train/ val/ test/``) of 48x64, 32-frame videos, generated once per session."""
    if name not in _CACHE:
        from training.synth import SynthConfig, generate_dataset

        out = tmp_path_factory.mktemp(f"synth_{name}")
        generate_dataset(
            SynthConfig(out=out, seed=seed, videos=videos, frames=32, size=(64, 48)), progress=False
        )
        _CACHE[name] = out
    return _CACHE[name]


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """The debug config shrunk further: S=4, K=4, 32 px frames, a 1/16-width backbone (64-d features)."""
    from training.configs import create_experiment_config, get_config

    base = {
        "clip_length": 4,
        "num_snippets": 4,
        "frame_size": 32,
        "resize_short_side": 32,
        "width_multiplier": 0.0625,
        "mtn_hidden_dim": 16,
        "mil_attention_dim": 8,
        "epochs": 2,
        "batch_size": 4,
        "augment_crop_jitter": 2,
        "seed": 3,
    }
    return create_experiment_config(get_config("debug"), **{**base, **overrides})


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (48, 32)) -> Path:
    """A small real mp4 of moving noise (BGR, mp4v)."""
    import numpy as np

    from edge_runtime.video import write_video as _write

    rng = np.random.default_rng(len(str(path)))
    _write(path, rng.integers(0, 255, (frames, size[1], size[0], 3), dtype=np.uint8), fps=10.0)
    return path


def video_datasets(root: Path, config: dict[str, Any]) -> tuple[Any, Any]:
    """``(train, val)`` video datasets of a synth root under ``config``."""
    from training.commands.train import build_datasets

    return build_datasets(config, root, None)


def trained_run(tmp_path_factory: Any) -> Path:
    """A run folder (best.pt, last.pt, history.json, ...) of a 2-epoch tiny end-to-end training, made once."""
    if "run" not in _CACHE:
        from training.checkpoint import new_model
        from training.trainer import I3D_MTN_Trainer

        config = tiny_config()
        train, val = video_datasets(synth_root(tmp_path_factory), config)
        out = tmp_path_factory.mktemp("tiny_run")
        I3D_MTN_Trainer(new_model(config), config, output_dir=out, device="cpu", progress=False).fit(
            train, val
        )
        _CACHE["run"] = out
    return _CACHE["run"]
