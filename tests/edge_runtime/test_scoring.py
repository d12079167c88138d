"""Streaming scoring equals whole-clip scoring where windows align; snippets of several cameras share calls."""

import json
import time

import numpy as np
import pytest

from edge_runtime.backends import Backend, create_backend
from edge_runtime.preprocess import PreprocessConfig, preprocess_clip
from edge_runtime.scoring import ScoringError, StreamingScorer, score_clip
from edge_runtime.snippets import snippet_frame_indices
from edge_runtime.window import SnippetWindow
from tests.edge_runtime.tiny_onnx import write_backbone, write_head

CFG = PreprocessConfig(crop_size=(8, 8), resize_short_side=8)
S, K, STRIDE = 4, 3, 2


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scoring_models")
    return write_backbone(folder / "backbone.onnx"), write_head(folder / "head.onnx")


@pytest.fixture(params=["onnxruntime", "openvino"])
def nets(request, model_paths):
    return tuple(create_backend(request.param, p, device="CPU") for p in model_paths)


def _frames(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 10, 14, 3), dtype=np.uint8)


def _clip_snippets(frames, count):
    return np.stack(
        [preprocess_clip(frames[snippet_frame_indices(i, len(frames), S, STRIDE)], CFG) for i in range(count)]
    )


def _stream_scores(scorer, frames, camera="cam0"):
    """Feed frames one by one; the score after each completed snippet."""
    window, scores = SnippetWindow(CFG, S, STRIDE), []
    for t, frame in enumerate(frames):
        snippet = window.push(frame, float(t))
        if snippet is not None:
            scores.append(scorer.score({camera: snippet.array})[camera])
    return scores


def test_streaming_equals_whole_clip_for_every_prefix(nets):
    backbone, head = nets
    frames = _frames(K * S * STRIDE, seed=0)
    streamed = _stream_scores(StreamingScorer(backbone, head, ["cam0"], K), frames)
    snippets = _clip_snippets(frames, K)
    assert len(streamed) == K
    for k in range(1, K + 1):
        assert streamed[k - 1] == pytest.approx(score_clip(backbone, head, snippets[:k])[-1], abs=1e-4)
    assert streamed[-1] == pytest.approx(score_clip(backbone, head, snippets)[-1], abs=1e-4)


def test_newest_score_depends_on_the_previous_snippets(nets):
    backbone, head = nets
    frames = _frames(K * S * STRIDE, seed=1)
    snippets = _clip_snippets(frames, K)
    alone = score_clip(backbone, head, snippets[-1:])[-1]
    assert abs(_stream_scores(StreamingScorer(backbone, head, ["cam0"], K), frames)[-1] - alone) > 1e-4


def test_full_ring_scores_the_last_k_snippets(nets):
    backbone, head = nets
    total = K + 2
    frames = _frames(total * S * STRIDE, seed=2)
    streamed = _stream_scores(StreamingScorer(backbone, head, ["cam0"], K), frames)
    snippets = _clip_snippets(frames, total)
    for k in range(K, total + 1):
        assert streamed[k - 1] == pytest.approx(score_clip(backbone, head, snippets[k - K : k])[-1], abs=1e-4)


def test_cameras_ready_together_share_one_backbone_and_one_head_call(nets):
    backbone, head = nets
    streams = {"a": _frames(K * S * STRIDE, 3), "b": _frames(K * S * STRIDE, 4)}
    together = StreamingScorer(backbone, head, list(streams), K)
    windows = {c: SnippetWindow(CFG, S, STRIDE) for c in streams}
    joint = {c: [] for c in streams}
    for t in range(K * S * STRIDE):
        ready = {c: s.array for c in streams if (s := windows[c].push(streams[c][t], float(t))) is not None}
        if ready:
            calls = (together.backbone_calls, together.head_calls)
            for c, v in together.score(ready).items():
                joint[c].append(v)
            assert (together.backbone_calls, together.head_calls) == (calls[0] + 1, calls[1] + 1)
    for c, frames in streams.items():
        alone = _stream_scores(StreamingScorer(backbone, head, [c], K), frames, camera=c)
        np.testing.assert_allclose(joint[c], alone, atol=1e-5)


def test_rings_of_different_lengths_get_separate_head_calls(nets):
    backbone, head = nets
    snippets = _clip_snippets(_frames(2 * S * STRIDE, 5), 2)
    scorer = StreamingScorer(backbone, head, ["a", "b"], K)
    scorer.score({"a": snippets[0]})
    scores = scorer.score({"a": snippets[1], "b": snippets[1]})
    assert scorer.backbone_calls == 2 and scorer.head_calls == 3
    assert scores["a"] == pytest.approx(score_clip(backbone, head, snippets)[-1], abs=1e-4)
    assert scores["b"] == pytest.approx(score_clip(backbone, head, snippets[1:])[-1], abs=1e-4)


