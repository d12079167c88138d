"""The detector: backbone per snippet, head over snippets, the seed's output contract, and the config."""

import pytest
import torch

from training.model import MODEL_DEFAULTS, build_model, model_config
from training.model.detector import AnomalyHead, HeadOutput, I3D_MTN_AnomalyDetector
from training.model.i3d import InceptionI3d

S = 8
TINY = {"width_multiplier": 1 / 16, "mtn_hidden_dim": 16, "mil_attention_dim": 8}


@pytest.fixture(scope="module")
def model() -> I3D_MTN_AnomalyDetector:
    torch.manual_seed(0)
    return I3D_MTN_AnomalyDetector(S, **TINY).eval()


@pytest.mark.parametrize("k", [1, 2, 4])
def test_outputs_have_the_contract_shapes_and_ranges(model, k):
    with torch.no_grad():
        out = model(torch.randn(2, 3, k * S, 32, 32))
    assert out["video_anomaly_score"].shape == (2,)
    assert out["frame_anomaly_scores"].shape == (2, k * S)
    assert out["attention_weights"].shape == (2, k)
    assert out["snippet_scores"].shape == (2, k)
    for name in ("video_anomaly_score", "frame_anomaly_scores", "snippet_scores", "attention_weights"):
        assert ((out[name] >= 0) & (out[name] <= 1)).all(), name
    torch.testing.assert_close(out["attention_weights"].sum(dim=1), torch.ones(2))


def test_frame_scores_repeat_each_snippet_score_over_its_frames(model):
    with torch.no_grad():
        out = model(torch.randn(1, 3, 3 * S, 32, 32))
    frames = out["frame_anomaly_scores"].reshape(1, 3, S)  # (B, K, S)
    torch.testing.assert_close(frames, out["snippet_scores"].unsqueeze(-1).expand(1, 3, S))


def test_video_score_is_the_attention_weighted_snippet_score(model):
    with torch.no_grad():
        out = model(torch.randn(2, 3, 4 * S, 32, 32))
    expected = (out["snippet_scores"] * out["attention_weights"]).sum(dim=1)
    torch.testing.assert_close(out["video_anomaly_score"], expected)


def test_head_of_backbone_per_snippet_equals_the_whole_forward(model):
    clips = torch.randn(2, 3, 3 * S, 32, 32)
    with torch.no_grad():
        whole = model(clips)
        features = torch.stack(
            [model.backbone(clips[:, :, i * S : (i + 1) * S]) for i in range(3)], dim=1
        )  # (B, K, D), one backbone call per snippet as on the device
        parts = model.head(features)
    assert isinstance(parts, HeadOutput)
    torch.testing.assert_close(parts.video_score, whole["video_anomaly_score"])
    torch.testing.assert_close(parts.snippet_scores, whole["snippet_scores"])
    torch.testing.assert_close(parts.attention_weights, whole["attention_weights"])


def test_videos_in_a_batch_are_scored_independently(model):
    clips = torch.randn(3, 3, 2 * S, 32, 32)
    with torch.no_grad():
        together = model(clips)["snippet_scores"]
        alone = model(clips[1:2])["snippet_scores"]
    torch.testing.assert_close(together[1:2], alone)


@pytest.mark.parametrize("frames", [20, 7, 0])
def test_a_frame_count_not_a_multiple_of_the_snippet_is_refused_clearly(frames):
    model = I3D_MTN_AnomalyDetector(16, **TINY)
    with pytest.raises(ValueError, match=f"^cannot score {frames} frames: the snippet length is 16$"):
        model(torch.randn(1, 3, frames, 32, 32))


def test_clips_of_the_wrong_rank_are_refused(model):
    with pytest.raises(ValueError, match=r"expected clips of shape \(B, 3, T, H, W\), got \(3, 8, 32, 32\)"):
        model(torch.randn(3, 8, 32, 32))


def test_a_prebuilt_backbone_is_used_as_given():
    backbone = InceptionI3d(width_multiplier=1 / 8)
    model = I3D_MTN_AnomalyDetector(S, backbone, mtn_hidden_dim=16, mil_attention_dim=8)
    assert model.backbone is backbone
    assert model.width_multiplier == 1 / 8
    assert model.head.feature_dim == backbone.feature_dim


def test_a_width_that_contradicts_the_prebuilt_backbone_is_refused():
    with pytest.raises(ValueError, match="width_multiplier=0.25 but the given i3d_backbone has width 0.125"):
        I3D_MTN_AnomalyDetector(S, InceptionI3d(width_multiplier=1 / 8), width_multiplier=0.25)


