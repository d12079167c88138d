"""The two exported parts (backbone, head) run in ONNX Runtime with the numbers of torch."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training.model.detector import HeadOutput, I3D_MTN_AnomalyDetector

S = 8


@pytest.fixture(scope="module", params=[False, True], ids=["raw", "standardized"])
def model(request) -> I3D_MTN_AnomalyDetector:
    torch.manual_seed(0)
    model = I3D_MTN_AnomalyDetector(
        S, width_multiplier=1 / 16, mtn_hidden_dim=16, mil_attention_dim=8, standardize_features=request.param
    ).eval()
    if request.param:  # statistics far from the identity: the exported head must carry them
        model.head.set_feature_statistics(torch.rand(40, model.feature_dim) * 0.2 + 0.5)
    # Non-trivial running statistics and an active non-local branch, as after training.
    with torch.no_grad():
        model.backbone(torch.randn(1, 3, S, 32, 32))
        for module in model.head.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    return model


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_backbone_exports_with_a_dynamic_batch(model, tmp_path):
    path = tmp_path / "backbone.onnx"
    torch.onnx.export(
        model.backbone,
        (torch.randn(1, 3, S, 32, 32),),
        path,
        input_names=["snippets"],
        output_names=["features"],
        dynamic_axes={"snippets": {0: "batch"}, "features": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    session = _session(path)
    for batch in (1, 3):
        snippets = torch.randn(batch, 3, S, 32, 32)
        (features,) = session.run(None, {"snippets": snippets.numpy()})
        with torch.no_grad():
            expected = model.backbone(snippets).numpy()
        assert features.shape == (batch, model.feature_dim)
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)


def test_head_exports_with_dynamic_batch_and_window(model, tmp_path):
    path = tmp_path / "head.onnx"
    names = list(HeadOutput._fields)
    torch.onnx.export(
        model.head,
        (torch.randn(2, 4, model.feature_dim),),
        path,
        input_names=["features"],
        output_names=names,
        dynamic_axes={
            "features": {0: "batch", 1: "window"},
            "snippet_scores": {0: "batch", 1: "window"},
            "attention_weights": {0: "batch", 1: "window"},
            "video_score": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    session = _session(path)
    assert [o.name for o in session.get_outputs()] == names
    for batch, window in ((2, 4), (1, 1), (3, 7)):
        features = torch.randn(batch, window, model.feature_dim)
        outputs = dict(zip(names, session.run(None, {"features": features.numpy()}), strict=True))
        with torch.no_grad():
            expected = model.head(features)._asdict()
        for name in names:
            np.testing.assert_allclose(
                outputs[name], expected[name].numpy(), rtol=1e-4, atol=1e-4, err_msg=name
            )


def test_causal_head_runs_in_openvino_for_any_window(model, tmp_path):
    ov = pytest.importorskip("openvino")
    path = tmp_path / "head.onnx"
    names = list(HeadOutput._fields)
    torch.onnx.export(
        model.head,
        (torch.randn(1, 4, model.feature_dim),),
        path,
        input_names=["features"],
        output_names=names,
        dynamic_axes={"features": {0: "batch", 1: "window"}, "snippet_scores": {0: "batch", 1: "window"}},
        opset_version=17,
        dynamo=False,
    )
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for window in (1, 5, 9):
        features = torch.randn(2, window, model.feature_dim)
        scores = compiled({"features": features.numpy()})[compiled.output("snippet_scores")]
        with torch.no_grad():
            expected = model.head(features).snippet_scores.numpy()
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
