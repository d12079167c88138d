"""Evaluation: streaming scores as the device computes them, report.json, plots and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edge_runtime.scoring import streaming_scores
from edge_runtime.video import probe_video
from tests.terminal_helpers import run_on_a_terminal
from tests.training.tiny_data import synth_root, trained_run
from training.checkpoint import load_checkpoint
from training.cli import main
from training.data import scan_videos
from training.evaluate import evaluate, score_video, torch_head, video_features


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(run_dir):
    model, config, ckpt = load_checkpoint(run_dir / "best.pt")
    return model.eval(), config, ckpt


@pytest.fixture(scope="module")
def report_dir(root, run_dir, loaded, tmp_path_factory):
    model, config, ckpt = loaded
    out = tmp_path_factory.mktemp("eval")
    evaluate(
        model, config, root / "test", out, threshold=ckpt["threshold"], visualize=True,
        history_path=run_dir / "history.json", annotate_videos=2, device="cpu", progress=False,
    )  # fmt: skip
    return out


def test_streaming_scores_are_the_newest_snippet_of_the_last_k_window(loaded):
    model, _, _ = loaded
    torch.manual_seed(0)
    feats = torch.randn(7, model.feature_dim)
    k = 3
    got = streaming_scores(torch_head(model.head), feats.numpy(), k, batch_size=2)
    causal = streaming_scores(torch_head(model.head), feats.numpy(), k, causal=True)
    with torch.no_grad():
        expected = [
            float(model.head(feats[None, max(0, i - k + 1) : i + 1]).snippet_scores[0, -1]) for i in range(7)
        ]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(causal, expected, rtol=1e-5, atol=1e-6)  # the MTN is causal: same numbers


def test_a_video_scores_every_snippet_and_every_frame(root, loaded):
    model, config, _ = loaded
    record = scan_videos(root / "test")[0][0]
    result = score_video(model, record, config, torch.device("cpu"))
    feats = video_features(model.backbone, record.path, config, torch.device("cpu"))
    assert len(result.snippet_scores) == len(feats) == 8  # 32 frames / S=4
    assert result.frame_scores.shape == (record.num_frames,)
    np.testing.assert_array_equal(result.frame_scores[:4], np.repeat(result.snippet_scores[0], 4))
    assert result.video_score == result.snippet_scores.max()


def test_report_json_holds_video_and_frame_metrics(report_dir, loaded):
    text = (report_dir / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    report = json.loads(text)
    _, _, ckpt = loaded
    assert report["threshold"] == pytest.approx(ckpt["threshold"])
    assert report["threshold_source"].startswith("checkpoint")
    assert report["video_metrics"]["n_videos"] == 4 and report["frame_metrics"]["n_frames"] == 4 * 32
    for key in ("auc_roc", "auc_pr", "eer"):
        assert 0.0 <= report["video_metrics"][key] <= 1.0
    assert 0.0 <= report["frame_metrics"]["frame_auc"] <= 1.0
    for video in report["videos"]:
        assert video["score"] == pytest.approx(max(video["snippet_scores"]))


def test_visualize_writes_non_empty_plots_and_annotated_videos(report_dir):
    assert (report_dir / "roc_pr.png").stat().st_size > 1000
    assert (report_dir / "training_curves.png").stat().st_size > 1000
    for folder in ("timelines", "attention"):
        pngs = list((report_dir / folder).glob("*.png"))
        assert len(pngs) == 4 and all(p.stat().st_size > 1000 for p in pngs)
    videos = list((report_dir / "videos").glob("*.mp4"))
    assert len(videos) == 2 and all(probe_video(v).num_frames == 32 for v in videos)


def test_evaluate_command_prints_a_summary_and_writes_the_report(root, run_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model_path", str(run_dir / "best.pt"), "--test_path", str(root / "test"),
                 "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "video AUC" in printed and "frame AUC" in printed
    assert json.loads((out / "report.json").read_text())["video_metrics"]["n_videos"] == 4
    assert not (out / "roc_pr.png").exists()  # plots only with --visualize
    assert "errors by source video" not in printed  # a folder without data prepare's split.json


def test_evaluate_of_a_prepared_test_folder_names_the_source_videos_with_errors(
    root, run_dir, tmp_path, capsys
):
    # the layout `data prepare --groups` writes: test/ of links to the clips, split.json with their sources
    clips = []
    for i, video in enumerate(sorted((root / "test").glob("*/*.mp4"))):
        link = tmp_path / "data" / "test" / video.parent.name / video.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(video)
        path = f"test/{video.parent.name}/{video.name}"
        clips.append({"path": path, "source": f"src/{video.name}", "group": f"scene-{i % 2}"})
    split = {"options": {"groups": "groups.json"}, "clips": clips}
    (tmp_path / "data" / "split.json").write_text(json.dumps(split))
    out = tmp_path / "eval"
    assert main(["evaluate", "--model_path", str(run_dir / "best.pt"), "--test_path",
                 str(tmp_path / "data" / "test"), "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    report = json.loads((out / "report.json").read_text())
    group = {c["path"]: c["group"] for c in clips}
    errors = {"scene-0": 0, "scene-1": 0}
    for v in report["videos"]:  # a fight under the threshold, or a calm clip at or over it
        errors[group[f"test/{v['video']}"]] += (v["score"] >= report["threshold"]) != bool(v["label"])
    heading = [line for line in printed if line.startswith("errors by source video")]
    assert heading == [f"errors by source video: {sum(n > 0 for n in errors.values())} of 2 sources have one"]
    named = [line.split(":")[0].strip() for line in printed if line.startswith("  scene-")]
    assert sorted(named) == sorted(g for g, n in errors.items() if n)


@pytest.mark.parametrize("bad", ["model", "test"])
def test_evaluate_command_bad_paths_are_one_line_errors(root, run_dir, tmp_path, capsys, bad):
    model = tmp_path / "missing.pt" if bad == "model" else run_dir / "best.pt"
    test = tmp_path if bad == "test" else root / "test"
    assert main(["evaluate", "--model_path", str(model), "--test_path", str(test)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("missing.pt" in err if bad == "model" else str(tmp_path) in err)


def _evaluate_on_a_terminal(run_dir, root, out, *extra) -> str:
    """`i3dmtn evaluate` with stdout and stderr on a pseudo-terminal (where bars draw); its output."""
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "i3dmtn"
    return run_on_a_terminal([str(exe), "evaluate", "--model_path", str(run_dir / "best.pt"), "--test_path",
                              str(root / "test"), "--output", str(out), "--device", "cpu", *extra])  # fmt: skip


def test_evaluate_no_progress_draws_no_bar_even_on_a_terminal(root, run_dir, tmp_path):
    drawn = _evaluate_on_a_terminal(run_dir, root, tmp_path / "bars")
    assert "scoring:" in drawn and "%|" in drawn  # on this terminal the bars draw by default
    quiet = _evaluate_on_a_terminal(
        run_dir, root, tmp_path / "quiet", "--visualize", "--annotate", "1", "--no-progress"
    )
    assert "video AUC" in quiet
    assert "%|" not in quiet and "/s]" not in quiet, quiet  # no bar (scoring, plots, annotating) at all
