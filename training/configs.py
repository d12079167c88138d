"""Experiment configurations: one flat, JSON-able dict per experiment.

A config is a plain ``dict[str, int | float | bool | str]`` so it can be stored in a checkpoint, written next
to a run, and read back without any code of ours (``json.load``). Presets:

- ``default``: the published recipe at full size (I3D at 224 px, 16-frame snippets, RTFM's 32 snippets and
  loss weights; Tian et al., "Weakly-supervised Video Anomaly Detection with Robust Temporal Feature
  Magnitude Learning", ICCV 2021; Sultani et al., "Real-world Anomaly Detection in Surveillance Videos",
  CVPR 2018).
- ``fight``: long untrimmed surveillance videos with video-level labels (UCF-Crime-like).
- ``violence``: short trimmed clips (RWF-2000-like, 5 s at 30 fps) or movie / web clips (XD-Violence-like).
- ``surveillance``: real surveillance clips trained from scratch on a CPU (no pretrained video weights): a
  small flow I3D at 15 fps (docs/real-video.md has the runs behind each choice).
- ``kinetics``: real surveillance clips on the published Kinetics-400 I3D RGB weights, frozen, at 256 px and
  15 fps (frames shrunk linearly: ``interpolation``), with a small head trained on their cached features,
  standardised (``standardize_features``).
- ``debug``: a tiny model on tiny frames that trains on a CPU in minutes on the synthetic videos (tests, CI).

The values, with the reason for each, are in :mod:`training.presets`; this module reads and checks them.

Pure Python: no torch, so the CLI can read configs instantly.

A config also reads as attributes, by key or by the seed's upper-case name (``cfg.CLIP_LENGTH`` is
``cfg["clip_length"]``; see :class:`Config`), and a preset name may stand for a base config:

>>> cfg = create_experiment_config("debug", epochs=2)
>>> cfg["epochs"], cfg.CLIP_LENGTH, topk_count(cfg["num_snippets"], cfg["topk_ratio"])
(2, 8, 1)
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "AMP_MODES",
    "BEST_CHECKPOINTS",
    "INPUT_MODALITIES",
    "CONFIG_NAMES",
    "FLOW_CAMERA_MOTIONS",
    "MOTION_FOREST_DATA",
    "SAMPLING_MODES",
    "Config",
    "ConfigError",
    "check_training_mode",
    "DEFAULTS",
    "config_from_json",
    "config_to_json",
    "create_experiment_config",
    "get_config",
    "load_config",
    "save_config",
    "to_preprocess_config",
    "topk_count",
    "validate_config",
]

from training.config_forests import MOTION_FOREST_DATA, check_motion_forest, check_pose_forest
from training.presets import DEFAULT as _DEFAULT
from training.presets import PRESETS as _PRESETS

logger = logging.getLogger(__name__)

INPUT_MODALITIES = ("rgb", "flow")  # edge_runtime.preprocess.MODALITIES (configs stay numpy-free)
FLOW_CAMERA_MOTIONS = ("keep", "median", "align")  # edge_runtime.preprocess.FLOW_CAMERA_MOTIONS (tested)
INTERPOLATIONS = ("area", "cubic", "linear")  # edge_runtime.preprocess_config.INTERPOLATIONS (tested)
AMP_MODES = ("auto", "on", "off")  # auto: mixed precision on CUDA, off on CPU
BEST_CHECKPOINTS = ("val_auc", "last")  # training.trainer
SAMPLING_MODES = (
    "window",
    "segments",
)  # training.data.sampling (kept equal; configs stay torch- and numpy-free)


class ConfigError(ValueError):
    """A bad config name, key or value."""


class Config(dict):
    """A validated config: a plain ``dict`` (JSON-able as it is) whose keys also read as attributes.

    ``cfg.clip_length`` and the seed's upper-case ``cfg.CLIP_LENGTH`` are ``cfg["clip_length"]``. Three of the
    seed's names are not keys: ``NUM_EPOCHS`` is ``epochs``, ``FRAME_SIZE`` is the crop as ``(H, W)``, and
    ``I3D_BACKBONE`` builds the backbone this config describes (width, input channels, BatchNorm momentum,
    stem initialisation), for ``I3D_MTN_AnomalyDetector(i3d_backbone=cfg.I3D_BACKBONE, ...)``. Attributes are
    read-only: change a config with :func:`create_experiment_config`, which validates.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name == "NUM_EPOCHS":
            return self["epochs"]
        if name == "FRAME_SIZE":
            return (self["frame_size"], self["frame_size"])
        if name == "I3D_BACKBONE":
            from training.model import build_backbone  # lazy: configs stay torch-free

            return build_backbone(self)
        if name.lower() in self:
            return self[name.lower()]
        raise AttributeError(f"config has no key {name.lower()!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"config keys are read-only: create_experiment_config(config, {name.lower()}=...)"
        )


