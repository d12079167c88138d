"""One streaming rule: the evaluation, the trainer's validation, the export's scoring and the device's scorer
give every snippet of a video the same score: the head over the last K features, the newest snippet's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_runtime.backends import create_backend
from edge_runtime.scoring import StreamingScorer, backbone_features, backend_head, streaming_scores
from export.onnx import export_onnx
from export.scoring import score_with_backends
from tests.export.helpers import K, S, _contrast_video
from training.checkpoint import load_checkpoint
from training.configs import to_preprocess_config
from training.data import iter_snippet_batches, scan_videos
from training.evaluate import score_video, torch_head, video_features


@pytest.fixture(scope="module")
def parts(untrained_ckpt, tmp_path_factory):
    model, config, _ = load_checkpoint(untrained_ckpt)
    model.eval()
    root = tmp_path_factory.mktemp("rule")
    (root / "test" / "anomaly").mkdir(parents=True)
    _contrast_video(
        root / "test" / "anomaly" / "long.mp4", True, np.random.default_rng(0), frames=(K + 3) * S - 3
    )
    record = scan_videos(root / "test")[0][0]
    pre = to_preprocess_config(config)
    snippets = np.concatenate(list(iter_snippet_batches(record.path, S, pre, int(config["frame_stride"]))))
    assert len(snippets) > K  # the ring fills, then slides
    feats = video_features(model.backbone, record.path, config, torch.device("cpu"))
    onnx = export_onnx(model, root / "onnx", snippets=snippets, windows=[feats[None, :2], feats[None, :K]])
    backends = create_backend("onnxruntime", onnx.backbone), create_backend("onnxruntime", onnx.head)
    return model, config, record, pre, snippets, feats, backends


def _by_definition(head, feats: np.ndarray) -> np.ndarray:
    """Snippet i: the head over features max(0, i-K+1) .. i, the newest snippet's score, one call each."""
    return np.array([head(feats[None, max(0, i - K + 1) : i + 1])[0, -1] for i in range(len(feats))])


def test_torch_callers_give_the_rules_scores(parts):
    model, config, record, _, _, feats, _ = parts
    expected = _by_definition(torch_head(model.head), feats)
    evaluated = score_video(model, record, config, torch.device("cpu")).snippet_scores  # training.evaluate
    np.testing.assert_allclose(evaluated, expected, rtol=1e-5, atol=1e-6)
    # the trainer's validation: the same rule on a batch of items, with the causal head's one call per batch
    items = np.stack([feats[:K], feats[-K:]])  # (B, K, D)
    validated = streaming_scores(torch_head(model.head), items, K, causal=True)
    np.testing.assert_allclose(validated[0], expected[:K], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        validated[1], _by_definition(torch_head(model.head), feats[-K:]), rtol=1e-5, atol=1e-6
    )


def test_backend_callers_give_the_rules_scores_and_match_torch(parts):
    model, config, record, pre, snippets, feats, (backbone, head) = parts
    ort_feats = backbone_features(backbone, snippets, max_batch=1)
    expected = _by_definition(backend_head(head), ort_feats)
    scored = score_with_backends(
        {"fp32": (backbone, [head])}, [record], preprocess=pre, snippet_length=S,
        frame_stride=int(config["frame_stride"]), window=K,
    )["fp32"][0]  # fmt: skip
    exported = scored.snippet_scores[0]
    # the file's 3-frame tail is left out, as the device playing it leaves it: every snippet reaches the event
    # replay
    assert scored.complete == [len(snippets)]
    scorer = StreamingScorer(backbone, head, ["cam"], K)
    device = np.array([scorer.score({"cam": snippet})["cam"] for snippet in snippets])
    np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(device, expected, rtol=1e-5, atol=1e-6)
    # the device's numbers are the workstation's (ONNX Runtime vs torch)
    torch_scores = _by_definition(torch_head(model.head), feats)
    np.testing.assert_allclose(device, torch_scores, rtol=1e-4, atol=1e-5)
    assert np.ptp(device) > 0  # the scores differ between snippets: the comparison can fail


