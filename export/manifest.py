"""The bundle's ``manifest.json`` as the export writes it (``i3dmtn.bundle/1``, read by
:mod:`edge_runtime.bundle`): the model, target and precision, the preprocessing contract and snippet window,
the operating threshold and event policy, the motion forest if any, the gates and the companions.

A checkpoint of a fine-tune (``i3dmtn train --init``) names the checkpoint it started from; the manifest
carries it as ``model.started_from`` (path, SHA-256, model name, epoch), so a bundle says where its weights
came from. Runtimes that predate the field refuse such a bundle (the ``model`` object's fields are checked
strictly): a bundle from a fine-tune needs a runtime of this version or later; other bundles are unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_runtime.bundle import sha256_file

__all__ = ["build_manifest", "pose_extras"]

POSE_DIR = "pose"  # the bundle's folder of the pose model's IR


def _forest_entry(ckpt: dict) -> dict:
    """The manifest's ``motion_forest`` entry for the forest the checkpoint names (already checked)."""
    from training.motion_forest import FOREST_FILE

    ref = ckpt["motion_forest"]
    crops = int(ref.get("crops", 1))  # written only when 3: a runtime without side crops refuses it
    return {"file": FOREST_FILE, "sha256": ref["sha256"], "stats_version": ref["stats_version"],
            "weight": float(ref["weight"]), **({"crops": crops} if crops != 1 else {})}  # fmt: skip


def pose_extras(ckpt: dict, config: dict, checkpoint: Path) -> dict[str, Path]:
    """The files a bundle with the checkpoint's pose forest holds beside its models, bundle name -> source
    (:func:`export.bundle.write_bundle`'s extras): the forest, and the pose model's IR in ``pose/``."""
    from training.pose_forest import POSE_FOREST_FILE, pose_model_path

    xml = pose_model_path(config)
    return {
        POSE_FOREST_FILE: Path(checkpoint).parent / ckpt["pose_forest"]["file"],
        f"{POSE_DIR}/{xml.name}": xml,
        f"{POSE_DIR}/{xml.with_suffix('.bin').name}": xml.with_suffix(".bin"),
    }


def _pose_entry(config: dict, ckpt: dict, checkpoint: Path) -> dict:
    """The manifest's ``pose_forest`` entry (edge_runtime.bundle_pose) for the checkpoint's pose forest."""
    ref = ckpt["pose_forest"]
    forest, xml, weights = pose_extras(ckpt, config, checkpoint).items()  # (bundle name, source) each
    return {
        "file": forest[0], "sha256": ref["sha256"], "stats_version": ref["stats_version"],
        "weight": float(ref["weight"]), "every": int(ref["every"]), "height": int(ref["height"]),
        "model": {"file": xml[0], "sha256": sha256_file(xml[1]),
                  "weights": weights[0], "weights_sha256": sha256_file(weights[1])},
    }  # fmt: skip


def _model_entry(config: dict, ckpt: dict, checkpoint: Path) -> dict[str, Any]:
    digest = sha256_file(checkpoint)[:12]
    entry: dict[str, Any] = {
        "name": str(config["name"]),
        "version": f"epoch{int(ckpt.get('epoch', 0))}-{digest}",
        "config": config,
    }
    start = ckpt.get("started_from")
    if start:
        entry["started_from"] = {"path": str(start["path"]), "sha256": str(start["sha256"]),
                                 "model": str(start["model"]), "epoch": int(start["epoch"])}  # fmt: skip
    return entry


def build_manifest(
    config: dict,
    ckpt: dict,
    checkpoint: Path,
    *,
    target: str,
    precision: str,
    threshold: float,
    accuracy: dict,
    fps: float,
    events: dict | None,
) -> dict[str, Any]:
    """The manifest of the bundle of ``checkpoint`` (its ``ckpt`` dict and ``config``), without ``files``
    and ``schema`` (:func:`export.bundle.write_bundle` adds both)."""
    from training.configs import to_preprocess_config

    return {
        "model": _model_entry(config, ckpt, Path(checkpoint)),
        "target": target,
        "precision": precision,
        "preprocess": to_preprocess_config(config).to_dict(),
        "window": {
            "snippet_length": int(config["clip_length"]),
            "num_snippets": int(config["num_snippets"]),
            "frame_stride": int(config["frame_stride"]),
            "fps": fps,
        },
        "threshold": threshold,
        **({"event_policy": events} if events else {}),
        **({"motion_forest": _forest_entry(ckpt)} if ckpt.get("motion_forest") else {}),
        **({"pose_forest": _pose_entry(config, ckpt, Path(checkpoint))} if ckpt.get("pose_forest") else {}),
        "accuracy": accuracy,
        "report": "report.json",
        "calibration_set": "calibration_set.json",
    }