def test_max_batch_splits_the_backbone_call(nets):
    backbone, head = nets
    snippets = _clip_snippets(_frames(3 * S * STRIDE, 6), 3)
    cams = ["a", "b", "c"]
    split = StreamingScorer(backbone, head, cams, K, max_batch=2)
    whole = StreamingScorer(backbone, head, cams, K)
    got = split.score(dict(zip(cams, snippets, strict=True)))
    want = whole.score(dict(zip(cams, snippets, strict=True)))
    assert split.backbone_calls == 2 and whole.backbone_calls == 1
    assert got == pytest.approx(want, abs=1e-5)
    clip = score_clip(backbone, head, snippets, max_batch=2)
    np.testing.assert_allclose(clip, score_clip(backbone, head, snippets), atol=1e-5)


def test_latency_stats_cover_each_call_and_are_json(nets):
    backbone, head = nets
    scorer = StreamingScorer(backbone, head, ["cam0"], K, latency_window=2)
    assert scorer.stats()["latency_ms_p50"] is None
    for snippet in _clip_snippets(_frames(3 * S * STRIDE, 7), 3):
        scorer.score({"cam0": snippet})
    lat = scorer.latency()
    assert lat.count == 2 and 0 < lat.p50_ms <= lat.p95_ms
    stats = json.loads(json.dumps(scorer.stats(), allow_nan=False))
    assert stats["snippets_scored"] == 3 and stats["backbone_calls"] == 3


class _Delayed(Backend):
    """A loaded real backend whose every call takes ``delay_s`` longer: a slow model, without a big test model."""

    kind = "delayed"

    def __init__(self, inner: Backend, delay_s: float) -> None:
        self._inner, self._delay_s, self._name = inner, delay_s, inner.name

    @classmethod
    def from_model_file(cls, model_path, fmt="onnx", *, device=None, options=None):
        raise NotImplementedError("_Delayed wraps an already loaded backend")

    @property
    def input_names(self):
        return self._inner.input_names

    @property
    def output_names(self):
        return self._inner.output_names

    def _run(self, inputs):
        time.sleep(self._delay_s)
        return self._inner.infer(inputs)


@pytest.mark.parametrize("slow", ["backbone", "head"])
def test_seconds_in_the_backbone_and_the_head_are_counted_apart(nets, slow):
    backbone, head = nets
    delay = 0.05
    if slow == "backbone":
        backbone = _Delayed(backbone, delay)
    else:
        head = _Delayed(head, delay)
    scorer = StreamingScorer(backbone, head, ["cam0"], K)
    for snippet in _clip_snippets(_frames(3 * S * STRIDE, 5), 3):
        scorer.score({"cam0": snippet})
    seconds = {"backbone": scorer.backbone_s, "head": scorer.head_s}
    fast = "head" if slow == "backbone" else "backbone"
    assert seconds[slow] >= 3 * delay  # three calls, each at least the delay
    assert 0 < seconds[fast] < 3 * delay  # the slow part's time is not counted here
    stats = json.loads(json.dumps(scorer.stats(), allow_nan=False))
    assert stats[f"{slow}_s"] == pytest.approx(seconds[slow], abs=1e-4)


def test_seconds_in_the_backbone_and_the_head_fit_in_the_scoring_calls(nets):
    backbone, head = nets
    scorer = StreamingScorer(backbone, head, ["cam0", "cam1"], K)
    snippets = _clip_snippets(_frames(4 * S * STRIDE, 6), 4)
    started = time.perf_counter()
    scorer.score({"cam0": snippets[0]})
    scorer.score({"cam0": snippets[1], "cam1": snippets[2]})  # rings of 2 and 1: two head calls
    scorer.score({"cam1": snippets[3]})
    elapsed = time.perf_counter() - started
    assert scorer.head_calls == 4 and scorer.backbone_calls == 3
    assert scorer.backbone_s > 0 and scorer.head_s > 0
    assert scorer.backbone_s + scorer.head_s <= elapsed


def test_reset_restarts_a_cameras_window(nets):
    backbone, head = nets
    snippets = _clip_snippets(_frames(2 * S * STRIDE, 8), 2)
    scorer = StreamingScorer(backbone, head, ["cam0"], K)
    scorer.score({"cam0": snippets[0]})
    scorer.reset("cam0")
    assert scorer.score({"cam0": snippets[1]})["cam0"] == pytest.approx(
        score_clip(backbone, head, snippets[1:])[-1], abs=1e-4
    )


def test_bad_inputs_are_named(nets):
    backbone, head = nets
    scorer = StreamingScorer(backbone, head, ["cam0", "cam1"], K)
    snippet = _clip_snippets(_frames(S * STRIDE, 9), 1)[0]
    with pytest.raises(ScoringError, match="unknown camera 'cam9'"):
        scorer.score({"cam9": snippet})
    with pytest.raises(ScoringError, match="must share one shape"):
        scorer.score({"cam0": snippet, "cam1": snippet[:, :2]})
    with pytest.raises(ScoringError, match=r"\(N, C, S, H, W\)"):
        scorer.score({"cam0": snippet[0]})
    with pytest.raises(ScoringError, match="no output 'scores'"):
        StreamingScorer(backbone, head, ["cam0"], K, head_output="scores")
    with pytest.raises(ScoringError, match="cannot score a clip of 0 snippets"):
        score_clip(backbone, head, np.zeros((0, 3, S, 8, 8), np.float32))
