import json
import math

import numpy as np
import pytest

from training.metrics import (
    equal_error_rate,
    frame_metrics,
    json_safe,
    segments,
    video_metrics,
    youden_threshold,
)


def test_auc_of_perfect_ranking_is_one():
    m = video_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert m["auc_roc"] == 1.0 and m["auc_pr"] == 1.0 and m["eer"] == 0.0


def test_auc_of_reversed_ranking_is_zero():
    assert video_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])["auc_roc"] == 0.0


def test_eer_at_an_exact_roc_point():
    # thresholds 0.8, 0.4, 0.35: (fpr, fnr) = (0, .5), (.5, .5), (.5, 0) -> equal at 0.4
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == (0.5, 0.4)


def test_eer_interpolates_between_roc_points():
    # at 0.9: fpr 1/3, fnr 1; at 0.8: fpr 1/3, fnr 0 -> the segment crosses fnr = fpr at 1/3
    eer, thr = equal_error_rate([0, 0, 0, 1], [0.1, 0.2, 0.9, 0.8])
    assert eer == pytest.approx(1 / 3) and thr == 0.8


def test_optimal_threshold_maximises_youden_j_and_prefers_the_higher_score_on_ties():
    m = video_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])  # J = .5 at 0.8 and at 0.35
    assert m["optimal_threshold"] == pytest.approx(0.6)  # midway from 0.8 down to the next score, 0.4
    assert m["accuracy_at_threshold"] == 0.75 and m["threshold"] == m["optimal_threshold"]


def test_optimal_threshold_separates_a_separable_set_with_the_margin_shared():
    m = video_metrics([0, 1, 0, 1, 1], [0.2, 0.7, 0.3, 0.9, 0.6])
    assert m["optimal_threshold"] == pytest.approx(0.45)  # between the top calm 0.3 and the lowest fight 0.6
    assert m["accuracy_at_threshold"] == 1.0 and m["recall_at_threshold"] == 1.0


def test_optimal_threshold_at_the_lowest_score_has_no_lower_neighbour():
    m = video_metrics([1, 0, 1], [0.2, 0.5, 0.9])  # J: 0.5 at 0.9, 0 at 0.5, 0 at 0.2
    assert m["optimal_threshold"] == pytest.approx(0.7)
    assert youden_threshold([1, 1, 0], [0.2, 0.3, 0.1]) == pytest.approx(0.15)
    assert youden_threshold([0, 1], [0.5, 0.5]) == 0.5  # one distinct score: nothing lower to split with


def test_given_threshold_is_used_for_accuracy():
    m = video_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], threshold=0.85)
    assert m["threshold"] == 0.85 and m["accuracy_at_threshold"] == 0.75
    assert m["precision_at_threshold"] == 1.0 and m["recall_at_threshold"] == 0.5


def test_one_class_gives_nan_with_reason():
    m = video_metrics([1, 1, 1], [0.2, 0.5, 0.9])
    assert math.isnan(m["auc_roc"]) and math.isnan(m["optimal_threshold"])
    assert "all 3 videos are anomalous" in m["reasons"]["auc_roc"]
    assert (m["n_videos"], m["n_positive"]) == (3, 3)


def test_empty_input_gives_nan_with_reason():
    m = video_metrics([], [])
    assert m["n_videos"] == 0 and math.isnan(m["accuracy_at_threshold"])
    assert m["reasons"]["auc_roc"] == "no videos"


@pytest.mark.parametrize(
    "labels, scores, match",
    [([0, 1], [0.1], "differ in length"), ([0, 2], [0.1, 0.2], "0 or 1"), ([0, 1], [0.1, np.nan], "NaN")],
)
def test_bad_video_input_is_refused(labels, scores, match):
    with pytest.raises(ValueError, match=match):
        video_metrics(labels, scores)


def test_segments_are_half_open_runs():
    assert segments([1, 1, 0, 0, 1, 0, 1]) == [(0, 2), (4, 5), (6, 7)]
    assert segments([0, 0]) == [] and segments([]) == []


def test_temporal_iou_of_given_masks():
    # gt frames 2..5, predicted 4..7 -> intersection 2, union 6; second video: gt 0..1, predicted 0..1
    labels = [np.array([0, 0, 1, 1, 1, 1, 0, 0]), np.array([1, 1, 0])]
    scores = [np.array([0, 0, 0, 0, 1, 1, 1, 1.0]), np.array([1, 1, 0.0])]
    assert frame_metrics(labels, scores, threshold=0.5)["temporal_iou"] == pytest.approx(4 / 8)


def test_precision_at_k_defaults_to_number_of_positive_frames():
    labels = [np.array([1, 0, 1, 0, 0])]
    scores = [np.array([0.9, 0.8, 0.1, 0.3, 0.2])]  # top-2 = frames 0, 1 -> one of two anomalous
    m = frame_metrics(labels, scores, threshold=0.5)
    assert m["k"] == 2 and m["precision_at_k"] == 0.5
    assert frame_metrics(labels, scores, threshold=0.5, k=1)["precision_at_k"] == 1.0


def test_frame_auc_pools_frames_and_skips_unannotated_videos():
    labels = [np.array([0, 1]), None, np.array([0, 1])]
    scores = [np.array([0.1, 0.9]), np.array([0.99, 0.0]), np.array([0.2, 0.8])]
    m = frame_metrics(labels, scores, threshold=0.5)
    assert m["frame_auc"] == 1.0 and m["n_annotated_videos"] == 2 and m["n_frames"] == 4


def test_no_annotations_give_nan_with_reasons():
    m = frame_metrics([None], [np.array([0.1, 0.2])], threshold=0.5)
    assert all(math.isnan(m[key]) for key in ("frame_auc", "temporal_iou", "precision_at_k"))
    assert m["reasons"]["frame_auc"] == "no video has frame annotations"


def test_only_normal_frames_give_nan_auc_and_precision_with_reasons():
    m = frame_metrics([np.zeros(4)], [np.array([0.1, 0.2, 0.7, 0.1])], threshold=0.5)
    assert math.isnan(m["frame_auc"]) and "normal" in m["reasons"]["frame_auc"]
    assert math.isnan(m["precision_at_k"]) and "k = 0" in m["reasons"]["precision_at_k"]
    assert math.isnan(m["temporal_iou"]) and "anomalous" in m["reasons"]["temporal_iou"]


def test_frame_length_mismatch_names_the_video():
    with pytest.raises(ValueError, match="video 1 frame"):
        frame_metrics([np.zeros(2), np.zeros(3)], [np.zeros(2), np.zeros(2)], threshold=0.5)


def test_json_safe_replaces_nan_and_numpy_values():
    d = json_safe({"a": float("nan"), "b": np.float32(0.5), "c": [np.inf, 1], "d": np.arange(2)})
    assert d == {"a": None, "b": 0.5, "c": [None, 1], "d": [0, 1]}
    json.dumps(d, allow_nan=False)
    json.dumps(json_safe(video_metrics([1], [0.3])), allow_nan=False)
