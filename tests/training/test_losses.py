import math

import pytest
import torch

from training.configs import create_experiment_config, get_config
from training.losses import AnomalyLoss, LossParts


def make_loss(**overrides) -> AnomalyLoss:
    return AnomalyLoss(create_experiment_config(get_config("debug"), **overrides))


def out(snippets, video, frames=None):
    d = {"snippet_scores": torch.tensor(snippets), "video_anomaly_score": torch.tensor(video)}
    if frames is not None:
        d["frame_anomaly_scores"] = torch.tensor(frames)
    return d


def bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_video_bce_matches_hand_value():
    parts = make_loss()(out([[0.5, 0.5], [0.5, 0.5]], [0.2, 0.7]), torch.tensor([0.0, 1.0]))
    assert float(parts.video_bce) == pytest.approx((bce(0.2, 0) + bce(0.7, 1)) / 2, rel=1e-5)


def test_topk_mil_uses_mean_of_topk_snippets():
    loss = make_loss(topk_ratio=0.5)  # K = 4 -> k = 2
    parts = loss(out([[0.9, 0.1, 0.7, 0.2], [0.3, 0.1, 0.2, 0.1]], [0.5, 0.5]), torch.tensor([1.0, 0.0]))
    expected = (bce((0.9 + 0.7) / 2, 1) + bce((0.3 + 0.2) / 2, 0)) / 2
    assert float(parts.topk_mil) == pytest.approx(expected, rel=1e-5)


def test_snippet_bce_scores_every_snippet_against_the_video_label():
    scores = [[0.9, 0.1, 0.7], [0.3, 0.2, 0.6]]
    loss = make_loss(snippet_loss_weight=0.5, mil_loss_weight=0.0)
    parts = loss(out(scores, [0.5, 0.5]), torch.tensor([1.0, 0.0]))
    expected = (sum(bce(p, 1) for p in scores[0]) + sum(bce(p, 0) for p in scores[1])) / 6
    assert float(parts.snippet_bce) == pytest.approx(expected, rel=1e-5)
    assert float(parts.anomaly) == pytest.approx(float(parts.video_bce) + 0.5 * expected, rel=1e-5)


def test_snippet_bce_is_off_by_default():
    parts = make_loss()(out([[0.9, 0.1], [0.3, 0.2]], [0.5, 0.5]), torch.tensor([1.0, 0.0]))
    assert float(parts.snippet_bce) > 0
    assert float(parts.anomaly) == pytest.approx(float(parts.video_bce + parts.topk_mil), rel=1e-6)


def test_smoothness_and_sparsity_apply_to_anomalous_videos_only():
    snippets = [[0.0, 1.0, 0.0, 0.5], [1.0, 0.0, 1.0, 0.0]]
    parts = make_loss()(out(snippets, [0.5, 0.5]), torch.tensor([1.0, 0.0]))
    assert float(parts.smoothness) == pytest.approx(1 + 1 + 0.25)
    assert float(parts.sparsity) == pytest.approx(1.5)


def test_batch_without_anomalous_videos_has_zero_smoothness_and_sparsity():
    parts = make_loss()(out([[0.0, 1.0], [1.0, 0.0]], [0.5, 0.5]), torch.tensor([0.0, 0.0]))
    assert float(parts.smoothness) == 0.0 and float(parts.sparsity) == 0.0


def test_total_is_weighted_sum_of_parts():
    loss = make_loss(
        loss_anomaly_weight=2.0, loss_smoothness_weight=0.1, loss_sparsity_weight=0.3, mil_loss_weight=0.5
    )
    parts = loss(out([[0.1, 0.8, 0.3], [0.2, 0.4, 0.1]], [0.6, 0.3]), torch.tensor([1.0, 0.0]))
    assert float(parts.anomaly) == pytest.approx(float(parts.video_bce + 0.5 * parts.topk_mil), rel=1e-6)
    expected = 2.0 * parts.anomaly + 0.1 * parts.smoothness + 0.3 * parts.sparsity
    assert float(parts.total) == pytest.approx(float(expected), rel=1e-6)


