"""Choosing the device's event policy at export, on the validation videos, through the runtime's own rules.

Each candidate policy (an on threshold from :data:`ON_THRESHOLDS` or the operating threshold, an off/on ratio
from :data:`OFF_RATIOS`, a minimum duration from :data:`MIN_DURATIONS_S`; the runtime's default cool-down) is
replayed over every validation video's streaming snippet scores (FP32, scored as the device scores a camera)
with :func:`export.report.count_events`, the replay the report uses on the held-out videos. A video *alerts*
when it raises at least one event. Only minimum durations that nearly every validation video could show
(:data:`SHOWABLE_SHARE` of each class: a copy scored high throughout alerts) are candidates: a longer one
would tell the videos apart by their length, not their scores (trimmed 2 s clips, for one, hold three
snippets at 15 fps), and on a camera, which never ends, it would let a low on threshold alert all the time.
The choice, rule by rule:

1. no false alarm (a normal video that alerts); when every candidate has some, the fewest;
2. the most fights (anomalous videos) alerted;
3. the widest **margin**: the largest uniform score shift, in steps of :data:`MARGIN_STEP` (the fights' scores
   down, the normal videos' up), that changes neither count. It is the room left for INT8's score differences
   (the report's ``snippet_score_abs_diff``, the same unit) and for scenes a little unlike the validation ones;
4. then the longer minimum duration and the higher on threshold (fewer, surer events), then the off/on ratio
   nearest the runtime's default 0.8 (hysteresis, so that a flickering score does not split one fight into
   several events; whether a video alerts at all rarely depends on it).

Whether a video alerts can only grow when its scores rise (a crossing that held still holds), so the margin is
found by bisection, and a candidate is bisected only when it could beat the best margin so far.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.bundle_event_policy import BundleEventPolicy
from edge_runtime.events import EventPolicy
from export.report import count_events
from export.scoring import VideoScores

__all__ = [
    "ON_THRESHOLDS",
    "OFF_RATIOS",
    "MIN_DURATIONS_S",
    "MARGIN_STEP",
    "SHOWABLE_SHARE",
    "PolicyChoice",
    "choose_event_policy",
    "export_event_policy",
    "showable_durations",
]

log = logging.getLogger(__name__)

ON_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95, plus the operating threshold
OFF_RATIOS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # off = on x ratio
DEFAULT_OFF_RATIO = EventPolicy(on_threshold=1.0).off_threshold  # the runtime's default off/on ratio
MIN_DURATIONS_S = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # 1.0 is the runtime's default
MARGIN_STEP = 0.01  # score units
SHOWABLE_SHARE = 0.9  # of each class's validation videos, for a minimum duration to be tried
_MAX_STEPS = round(1.0 / MARGIN_STEP)  # a shift of 1 moves any score across any threshold


@dataclass
class PolicyChoice:
    """The chosen policy and what it did on the validation videos."""

    policy: EventPolicy
    fights: int
    fights_alerted: int
    normals: int
    false_alarms: int
    margin: float
    candidates: int

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``event_policy`` object."""
        p = self.policy
        assert p.off_threshold is not None
        return BundleEventPolicy(p.on_threshold, p.off_threshold, p.min_duration_s).to_dict()

    def report(self) -> dict[str, Any]:
        p = self.policy
        return {
            "on_threshold": p.on_threshold,
            "off_threshold": p.off_threshold,
            "min_duration_s": p.min_duration_s,
            "validation": {
                "fights": self.fights,
                "fights_alerted": self.fights_alerted,
                "normal_videos": self.normals,
                "false_alarms": self.false_alarms,
                "margin": self.margin,
            },
            "candidates": self.candidates,
        }


def _shifted(scores: VideoScores, delta: float) -> VideoScores:
    """The fights' snippet scores lowered by ``delta`` and the normal videos' raised by it."""
    moved = [
        s - delta if label else s + delta
        for s, label in zip(scores.snippet_scores, scores.labels, strict=True)
    ]
    return dataclasses.replace(scores, snippet_scores=moved)


def _outcome(scores: VideoScores, snippet_frames: int, policy: EventPolicy) -> tuple[int, int]:
    """``(fights alerted, false alarms)``: videos with at least one event, by label."""
    counts = count_events(scores, snippet_frames, policy)
    alerted = [c > 0 for c in counts]
    fights = sum(a for a, label in zip(alerted, scores.labels, strict=True) if label)
    return fights, sum(alerted) - fights


def _margin_steps(scores: VideoScores, snippet_frames: int, policy: EventPolicy, at_least: int) -> int:
    """Largest shift (in steps) that keeps the outcome, or -1 when it is below ``at_least`` steps."""
    base = _outcome(scores, snippet_frames, policy)

    def keeps(steps: int) -> bool:
        return _outcome(_shifted(scores, steps * MARGIN_STEP), snippet_frames, policy) == base

    if at_least > 0 and not keeps(at_least):
        return -1
    lo, hi = at_least, _MAX_STEPS + 1  # keeps(lo); hi: treated as not keeping
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if keeps(mid) else (lo, mid)
    return lo


