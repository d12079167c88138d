"""The export's comparison with the bundle it would replace (``i3dmtn export --baseline OLD_BUNDLE``).

After a fine-tune on reviewed clips (``i3dmtn data harvest``, ``i3dmtn train --init``) the question is what
changes on the device. Both bundles score the same held-out videos, each as its device would:

- the old bundle with the device's code only (no torch): :func:`edge_runtime.bundle.load_bundle` (hashes
  checked), :func:`edge_runtime.models.load_models` at the bundle's precision (fp32 if those files cannot be
  loaded), on the backend the export report uses for its target, and the one streaming rule
  (:func:`edge_runtime.scoring.streaming_scores`, through :func:`export.scoring.score_with_backends`);
- the new model as the report scores it, at the precision the new bundle ships.

A video *raises an event* when its snippet scores, replayed through the runtime's event state machine
(:func:`export.report.count_events`), open at least one event under **its own bundle's** event policy (the old
one as ``edge-runtime`` builds it with no options and no device profile: :func:`edge_runtime.cli_settings.event_policy`;
the new one as the export chose it). Per video: both video scores and whether each raised an event; counts:
false alarms that went away, new false alarms, fights lost, fights gained; and both video AUCs.

The old bundle must cut the videos into the same snippets: the same preprocessing contract (modality, crop,
resize, frame rate, flow side, normalisation) and the same snippet length and frame stride; its head's window
``K`` may differ (each bundle streams with its own), and so may the ``interpolation`` that shrinks the frames
(each bundle scores its own pixels of the same frames).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.bundle import Bundle, BundleError, load_bundle
from edge_runtime.events import EventPolicy
from edge_runtime.preprocess import PreprocessConfig
from export.report import count_events
from export.scoring import VideoScores, score_with_backends
from training.data import VideoRecord
from training.metrics import video_metrics

__all__ = [
    "BaselineError",
    "open_baseline",
    "bundle_event_policy",
    "score_baseline",
    "compare_with_baseline",
    "baseline_report",
    "baseline_table",
]

log = logging.getLogger(__name__)

CHANGES = ("false_alarms_gone", "new_false_alarms", "fights_lost", "fights_gained")


class BaselineError(ValueError):
    """A ``--baseline`` that is not a bundle or cannot score the same clips; the message is one line."""


_OWN_PIXELS = ("contract", "interpolation")  # may differ: the version label, how each bundle shrinks frames


def _contract_differences(old: PreprocessConfig, new: PreprocessConfig) -> list[str]:
    """The preprocessing fields whose values differ, but for :data:`_OWN_PIXELS`."""
    return [
        f"{f.name} {getattr(old, f.name)!r} (this model: {getattr(new, f.name)!r})"
        for f in dataclasses.fields(PreprocessConfig)
        if f.name not in _OWN_PIXELS and getattr(old, f.name) != getattr(new, f.name)
    ]


def open_baseline(path: Path, preprocess: PreprocessConfig, snippet_length: int, frame_stride: int) -> Bundle:
    """The bundle at ``path``, checked to cut videos into the same snippets as the new model."""
    if not Path(path).is_dir():
        raise BaselineError(f"--baseline {path} is not a bundle folder (one written by `i3dmtn export`)")
    try:
        bundle = load_bundle(path)
    except BundleError as exc:
        raise BaselineError(f"--baseline {path} is not a usable bundle: {exc}") from None
    window = bundle.window
    differ = _contract_differences(bundle.preprocess, preprocess)
    for name, old, new in (
        ("snippet_length", window.snippet_length, snippet_length),
        ("frame_stride", window.frame_stride, frame_stride),
    ):
        if old != new:
            differ.append(f"{name} {old!r} (this model: {new!r})")
    if differ:
        raise BaselineError(
            f"--baseline {path} cannot score the same clips as this model: its {'; '.join(differ)}"
        )
    return bundle


def bundle_event_policy(bundle: Bundle) -> EventPolicy:
    """The event policy ``edge-runtime --bundle`` runs ``bundle`` with when no option or profile sets one."""
    from edge_runtime.cli_settings import event_policy

    unset = argparse.Namespace(
        on_threshold=None, off_threshold=None, min_duration=None, cooldown=None, update_interval=None
    )
    return event_policy(unset, None, bundle)


def score_baseline(
    bundle: Bundle, records: list[VideoRecord], progress: bool = True
) -> tuple[VideoScores, dict[str, Any]]:
    """The old bundle's scores on ``records`` and what it ran as (the report's ``baseline.bundle`` entry);
    ``progress``: a bar on a terminal."""
    from edge_runtime.models import load_models
    from export.targets import runtime_backend

    models = load_models(bundle, backend=runtime_backend(bundle.target), device="CPU")
    try:
        w = bundle.window
        scores = score_with_backends(
            {"baseline": (models.backbone, [models.head])},
            records,
            preprocess=bundle.preprocess,
            snippet_length=w.snippet_length,
            frame_stride=w.frame_stride,
            window=w.num_snippets,
            desc="baseline bundle",
            progress=progress,
        )["baseline"][0]
    finally:
        models.close()
    info = {
        "path": str(bundle.path),
        "model": bundle.model_name,
        "version": bundle.model_version,
        "target": bundle.target,
        "precision": models.precision,
        "backend": models.backend,
        "threshold": bundle.threshold,
    }
    return scores, info


def baseline_report(
    bundle: Bundle,
    records: list[VideoRecord],
    new: VideoScores,
    new_policy: EventPolicy,
    new_snippet_frames: int,
    progress: bool = True,
) -> dict[str, Any]:
    """The report's ``baseline`` entry: the old ``bundle`` scored on ``records`` and compared with ``new``
    (the new model's scores of the same records under its ``new_policy``)."""
    log.info("scoring the %d held-out videos with the baseline bundle %s", len(records), bundle.path)
    old, info = score_baseline(bundle, records, progress)
    w = bundle.window
    entry = compare_with_baseline(
        old,
        bundle_event_policy(bundle),
        w.snippet_length * w.frame_stride,
        new,
        new_policy,
        new_snippet_frames,
    )
    return {"bundle": info, **entry}


def _policy_dict(policy: EventPolicy) -> dict[str, float]:
    return {k: getattr(policy, k) for k in ("on_threshold", "off_threshold", "min_duration_s", "cooldown_s")}


def compare_with_baseline(
    old: VideoScores,
    old_policy: EventPolicy,
    old_snippet_frames: int,
    new: VideoScores,
    new_policy: EventPolicy,
    new_snippet_frames: int,
) -> dict[str, Any]:
    """The report's ``baseline`` entry (without ``bundle``): per-video rows, the change counts, both AUCs.
    ``*_snippet_frames`` is each model's frames per snippet (``S * frame_stride``)."""
    if old.keys != new.keys:
        raise ValueError("the baseline and the new model were scored on different videos")
    old_events = count_events(old, old_snippet_frames, old_policy)
    new_events = count_events(new, new_snippet_frames, new_policy)
    rows = [
        {"video": key, "label": int(label), "old_score": float(a), "new_score": float(b),
         "old_event": ea > 0, "new_event": eb > 0}
        for key, label, a, b, ea, eb in zip(
            new.keys, new.labels, old.video_scores, new.video_scores, old_events, new_events, strict=True
        )
    ]  # fmt: skip
    changes = {name: [] for name in CHANGES}
    for r in rows:
        if r["old_event"] != r["new_event"]:
            name = {(0, True): "false_alarms_gone", (0, False): "new_false_alarms",
                    (1, True): "fights_lost", (1, False): "fights_gained"}[(r["label"], r["old_event"])]  # fmt: skip
            changes[name].append(r["video"])
    labels = np.asarray(new.labels)

    def alerted(which: str, label: int) -> int:
        return sum(r[f"{which}_event"] for r in rows if r["label"] == label)

    return {
        "videos": len(rows),
        "fights": int((labels == 1).sum()),
        "normal_videos": int((labels == 0).sum()),
        "video_auc": {
            "old": video_metrics(labels, old.video_scores)["auc_roc"],
            "new": video_metrics(labels, new.video_scores)["auc_roc"],
        },
        "fights_alerted": {"old": alerted("old", 1), "new": alerted("new", 1)},
        "false_alarms": {"old": alerted("old", 0), "new": alerted("new", 0)},
        **{name: len(keys) for name, keys in changes.items()},
        "changed_videos": changes,
        "event_policy": {"old": _policy_dict(old_policy), "new": _policy_dict(new_policy)},
        "per_video": rows,
    }


def _auc(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


def baseline_table(entry: dict[str, Any]) -> str:
    """A few lines for the terminal: the old and the new bundle side by side, then the changes."""
    b = entry["bundle"]
    rows = [
        ("video AUC", *(_auc(entry["video_auc"][w]) for w in ("old", "new"))),
        ("fights alerted", *(f"{entry['fights_alerted'][w]}/{entry['fights']}" for w in ("old", "new"))),
        ("false alarms", *(f"{entry['false_alarms'][w]}/{entry['normal_videos']}" for w in ("old", "new"))),
    ]
    return "\n".join(
        [
            f"against the baseline {b['path']} ({b['model']} {b['version']}, {b['precision']}) on the same "
            f"{entry['videos']} held-out videos, each under its own bundle's event policy:",
            f"  {'':<16}{'baseline':>10}{'new':>10}",
            *(f"  {name:<16}{old:>10}{new:>10}" for name, old, new in rows),
            f"  false alarms gone {entry['false_alarms_gone']}, new false alarms {entry['new_false_alarms']}, "
            f"fights lost {entry['fights_lost']}, fights gained {entry['fights_gained']}",
        ]
    )