CONFIG_NAMES: tuple[str, ...] = tuple(_PRESETS)
# the default of every key (the ``default`` preset): the model's constructors take theirs from here
DEFAULTS: Mapping[str, Any] = MappingProxyType(_DEFAULT)

_POSITIVE_INTS = (
    "clip_length",
    "num_snippets",
    "frame_stride",
    "frame_size",
    "resize_short_side",
    "mtn_hidden_dim",
    "mtn_num_scales",
    "mil_attention_dim",
    "epochs",
    "batch_size",
    "grad_accum_steps",
)
_NON_NEGATIVE = (
    "weight_decay",
    "warmup_epochs",
    "grad_clip",
    "early_stopping_patience",
    "seed",
    "num_workers",
    "loss_anomaly_weight",
    "loss_smoothness_weight",
    "loss_sparsity_weight",
    "frame_loss_weight",
    "video_loss_weight",
    "mil_loss_weight",
    "snippet_loss_weight",
    "streaming_loss_weight",
    "augment_crop_jitter",
    "augment_zoom",
    "augment_mixup",
    "swa_epochs",
)


def get_config(name: str = "default") -> Config:
    """A fresh copy of the preset ``name`` (one of :data:`CONFIG_NAMES`)."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown config {name!r}; known configs: {', '.join(CONFIG_NAMES)}")
    return Config({**_DEFAULT, **_PRESETS[name]})


def _type_name(value: Any) -> str:
    return type(value).__name__


def _coerce(key: str, value: Any, reference: Any) -> Any:
    """``value`` checked against the type of ``reference``: int for int, float accepts int, bool strictly."""
    if isinstance(reference, bool):
        ok = isinstance(value, bool)
    elif isinstance(reference, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(reference, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(reference))
    if not ok:
        raise ConfigError(
            f"config key {key!r} expects {_type_name(reference)}, got {_type_name(value)} {value!r}"
        )
    return value


def _unknown_key_error(key: str, known: Any) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}")


def create_experiment_config(base_config: Mapping[str, Any] | str, **overrides: Any) -> Config:
    """A new config: ``base_config`` (a config, or a preset name) with ``overrides`` applied, type-checked
    and validated.

    Unknown keys are refused with the closest known key named; ``base_config`` is not modified.
    """
    config = dict(get_config(base_config) if isinstance(base_config, str) else base_config)
    for key, value in overrides.items():
        if key not in config:
            raise _unknown_key_error(key, config)
        config[key] = _coerce(key, value, config[key])
    return Config(validate_config(config))


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key, type and range; returns the config as a dict, raises :class:`ConfigError`."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"a config must be a mapping, got {_type_name(config)}")
    for key in config:
        if key not in _DEFAULT:
            raise _unknown_key_error(key, _DEFAULT)
    missing = sorted(set(_DEFAULT) - set(config))
    if missing:
        raise ConfigError(f"config is missing key(s) {missing}")
    cfg = {key: _coerce(key, config[key], _DEFAULT[key]) for key in _DEFAULT}

    def fail(key: str, expected: str) -> None:
        raise ConfigError(f"config key {key!r} must be {expected}, got {cfg[key]!r}")

    _check_training(cfg, fail)
    _check_input(cfg, fail)
    check_motion_forest(cfg, fail)
    check_pose_forest(cfg, fail)
    if cfg["amp"] not in AMP_MODES:
        fail("amp", f"one of {AMP_MODES}")
    if not cfg["name"]:
        fail("name", "a non-empty string")
    return cfg


def _check_training(cfg: dict[str, Any], fail: Callable[[str, str], None]) -> None:
    """The model's and the training recipe's numbers and choices."""
    for key in _POSITIVE_INTS:
        if cfg[key] <= 0:
            fail(key, "a positive integer")
    for key in _NON_NEGATIVE:
        if not cfg[key] >= 0:  # also refuses NaN
            fail(key, ">= 0")
    for key in ("learning_rate", "width_multiplier"):
        if not (cfg[key] > 0 and math.isfinite(cfg[key])):
            fail(key, "a positive finite number")
    if not 0 < cfg["val_fraction"] < 1:
        fail("val_fraction", "in (0, 1)")
    if cfg["snippet_sampling"] not in SAMPLING_MODES:
        fail("snippet_sampling", f"one of {SAMPLING_MODES}")
    if cfg["best_checkpoint"] not in BEST_CHECKPOINTS:
        fail("best_checkpoint", f"one of {BEST_CHECKPOINTS}")
    if cfg["best_checkpoint"] == "last" and cfg["early_stopping_patience"]:
        fail("early_stopping_patience", "0 with best_checkpoint 'last' (no epoch is ranked to stop on)")
    if not 0 < cfg["topk_ratio"] <= 1:
        fail("topk_ratio", "in (0, 1]")
    if not 0 < cfg["bn_momentum"] <= 1:
        fail("bn_momentum", "in (0, 1]")
    if not 0 <= cfg["motion_filters"] <= 1:
        fail("motion_filters", "in [0, 1]")
    if cfg["scorer_layers"] not in (0, 1, 2):
        fail("scorer_layers", "0, 1 or 2")
    if not 0 <= cfg["dropout"] < 1:
        fail("dropout", "in [0, 1)")
    if not 0 <= cfg["min_lr_ratio"] <= 1:
        fail("min_lr_ratio", "in [0, 1]")
    if cfg["warmup_epochs"] > cfg["epochs"]:
        fail("warmup_epochs", f"<= epochs ({cfg['epochs']})")
    if cfg["swa_epochs"] > cfg["epochs"]:
        fail("swa_epochs", f"<= epochs ({cfg['epochs']})")
    if cfg["swa_epochs"] and cfg["early_stopping_patience"]:
        fail("swa_epochs", "0 with early stopping (the averaged weights come after the last epoch)")


def _check_input(cfg: dict[str, Any], fail: Callable[[str, str], None]) -> None:
    """The input: frame sizes, frame rate, modality and the flow's size."""
    if cfg["resize_short_side"] < cfg["frame_size"]:
        fail("resize_short_side", f">= frame_size ({cfg['frame_size']})")
    if not 0 <= cfg["frame_rate"] <= 240:
        fail("frame_rate", "frames per second in [0, 240] (0 takes every frame)")
    if cfg["input_modality"] not in INPUT_MODALITIES:
        fail("input_modality", f"one of {INPUT_MODALITIES}")
    if cfg["input_modality"] == "flow" and cfg["resize_short_side"] < 16:
        fail("resize_short_side", ">= 16 with input_modality 'flow' (optical flow needs 16 px)")
    side = cfg["flow_short_side"]  # an int: every key has its default's type
    if side < 0:
        fail("flow_short_side", "a whole number of pixels >= 0 (0: flow at resize_short_side)")
    if side and cfg["input_modality"] != "flow":
        fail("flow_short_side", "0 unless input_modality is 'flow'")
    if side and side < cfg["resize_short_side"]:
        fail("flow_short_side", f"0 or >= resize_short_side ({cfg['resize_short_side']})")
    if cfg["flow_camera_motion"] not in FLOW_CAMERA_MOTIONS:
        fail("flow_camera_motion", f"one of {FLOW_CAMERA_MOTIONS}")
    if cfg["flow_camera_motion"] != "keep" and cfg["input_modality"] != "flow":
        fail("flow_camera_motion", "'keep' unless input_modality is 'flow'")
    if cfg["interpolation"] not in INTERPOLATIONS:
        fail("interpolation", f"one of {INTERPOLATIONS}")


