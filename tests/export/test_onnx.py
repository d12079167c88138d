"""torch -> ONNX: two files, dynamic batch (and window for the head), ONNX Runtime equal to torch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export.onnx import OPSET, export_onnx, onnx_session
from tests.export import helpers

TOL = 1e-4  # absolute, on outputs of scale ~1 (features ~0.1, scores in (0, 1))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = helpers.untrained_model(helpers.tiny_config())
    snippets = (
        np.random.default_rng(0)
        .uniform(-1, 1, (3, 3, helpers.S, helpers.SIZE, helpers.SIZE))
        .astype(np.float32)
    )
    with torch.no_grad():
        feats = model.backbone(torch.from_numpy(snippets)).numpy()
    return model, export_onnx(
        model, tmp_path_factory.mktemp("onnx"), snippets=snippets, windows=[feats[None]]
    )


def test_both_files_pass_the_onnx_checker_at_opset_17(exported):
    _, result = exported
    for path in (result.backbone, result.head):
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == OPSET


def test_backbone_in_onnx_runtime_equals_torch_for_any_batch(exported):
    model, result = exported
    session = onnx_session(result.backbone)
    for batch in (1, 5):
        x = (
            np.random.default_rng(batch)
            .uniform(-1, 1, (batch, 3, helpers.S, helpers.SIZE, helpers.SIZE))
            .astype(np.float32)
        )
        (got,) = session.run(["features"], {"snippets": x})
        with torch.no_grad():
            np.testing.assert_allclose(got, model.backbone(torch.from_numpy(x)).numpy(), atol=TOL)


def test_head_in_onnx_runtime_equals_torch_for_any_window(exported):
    model, result = exported
    session = onnx_session(result.head)
    assert [o.name for o in session.get_outputs()] == ["snippet_scores", "attention", "video_score"]
    for batch, k in ((1, 1), (2, 3), (1, helpers.K)):
        x = np.random.default_rng(k).normal(0, 0.2, (batch, k, result.feature_dim)).astype(np.float32)
        got = session.run(None, {"features": x})
        with torch.no_grad():
            ref = model.head(torch.from_numpy(x))
        for g, r in zip(got, (ref.snippet_scores, ref.attention_weights, ref.video_score), strict=True):
            np.testing.assert_allclose(g, r.numpy(), atol=TOL)


def test_the_export_reports_its_differences_within_the_tolerance(exported):
    _, result = exported
    assert set(result.max_abs_diff) == {"features", "snippet_scores", "attention", "video_score"}
    assert all(result.max_abs_diff[k] <= result.tolerance[k] for k in result.max_abs_diff)
