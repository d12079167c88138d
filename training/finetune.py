"""Fine-tuning: a new training run that starts from an earlier model's weights (``i3dmtn train --init``).

The loop it serves: the device's reviewed false alarms and fights become training videos (``i3dmtn data
harvest``), a fine-tune trains on the old data plus them, and ``i3dmtn export --baseline`` compares the new
bundle with the old on the same held-out clips.

A fine-tune differs from ``--resume`` (which continues a killed run in its own folder: weights, optimizer,
schedule, epoch counter, best epoch and random states all come back): here only the weights (backbone and
head) come from the checkpoint; the optimizer, the learning-rate schedule, the epoch counter and the best
epoch start afresh, under the run's config. The checkpoint must be one of this project (read with
``torch.load(..., weights_only=True)``) of the same architecture and preprocessing contract as that config
(:func:`check_fits`); the run records where it started (:func:`provenance`: path and SHA-256) in its
checkpoints and in ``init.json`` next to ``config.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from edge_runtime.bundle import sha256_file
from training.checkpoint import CheckpointError, load_model_state, read_checkpoint
from training.model import MODEL_KEYS

__all__ = [
    "ARCHITECTURE_KEYS",
    "CONTRACT_KEYS",
    "INIT_FILE",
    "check_fits",
    "init_from",
    "provenance",
    "read_init",
    "write_init_record",
]

log = logging.getLogger(__name__)

INIT_FILE = "init.json"  # in the run folder, next to config.json: the checkpoint a fine-tune started from
# config keys that shape the weights (dropout does not: its state dict is the same at any rate)
ARCHITECTURE_KEYS: tuple[str, ...] = (
    "input_modality",
    *(k for k in MODEL_KEYS if k != "dropout"),
)
# config keys of the preprocessing contract (training.configs.to_preprocess_config reads them); clip_length
# and frame_stride are architecture keys
CONTRACT_KEYS: tuple[str, ...] = (
    "frame_size",
    "resize_short_side",
    "frame_rate",
    "flow_short_side",
    "flow_camera_motion",
    "interpolation",
)


def read_init(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (weights_only load, config validated); :class:`CheckpointError`
    naming ``--init`` and the file otherwise."""
    try:
        return read_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(f"--init: {exc}") from None


def check_fits(ckpt_config: Mapping[str, Any], config: Mapping[str, Any], source: str | Path) -> None:
    """Refuse (one line naming each key that differs) a checkpoint whose architecture or preprocessing
    contract is not the run's: its weights would not fit, or would have learnt other inputs."""
    differ = [k for k in (*ARCHITECTURE_KEYS, *CONTRACT_KEYS) if ckpt_config.get(k) != config.get(k)]
    if differ:
        shown = ", ".join(f"{k} {ckpt_config.get(k)!r} (the run's config: {config.get(k)!r})" for k in differ)
        raise CheckpointError(
            f"--init {source} has another architecture or preprocessing contract than the run's config: {shown}; "
            "a fine-tune keeps both (leave out --config to train under the checkpoint's own config, or "
            f"--set {differ[0]}=...)"
        )


def provenance(path: str | Path, ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """What the run records about the checkpoint it started from."""
    path = Path(path)
    return {
        "path": str(path.absolute()),
        "sha256": sha256_file(path),
        "model": str(ckpt["config"]["name"]),
        "epoch": int(ckpt.get("epoch", 0)),
    }


def init_from(model: nn.Module, path: str | Path, ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """Load ``ckpt``'s weights (read from ``path``) into ``model``, strictly (a key or shape that does not fit
    is refused by name); returns :func:`provenance`. Check the run's config with :func:`check_fits` first, to
    refuse another architecture or preprocessing contract by its config key before any data is read."""
    load_model_state(model, ckpt["model"], path)
    record = provenance(path, ckpt)
    log.info(
        "fine-tune: weights from %s (%s, epoch %d, sha256 %s...); optimizer, schedule and epochs start afresh",
        path, record["model"], record["epoch"], record["sha256"][:12],
    )  # fmt: skip
    return record


def write_init_record(run_dir: Path, record: Mapping[str, Any] | None) -> None:
    """``init.json`` in ``run_dir`` for a fine-tune; for a run from scratch, no such file (an old one from an
    earlier run in the same folder is removed, so that it never claims a start this run did not have)."""
    path = Path(run_dir) / INIT_FILE
    if record is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{INIT_FILE}.tmp")
    tmp.write_text(json.dumps(dict(record), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