def check_training_mode(config: Mapping[str, Any], *, head_only: bool) -> None:
    """Refuse the keys that need head-only training on cached features when training end to end."""
    if config["standardize_features"] and not head_only:
        raise ConfigError(
            "config key standardize_features needs head-only training on a frozen backbone's cached features "
            "(i3dmtn train --features): a backbone that trains moves the statistics"
        )


def topk_count(num_snippets: int, topk_ratio: float) -> int:
    """Snippets in the top-k MIL term: ``max(1, round(K * ratio))``, rounding halves up (not to even)."""
    if num_snippets <= 0:
        raise ConfigError(f"num_snippets must be positive, got {num_snippets}")
    return min(num_snippets, max(1, math.floor(num_snippets * topk_ratio + 0.5)))


def to_preprocess_config(config: Mapping[str, Any]) -> Any:
    """The :class:`edge_runtime.preprocess.PreprocessConfig` this experiment trains with."""
    from edge_runtime.preprocess import PreprocessConfig  # lazy: numpy + OpenCV

    size = int(config["frame_size"])
    return PreprocessConfig(
        crop_size=(size, size),
        resize_short_side=int(config["resize_short_side"]),
        frame_rate=float(config.get("frame_rate", 0.0)),
        modality=str(config.get("input_modality", "rgb")),
        flow_short_side=int(config.get("flow_short_side", 0)),
        flow_camera_motion=str(config.get("flow_camera_motion", "keep")),
        interpolation=str(config.get("interpolation", "area")),
    )