def test_a_head_of_the_wrong_shape_is_named():
    from edge_runtime.scoring import ScoringError

    with pytest.raises(ScoringError, match="expected \\(n, K'\\)"):
        streaming_scores(lambda w: w.sum(-1)[:, :1], np.ones((5, 2), np.float32), 3)
    with pytest.raises(ScoringError, match="features must have shape"):
        streaming_scores(lambda w: w.sum(-1), np.ones((0, 2), np.float32), 3)


@pytest.mark.parametrize("crops", [1, 3])
def test_every_caller_gives_the_same_fused_scores_with_a_motion_forest(
    forest_run, contrast_root, tmp_path, crops
):
    """With the run's motion forest (scoring the centre crop, or the max over three crop positions): evaluate,
    the trainer's validation (causal, one call), the export's scoring and the device's scorer all give each
    snippet the fused head's score of its window."""
    import dataclasses

    from edge_runtime.motion_fusion import crops_motion_stats, fused_head, network_input
    from edge_runtime.motion_stats import STATS_SIZE
    from training.motion_forest import load_checkpoint_fusion

    model, config, ckpt = load_checkpoint(forest_run / "best.pt")
    model.eval()
    fusion = dataclasses.replace(load_checkpoint_fusion(forest_run / "best.pt", ckpt), crops=crops)
    record = scan_videos(contrast_root / "test")[0][-1]
    pre, k = to_preprocess_config(config), int(config["num_snippets"])
    stride = int(config["frame_stride"])
    snippets = np.concatenate(list(iter_snippet_batches(record.path, S, pre, stride, 8, crops)))
    assert snippets.shape[1] == 2 * crops  # the centre crop's flow, then the left and right crops'
    rows = video_features(model.backbone, record.path, config, torch.device("cpu"), fusion=fusion)
    stats = crops_motion_stats(snippets, crops)
    np.testing.assert_array_equal(rows[:, -crops * STATS_SIZE :], stats)  # [feature | stats per crop]
    head = fused_head(torch_head(model.head), fusion)
    expected = np.array([head(rows[None, max(0, i - k + 1) : i + 1])[0, -1] for i in range(len(rows))])
    evaluated = score_video(model, record, config, torch.device("cpu"), fusion=fusion).snippet_scores
    np.testing.assert_allclose(evaluated, expected, rtol=1e-6, atol=1e-6)
    validated = streaming_scores(head, rows[None, :k], k, causal=True)[0]  # the trainer's one call per item
    np.testing.assert_allclose(validated, expected[:k], rtol=1e-6, atol=1e-6)
    feats = rows[:, : -crops * STATS_SIZE]
    onnx = export_onnx(
        model,
        tmp_path / "onnx",
        snippets=network_input(snippets, fusion),
        windows=[feats[None, :2], feats[None, :k]],
    )
    backbone, ort_head = (
        create_backend("onnxruntime", onnx.backbone),
        create_backend("onnxruntime", onnx.head),
    )
    exported = score_with_backends(
        {"fp32": (backbone, [ort_head])}, [record], preprocess=pre, snippet_length=S,
        frame_stride=stride, window=k, fusion=fusion,
    )["fp32"][0].snippet_scores[0]  # fmt: skip
    scorer = StreamingScorer(backbone, ort_head, ["cam"], k, motion=fusion)
    device = np.array([scorer.score({"cam": snippet})["cam"] for snippet in snippets])
    np.testing.assert_allclose(exported, device, rtol=1e-6, atol=1e-6)  # the same backends: the same numbers
    np.testing.assert_allclose(device, expected, rtol=1e-4, atol=1e-5)  # ONNX Runtime vs torch
    assert np.ptp(device) > 0
    if crops == 3:  # the side crops see other flow than the centre
        assert not np.array_equal(stats[:, :STATS_SIZE], stats[:, STATS_SIZE : 2 * STATS_SIZE])