def test_video_loss_weight_scales_only_the_video_term():
    o = out([[0.1, 0.8, 0.3], [0.2, 0.4, 0.1]], [0.6, 0.3])
    labels = torch.tensor([1.0, 0.0])
    full, off = make_loss()(o, labels), make_loss(video_loss_weight=0.0)(o, labels)
    assert float(off.video_bce) > 0  # still computed and logged
    assert float(full.video_bce) == pytest.approx(float(off.video_bce))
    assert float(off.anomaly) == pytest.approx(float(full.anomaly - full.video_bce), rel=1e-6)


def test_frame_loss_ignores_videos_without_annotations():
    loss = make_loss(frame_loss_weight=1.0)
    o = out([[0.5, 0.5], [0.5, 0.5]], [0.5, 0.5], frames=[[0.9, 0.1, 0.8], [0.3, 0.3, 0.3]])
    mask = torch.tensor([True, False])
    a = loss(o, torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]), mask)
    b = loss(o, torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]), mask)
    expected = (bce(0.9, 1) + bce(0.1, 0) + bce(0.8, 1)) / 3
    assert float(a.frame_bce) == pytest.approx(expected, rel=1e-5)
    assert float(a.total) == pytest.approx(float(b.total))


def test_frame_loss_is_zero_when_no_video_is_annotated():
    o = out([[0.5, 0.5]], [0.5], frames=[[0.9, 0.1]])
    parts = make_loss(frame_loss_weight=1.0)(o, torch.tensor([1.0]), torch.zeros(1, 2), torch.tensor([False]))
    assert float(parts.frame_bce) == 0.0


def test_saturated_wrong_scores_give_finite_loss_and_gradients():
    snippets = torch.tensor([[1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    video = torch.tensor([1.0, 0.0], requires_grad=True)
    parts = make_loss()({"snippet_scores": snippets, "video_anomaly_score": video}, torch.tensor([0.0, 1.0]))
    total = float(parts.total.detach())
    assert math.isfinite(total) and total > 10
    parts.total.backward()
    assert torch.isfinite(snippets.grad).all() and torch.isfinite(video.grad).all()
    assert (video.grad != 0).all()


def test_gradient_reaches_every_snippet_of_anomalous_video():
    snippets = torch.full((1, 4), 0.3, requires_grad=True)
    video = torch.tensor([0.4], requires_grad=True)
    make_loss()(
        {"snippet_scores": snippets, "video_anomaly_score": video}, torch.tensor([1.0])
    ).total.backward()
    assert (snippets.grad != 0).all()


def test_works_under_autocast():
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        o = out([[0.2, 0.9]], [0.7])
        o = {k: v.to(torch.bfloat16) for k, v in o.items()}
        parts = make_loss()(o, torch.tensor([1.0]))
    assert parts.total.dtype == torch.float32 and math.isfinite(float(parts.total))


def test_as_dict_gives_floats_for_every_part():
    parts = make_loss()(out([[0.2, 0.9]], [0.7]), torch.tensor([1.0]))
    d = parts.as_dict()
    assert isinstance(parts, LossParts)
    assert set(d) == {
        "total",
        "anomaly",
        "video_bce",
        "topk_mil",
        "snippet_bce",
        "frame_bce",
        "smoothness",
        "sparsity",
    }
    assert all(isinstance(v, float) for v in d.values())


@pytest.mark.parametrize(
    "o, labels, match",
    [
        (out([[0.5, 0.5]], [0.5, 0.5]), [1.0], "video_anomaly_score"),
        (out([[0.5, 0.5]], [0.5]), [1.0, 0.0], "labels"),
        (out([0.5, 0.5], [0.5]), [1.0], "snippet_scores"),
    ],
)
def test_shape_mismatch_names_the_tensor(o, labels, match):
    with pytest.raises(ValueError, match=match):
        make_loss()(o, torch.tensor(labels))


def test_frame_labels_without_frame_scores_is_an_error():
    with pytest.raises(ValueError, match="frame_anomaly_scores"):
        make_loss(frame_loss_weight=1.0)(out([[0.5]], [0.5]), torch.tensor([1.0]), torch.zeros(1, 3))