def config_to_json(config: Mapping[str, Any]) -> str:
    """Pretty, key-sorted JSON text of a validated config."""
    return json.dumps(validate_config(config), indent=2, sort_keys=True) + "\n"


# keys a preset sets otherwise than the project behaved before the key existed, with that behaviour: a saved
# config without one of them was written before it (config_from_json)
ADDED_KEYS: dict[str, Any] = {"standardize_features": False, "interpolation": "area"}


def config_from_json(text: str, *, source: str = "<string>", saved: bool = False) -> dict[str, Any]:
    """Read a config from JSON text; keys it lacks come from its preset (``name``) or ``default``.

    Filling lets a checkpoint written before a key was added still load; the filled keys are logged. A
    ``saved`` config (a checkpoint's: the project writes every key it has) that lacks a key of
    :data:`ADDED_KEYS` was written before the key existed, and takes the value that behaves as the project
    did then, not its preset's newer one (a ``kinetics`` checkpoint of before ``standardize_features`` has
    no statistics in its head).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a JSON object, got {_type_name(data)}")
    base = get_config(data["name"] if data.get("name") in _PRESETS else "default")
    filled = sorted(set(base) - set(data))
    before = {k: v for k, v in ADDED_KEYS.items() if k in filled} if saved else {}
    if before:
        logger.info("%s: written before keys %s existed: %s", source, sorted(before), before)
        data = {**before, **data}
    filled = [k for k in filled if k not in before]
    if filled:
        logger.info("%s: keys %s not given, taken from the %r preset", source, filled, base["name"])
    try:
        return create_experiment_config(base, **data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def save_config(config: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the config as JSON to ``path`` (via a temporary file, so a crash never leaves half a file)."""
    path = Path(path)
    text = config_to_json(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config written by :func:`save_config` (or by hand)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    return config_from_json(text, source=str(path))
