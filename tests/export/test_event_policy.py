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
from export.event_policy import (
    MARGIN_STEP,
    MIN_DURATIONS_S,
    choose_event_policy,
    export_event_policy,
    showable_durations,
)
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


def _trimmed(lengths_and_scores: list[tuple[int, float, int]]) -> VideoScores:
    """Trimmed clips at 15 fps in 8-frame snippets (a score every 0.53 s): (snippets, score, label) each."""
    out = VideoScores()
    for i, (n, score, label) in enumerate(lengths_and_scores):
        out.keys.append(f"{'anomaly' if label else 'normal'}/c{i}.mp4")
        out.labels.append(label)
        out.snippet_scores.append(np.full(n, score, np.float32))
        out.frame_scores.append(np.full(n * SNIPPET_FRAMES, score, np.float32))
        out.frame_labels.append(None)
        out.fps.append(15.0)
    return out


def test_only_durations_nearly_every_validation_video_can_show_are_tried(val):
    assert showable_durations(val, SNIPPET_FRAMES) == MIN_DURATIONS_S  # 12 snippets: 3.5 s of scores
    # three snippets at 15 fps: the first score at 0.53 s, the last at 1.6 s, so at most 1.07 s above
    assert showable_durations(_trimmed([(3, 0.0, 0), (5, 0.0, 1)]), SNIPPET_FRAMES) == (0.25, 0.5, 0.75, 1.0)
    assert showable_durations(_trimmed([(1, 0.0, 0)]), SNIPPET_FRAMES) == MIN_DURATIONS_S[:1]
    # one clip of a single snippet among twenty of three does not hold the others back; three in 22 do
    few_short = [(1, 0.0, 0)] + [(3, 0.0, 0)] * 19 + [(3, 0.0, 1)] * 20
    assert showable_durations(_trimmed(few_short), SNIPPET_FRAMES)[-1] == 1.0
    assert showable_durations(_trimmed([(1, 0.0, 0)] * 2 + few_short), SNIPPET_FRAMES) == MIN_DURATIONS_S[:1]


def test_the_policy_never_tells_clips_apart_by_their_length():
    # the fights are longer clips but score lower than the calm ones: a minimum duration of 1.5 s with a low
    # on threshold would alert every fight and no calm clip (and, on a camera, alert all the time)
    val = _trimmed([(5, 0.3, 1)] * 8 + [(3, 0.6, 0)] * 8)
    choice = choose_event_policy(val, SNIPPET_FRAMES, THRESHOLD)
    assert choice.policy.min_duration_s <= 1.0
    assert (choice.fights_alerted, choice.false_alarms) == (0, 0)  # no score tells them apart
    policy, entry, manifest = export_event_policy(val, SNIPPET_FRAMES, THRESHOLD)
    assert manifest is None and entry["source"].startswith("runtime defaults")
