"""Workstation side: model, data, training, evaluation.

The seed's names are importable here (``from training import I3D_MTN_AnomalyDetector, get_config``);
they are loaded lazily so that ``import training`` (e.g. by the CLI) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "I3D_MTN_AnomalyDetector": "training.model.detector",
    "get_config": "training.configs",
    "create_experiment_config": "training.configs",
    "AnomalyVideoDataset": "training.data",
    "I3D_MTN_Trainer": "training.trainer",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
