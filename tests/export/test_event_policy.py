"""Choosing the event policy on validation videos: the most fights alerted without a false alarm, the widest
margin, replayed through the runtime's own event state machine.

The scores have the demo's timing: 96-frame videos at 25 fps in 8-frame snippets (a score every 0.32 s, 12 per
video); a fight is 3-4 high snippets (1.0-1.3 s) whose first and last are partly calm, as the synthetic fights
are; some calm scenes have a one-snippet blip (two walkers meeting). The runtime's default 1 s minimum
duration misses such fights.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.events import EventPolicy
from export.event_policy import MARGIN_STEP, choose_event_policy, export_event_policy
from export.report import count_events
from export.scoring import VideoScores

SNIPPET_FRAMES, THRESHOLD = 8, 0.5


def _videos(seed: int, fights: int = 8, normals: int = 8) -> VideoScores:
    rng = np.random.default_rng(seed)
    out = VideoScores()
    for i in range(fights + normals):
        fight = i < fights
        s = rng.uniform(0.0, 0.15, 12)
        if fight:
            start, length = int(rng.integers(2, 7)), int(rng.integers(3, 5))
            s[start : start + length] = rng.uniform(0.75, 0.95, length)
            s[[start, start + length - 1]] = rng.uniform(0.5, 0.65, 2)  # partly calm edges
        elif i % 2:
            s[int(rng.integers(1, 11))] = rng.uniform(0.6, 0.8)  # a blip
        out.keys.append(f"{'anomaly' if fight else 'normal'}/v{i}.mp4")
        out.labels.append(int(fight))
        out.snippet_scores.append(s.astype(np.float32))
        out.frame_scores.append(np.repeat(s, SNIPPET_FRAMES))
        out.frame_labels.append(None)
        out.fps.append(25.0)
    return out


def _alerts(scores: VideoScores, policy: EventPolicy) -> tuple[int, int]:
    alerted = [c > 0 for c in count_events(scores, SNIPPET_FRAMES, policy)]
    fights = sum(a for a, y in zip(alerted, scores.labels, strict=True) if y)
    return fights, sum(alerted) - fights


@pytest.fixture(scope="module")
def val() -> VideoScores:
    return _videos(seed=0)


@pytest.fixture(scope="module")
def choice(val):
    return choose_event_policy(val, SNIPPET_FRAMES, THRESHOLD)


def test_the_default_policy_misses_the_short_fights(val):
    assert _alerts(val, EventPolicy(on_threshold=THRESHOLD)) == (0, 0)


def test_the_chosen_policy_alerts_every_validation_fight_without_a_false_alarm(choice, val):
    assert (choice.fights_alerted, choice.fights, choice.false_alarms, choice.normals) == (8, 8, 0, 8)
    assert _alerts(val, choice.policy) == (8, 0)  # the same replay, as the report makes it
    assert choice.policy.min_duration_s < 1.0 and choice.margin > 0


def test_the_chosen_policy_alerts_every_held_out_fight_of_the_same_kind_without_a_false_alarm(choice):
    assert _alerts(_videos(seed=1), choice.policy) == (8, 0)


def test_the_margin_is_the_largest_score_shift_that_keeps_the_outcome(choice, val):
    def shifted(delta: float) -> VideoScores:
        moved = [s - delta if y else s + delta for s, y in zip(val.snippet_scores, val.labels, strict=True)]
        return VideoScores(val.keys, val.labels, moved, val.frame_scores, val.frame_labels, val.fps)

    assert _alerts(shifted(choice.margin), choice.policy) == (8, 0)
    assert _alerts(shifted(choice.margin + MARGIN_STEP), choice.policy) != (8, 0)


def test_no_false_alarm_comes_before_more_fights():
    # a calm scene that looks exactly like the weakest fight: alerting that fight means a false alarm
    val = _videos(seed=0, fights=3, normals=2)
    weakest = int(np.argmin([s.max() for s in val.snippet_scores[:3]]))
    val.snippet_scores[4] = val.snippet_scores[weakest].copy()
    choice = choose_event_policy(val, SNIPPET_FRAMES, THRESHOLD)
    assert (choice.fights_alerted, choice.false_alarms) == (2, 0)


def test_the_export_records_the_chosen_policy_in_the_manifest(val):
    policy, report, manifest = export_event_policy(val, SNIPPET_FRAMES, THRESHOLD)
    assert (
        report["source"] == "chosen on the validation videos" and report["validation"]["fights_alerted"] == 8
    )
    assert manifest == {
        "schema": "i3dmtn.event_policy/1",
        "on_threshold": policy.on_threshold,
        "off_threshold": policy.off_threshold,
        "min_duration_s": policy.min_duration_s,
    }


def test_without_validation_videos_or_an_alerted_fight_the_runtime_defaults_stay_unrecorded(val):
    policy, report, manifest = export_event_policy(None, SNIPPET_FRAMES, THRESHOLD)
    assert (policy.on_threshold, policy.min_duration_s, manifest) == (THRESHOLD, 1.0, None)
    assert report["source"].startswith("runtime defaults")
    quiet = VideoScores(val.keys, val.labels, [np.zeros(12, np.float32)] * 16, val.frame_scores,
                        val.frame_labels, val.fps)  # fmt: skip
    policy, report, manifest = export_event_policy(quiet, SNIPPET_FRAMES, THRESHOLD)
    assert manifest is None and report["best_candidate"]["validation"]["fights_alerted"] == 0