def _preference(p: EventPolicy) -> tuple[float, float, float]:
    """Rule 4 as a sort key, larger first."""
    assert p.off_threshold is not None
    return (
        p.min_duration_s,
        p.on_threshold,
        -round(abs(p.off_threshold / p.on_threshold - DEFAULT_OFF_RATIO), 6),
    )


def showable_durations(scores: VideoScores, snippet_frames: int) -> tuple[float, ...]:
    """The :data:`MIN_DURATIONS_S` that at least :data:`SHOWABLE_SHARE` of the videos of each label of
    ``scores`` could show: a copy of the video scored 1 throughout alerts under them (the replay's own timing);
    the shortest one when too few videos are long enough for any."""
    high = dataclasses.replace(scores, snippet_scores=[np.ones_like(s) for s in scores.snippet_scores])
    labels = np.asarray(scores.labels)

    def shown(d: float) -> bool:
        alerts = np.asarray(
            count_events(high, snippet_frames, EventPolicy(on_threshold=0.5, min_duration_s=d))
        )
        return all((alerts[labels == y] > 0).mean() >= SHOWABLE_SHARE for y in np.unique(labels))

    return tuple(d for d in MIN_DURATIONS_S if shown(d)) or MIN_DURATIONS_S[:1]


def choose_event_policy(scores: VideoScores, snippet_frames: int, threshold: float) -> PolicyChoice:
    """The policy for ``scores`` (validation videos, labelled) by the rules of the module docstring;
    ``snippet_frames`` is frames per snippet (``S * frame_stride``), ``threshold`` the operating threshold."""
    ons = sorted({*ON_THRESHOLDS, round(float(threshold), 6)} - {0.0})
    durations = showable_durations(scores, snippet_frames)
    if durations != MIN_DURATIONS_S:
        log.info(
            "event policy: minimum durations up to %g s only (longer ones most validation videos cannot show)",
            durations[-1],
        )
    candidates = [
        EventPolicy(on_threshold=on, off_threshold=round(on * ratio, 6), min_duration_s=d)
        for d, on, ratio in itertools.product(durations, ons, OFF_RATIOS)
    ]
    outcomes = [_outcome(scores, snippet_frames, p) for p in candidates]
    fewest_alarms = min(fa for _, fa in outcomes)
    most_fights = max(f for f, fa in outcomes if fa == fewest_alarms)
    best = [p for p, o in zip(candidates, outcomes, strict=True) if o == (most_fights, fewest_alarms)]
    # rule 4's preference first, so that a later candidate must widen the margin to be chosen
    best.sort(key=_preference, reverse=True)
    chosen, steps = best[0], _margin_steps(scores, snippet_frames, best[0], 0)
    for p in best[1:]:
        if steps >= _MAX_STEPS:
            break
        found = _margin_steps(scores, snippet_frames, p, steps + 1)
        if found > steps:
            chosen, steps = p, found
    labels = np.asarray(scores.labels)
    choice = PolicyChoice(
        policy=chosen,
        fights=int((labels == 1).sum()),
        fights_alerted=most_fights,
        normals=int((labels == 0).sum()),
        false_alarms=fewest_alarms,
        margin=round(steps * MARGIN_STEP, 6),
        candidates=len(candidates),
    )
    log.info(
        "event policy on %d validation videos: on %.3f, off %.3f, min duration %g s: %d of %d fights alerted, "
        "%d false alarm(s), margin %.2f (%d candidates)",
        len(labels), chosen.on_threshold, chosen.off_threshold, chosen.min_duration_s, choice.fights_alerted,
        choice.fights, choice.false_alarms, choice.margin, choice.candidates,
    )  # fmt: skip
    return choice


def export_event_policy(
    val: VideoScores | None, snippet_frames: int, threshold: float
) -> tuple[EventPolicy, dict[str, Any], dict[str, Any] | None]:
    """``(policy, report entry, manifest entry)`` of an export: the policy chosen on ``val`` (validation videos
    of both classes), or, without them or when no candidate alerts a validation fight, the runtime's defaults
    at ``threshold`` with no manifest entry (so the runtime keeps its own defaults)."""
    default = EventPolicy(on_threshold=threshold)
    if val is None:
        return default, {"source": "runtime defaults: no validation videos of both classes"}, None
    choice = choose_event_policy(val, snippet_frames, threshold)
    if choice.fights_alerted == 0:
        log.warning(
            "no event policy alerts any of the %d validation fights: the bundle keeps the runtime's defaults",
            choice.fights,
        )
        return default, {"source": "runtime defaults: no candidate alerted a validation fight",
                         "best_candidate": choice.report()}, None  # fmt: skip
    return choice.policy, {"source": "chosen on the validation videos", **choice.report()}, choice.manifest()
