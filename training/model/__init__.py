"""The model: I3D backbone, MTN, attention MIL, and the detector that chains them.

``build_model(config)`` builds a detector from the flat config keys of :data:`MODEL_KEYS`;
``model_config(model)`` gives them back, so a checkpoint can store them and rebuild the same model.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from torch import nn

from training.configs import DEFAULTS
from training.model.detector import AnomalyHead, HeadOutput, I3D_MTN_AnomalyDetector
from training.model.i3d import ENDPOINTS, PARAMS_FULL_WIDTH, PARAMS_FULL_WIDTH_FEATURES, InceptionI3d
from training.model.i3d_weights import LoadReport, inflate_from_2d, load_i3d_file, load_i3d_state_dict
from training.model.mil import GatedAttention, SnippetScorer, attention_pool
from training.model.mtn import MultiScaleTemporalNetwork

__all__ = [
    "MODEL_DEFAULTS",
    "MODEL_KEYS",
    "INPUT_CHANNELS",
    "build_model",
    "build_backbone",
    "model_config",
    "I3D_MTN_AnomalyDetector",
    "AnomalyHead",
    "HeadOutput",
    "InceptionI3d",
    "ENDPOINTS",
    "PARAMS_FULL_WIDTH",
    "PARAMS_FULL_WIDTH_FEATURES",
    "LoadReport",
    "load_i3d_state_dict",
    "load_i3d_file",
    "inflate_from_2d",
    "MultiScaleTemporalNetwork",
    "GatedAttention",
    "SnippetScorer",
    "attention_pool",
]

# The flat config keys that define the model's shape; their defaults are the ``default`` config's
# (training.configs, where each is explained): one default per key, in one place.
MODEL_DEFAULTS: dict[str, Any] = {
    key: DEFAULTS[key]
    for key in (
        "clip_length",
        "width_multiplier",
        "mtn_hidden_dim",
        "mtn_num_scales",
        "mil_attention_dim",
        "dropout",
        "frame_stride",
        "scorer_layers",
        "standardize_features",
    )
}
MODEL_KEYS: tuple[str, ...] = tuple(MODEL_DEFAULTS)

_INTS = {
    "clip_length",
    "mtn_hidden_dim",
    "mtn_num_scales",
    "mil_attention_dim",
    "frame_stride",
    "scorer_layers",
}


def _value(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key, MODEL_DEFAULTS[key])
    if isinstance(MODEL_DEFAULTS[key], bool):
        if not isinstance(value, bool):
            raise ValueError(f"model config {key!r} must be true or false, got {value!r}")
        return value
    if key in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"model config {key!r} must be an integer, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"model config {key!r} must be a number, got {value!r}")
    return float(value)


# The model's input channels per preprocessing modality (``input_modality``; edge_runtime.preprocess.MODALITIES).
INPUT_CHANNELS = {"rgb": 3, "flow": 2}


def build_model(config: Mapping[str, Any]) -> I3D_MTN_AnomalyDetector:
    """A detector from the flat config keys in :data:`MODEL_KEYS` and ``input_modality`` (defaults for
    missing keys; others ignored)."""
    values = {key: _value(config, key) for key in MODEL_KEYS}
    modality = config.get("input_modality", "rgb")
    if modality not in INPUT_CHANNELS:
        raise ValueError(
            f"model config 'input_modality' must be one of {sorted(INPUT_CHANNELS)}, got {modality!r}"
        )
    # bn_momentum and motion_filters are training dynamics only (BatchNorm's running-stat update, the stem's
    # initialisation): the state dict's keys and shapes are the same either way
    momentum = config.get("bn_momentum", DEFAULTS["bn_momentum"])
    motion = config.get("motion_filters", DEFAULTS["motion_filters"])
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum <= 1:
        raise ValueError(f"model config 'bn_momentum' must be a number in (0, 1], got {momentum!r}")
    norm = partial(nn.BatchNorm3d, eps=1e-3, momentum=float(momentum))
    values["i3d_backbone"] = InceptionI3d(
        width_multiplier=values["width_multiplier"],
        in_channels=INPUT_CHANNELS[modality],
        norm_layer=norm,
        motion_filters=float(motion),
    )
    return I3D_MTN_AnomalyDetector(values.pop("clip_length"), **values)


def build_backbone(config: Mapping[str, Any]) -> InceptionI3d:
    """The backbone :func:`build_model` builds for ``config`` (``config.I3D_BACKBONE`` in the seed's usage)."""
    return build_model(config).backbone


def model_config(model: I3D_MTN_AnomalyDetector) -> dict[str, Any]:
    """The config keys of :data:`MODEL_KEYS` that rebuild ``model``'s architecture with :func:`build_model`."""
    return {
        "clip_length": model.clip_length,
        "width_multiplier": model.width_multiplier,
        "mtn_hidden_dim": model.head.mtn.hidden_dim,
        "mtn_num_scales": model.head.mtn.num_scales,
        "mil_attention_dim": model.head.attention.w.in_features,
        "dropout": model.head.dropout.p,
        "frame_stride": model.frame_stride,
        "scorer_layers": model.head.scorer_layers,
        "standardize_features": model.head.standardize,
        "input_modality": {v: k for k, v in INPUT_CHANNELS.items()}[model.backbone.in_channels],
    }