def test_head_works_for_any_number_of_snippets():
    head = AnomalyHead(32, hidden_dim=8, attention_dim=4).eval()
    for k in (1, 2, 5, 16):
        with torch.no_grad():
            out = head(torch.randn(2, k, 32))
        assert out.snippet_scores.shape == out.attention_weights.shape == (2, k)
        assert out.video_score.shape == (2,)


def test_build_model_reads_the_flat_config_keys():
    model = build_model({"clip_length": S, "mtn_num_scales": 2, "dropout": 0.1, "frame_stride": 2, **TINY})
    assert model.clip_length == S
    assert model.backbone.width_multiplier == 1 / 16
    assert model.head.mtn.dilations == (1, 2)
    assert model.head.dropout.p == 0.1
    assert model.frame_stride == 2


def test_model_config_rebuilds_the_same_architecture():
    config = {"clip_length": S, "mtn_num_scales": 2, "dropout": 0.2, **TINY}
    model = build_model(config)
    rebuilt = build_model(model_config(model))
    assert model_config(rebuilt) == model_config(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    rebuilt.load_state_dict(model.state_dict())  # same names and shapes


def test_build_model_fills_missing_keys_with_defaults():
    config = model_config(build_model({"width_multiplier": 1 / 16}))
    assert config == {**MODEL_DEFAULTS, "width_multiplier": 1 / 16, "input_modality": "rgb"}


def test_a_flow_model_takes_two_input_channels_and_rebuilds_as_flow():
    model = build_model({"input_modality": "flow", **TINY})
    assert model.backbone.in_channels == 2
    assert model_config(model)["input_modality"] == "flow"
    assert build_model(model_config(model)).backbone.in_channels == 2


@pytest.mark.parametrize(
    "key, value",
    [("clip_length", "16"), ("mtn_num_scales", 2.5), ("width_multiplier", None), ("standardize_features", 1)],
)
def test_build_model_names_a_badly_typed_key(key, value):
    with pytest.raises(ValueError, match=f"model config '{key}' must be"):
        build_model({**TINY, key: value})


def _standardized_head(features: torch.Tensor) -> AnomalyHead:
    torch.manual_seed(0)
    head = AnomalyHead(features.shape[1], hidden_dim=16, attention_dim=8, standardize=True).eval()
    head.set_feature_statistics(features)
    return head


def test_a_standardizing_head_is_the_plain_head_on_standardized_features():
    torch.manual_seed(1)
    train = torch.randn(50, 12) * torch.linspace(0.01, 3, 12) + torch.linspace(-2, 5, 12)
    head = _standardized_head(train)
    plain = AnomalyHead(12, hidden_dim=16, attention_dim=8).eval()
    plain.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("feature_")})
    mean, std = train.double().mean(0), train.double().std(0, unbiased=False)
    torch.testing.assert_close(head.feature_mean, mean.float())
    torch.testing.assert_close(head.feature_scale, (1 / std).float())
    x = torch.randn(3, 4, 12) * 2 + 1
    with torch.no_grad():
        torch.testing.assert_close(head(x).snippet_scores, plain(((x - mean) / std).float()).snippet_scores)


def test_a_feature_that_never_varies_keeps_a_scale_of_one():
    train = torch.randn(20, 6)
    train[:, 2] = 0.75
    head = _standardized_head(train)
    assert head.feature_scale[2] == 1.0 and head.feature_mean[2] == 0.75
    assert torch.isfinite(head(torch.randn(1, 2, 6)).snippet_scores).all()


def test_feature_statistics_are_refused_without_standardize_or_of_the_wrong_shape():
    with pytest.raises(ValueError, match="standardize_features is off"):
        AnomalyHead(6, hidden_dim=16, attention_dim=8).set_feature_statistics(torch.randn(5, 6))
    head = AnomalyHead(6, hidden_dim=16, attention_dim=8, standardize=True)
    for bad in (torch.randn(5, 7), torch.randn(1, 6), torch.randn(5)):
        with pytest.raises(ValueError, match="feature statistics need"):
            head.set_feature_statistics(bad)


def test_the_standardizing_head_rebuilds_from_its_config_with_its_statistics():
    model = build_model({**TINY, "clip_length": S, "standardize_features": True})
    model.head.set_feature_statistics(torch.randn(10, model.feature_dim) + 3)
    config = model_config(model)
    assert config["standardize_features"] is True
    rebuilt = build_model(config)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.head.feature_mean, model.head.feature_mean)
    assert "head.feature_scale" not in build_model({**TINY, "clip_length": S}).state_dict()
