"""The export report replays each held-out video's snippet scores through the runtime's event state machine, and
the event gate fails an export whose INT8 model alerts fewer of those fights than FP32."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.events import EventPolicy
from export.report import AccuracyGateError, compare, count_events, event_gate, gate
from export.scoring import VideoScores


def _scores(snippets: list[list[float]], fps: float = 25.0) -> VideoScores:
    out = VideoScores()
    for i, s in enumerate(snippets):
        label = int(max(s) > 0.5)
        out.keys.append(f"{'anomaly' if label else 'normal'}/v{i}.mp4")
        out.labels.append(label)
        out.snippet_scores.append(np.asarray(s, np.float32))
        out.frame_scores.append(np.repeat(np.asarray(s, np.float32), 8))
        out.frame_labels.append(None)
        out.fps.append(fps)
    return out


# 8-frame snippets at 25 fps: a score every 0.32 s. Five high snippets span 1.28 s >= the 1 s minimum
# duration; the INT8 copy keeps the peak but dips one snippet under the off threshold (0.8 x 0.5 = 0.4).
FIGHT = [0.0, 0.0, 0.9, 0.95, 0.99, 0.9, 0.9, 0.0, 0.0]
FIGHT_DIPPED = [0.0, 0.0, 0.9, 0.95, 0.99, 0.3, 0.9, 0.0, 0.0]
CALM = [0.0] * 9


def test_an_event_needs_the_minimum_duration_at_the_videos_frame_rate():
    policy = EventPolicy(on_threshold=0.5)
    assert count_events(_scores([FIGHT, FIGHT_DIPPED, CALM]), 8, policy) == [1, 0, 0]
    # the same scores at 12.5 fps arrive every 0.64 s: the dipped fight's first run now lasts long enough
    assert count_events(_scores([FIGHT_DIPPED], fps=12.5), 8, policy) == [1]


def test_the_padded_last_snippet_never_reaches_the_replay():
    # the device never scores a file's padded tail: an event that only the padded snippet would complete
    # (five high snippets at 25 fps: 1.28 s >= 1 s, four: 0.96 s) is not counted
    late = [0.0, 0.0, 0.0, 0.9, 0.9, 0.9, 0.9, 0.9]
    scores = _scores([late])
    policy = EventPolicy(on_threshold=0.5)
    assert count_events(scores, 8, policy) == [1]  # every snippet scored by the device (scores by hand)
    scores.complete = [7]
    assert count_events(scores, 8, policy) == [0]


def test_report_counts_the_events_int8_loses_while_video_auc_stays_perfect():
    fp32, int8 = _scores([FIGHT, CALM]), _scores([FIGHT_DIPPED, CALM])
    report = compare(fp32, int8, 0.5, snippet_frames=8)
    assert report["auc_drop"] == 0.0 and report["alert_agreement"] == 1.0  # the peak survived
    events = report["events"]
    assert (events["fp32"], events["int8"]) == (1, 0)
    assert events["agreement"] == pytest.approx(0.5)
    assert events["per_video"]["anomaly/v0.mp4"] == {"fp32": 1, "int8": 0}
    assert events["policy"]["min_duration_s"] == 1.0 and events["policy"]["off_threshold"] == pytest.approx(
        0.4
    )


def test_without_snippet_frames_the_report_has_no_event_replay():
    assert "events" not in compare(_scores([FIGHT, CALM]), _scores([FIGHT, CALM]), 0.5)


def test_the_event_gate_fails_when_int8_loses_a_fight_though_video_auc_is_perfect():
    report = compare(_scores([FIGHT, CALM]), _scores([FIGHT_DIPPED, CALM]), 0.5, snippet_frames=8)
    assert report["fp32"]["video_auc"] == report["int8"]["video_auc"] == 1.0
    assert gate(report, 0.01, allow_drop=False)["gate"] == "passed"  # the AUC gate alone lets it through
    with pytest.raises(AccuracyGateError) as info:
        event_gate(report, allow_loss=False)
    message = str(info.value)
    assert message.startswith(
        "event gate: INT8 alerts 0 of 1 held-out fights, FP32 1 (no INT8 event on anomaly/v0"
    )
    assert "min duration 1 s" in message and message.endswith("--allow-event-loss") and "\n" not in message


def test_allowing_the_event_loss_records_the_event_gate_overridden():
    report = compare(_scores([FIGHT, CALM]), _scores([FIGHT_DIPPED, CALM]), 0.5, snippet_frames=8)
    assert event_gate(report, allow_loss=True) == {
        "fights": 1,
        "fp32_fights_alerted": 1,
        "int8_fights_alerted": 0,
        "event_gate": "overridden",
    }


def test_the_event_gate_replays_with_the_policy_it_is_given():
    # an off threshold under the dipped snippet (0.3) keeps INT8's event open: the same scores now pass
    policy = EventPolicy(on_threshold=0.5, off_threshold=0.25)
    report = compare(
        _scores([FIGHT, CALM]), _scores([FIGHT_DIPPED, CALM]), 0.5, snippet_frames=8, policy=policy
    )
    assert report["events"]["policy"]["off_threshold"] == 0.25
    assert event_gate(report, allow_loss=False)["event_gate"] == "passed"


def test_without_held_out_fights_the_event_gate_is_not_checked():
    report = compare(_scores([CALM]), _scores([CALM]), 0.5, snippet_frames=8)
    assert event_gate(report, allow_loss=False)["event_gate"] == "not_checked"
