"""benchmarks.real_quality_report: each round's clips joined with their sources, the figure and the JSON file;
real_quality's errors by source (training.source_errors counts them)."""

import json

import numpy as np
import pytest

from benchmarks import real_quality_report as rqr


def _clip(group: str, label: int, score: float) -> dict:
    return {"video": f"{group}-{label}-{score}", "label": label, "score": score, "group": group}


ROWS = [
    {"fold": 0, "auc": 0.75, "threshold": 0.5, "clips": [_clip("a", 1, 0.9), _clip("a", 1, 0.2),
                                                          _clip("a", 0, 0.1), _clip("b", 0, 0.7)]},
    {"fold": 1, "auc": 1.0, "threshold": 0.8, "clips": [_clip("c", 1, 0.85), _clip("c", 0, 0.7)],
     "floor": [{"label": 1, "score": 3.0}, {"label": 0, "score": 1.0}]},
]  # fmt: skip


def test_fold_clips_joins_the_report_with_each_clips_source_video_from_the_rounds_split(tmp_path):
    split = {"clips": [
        {"path": "test/anomaly/fi1.mp4", "source": "fight/fi1.mp4", "group": "scene-a"},
        {"path": "test/normal/no1.mp4", "source": "noFight/no1.mp4", "group": "scene-b"},
        {"path": "train/normal/no2.mp4", "source": "noFight/no2.mp4", "group": "scene-b"},
    ]}  # fmt: skip
    (tmp_path / "split.json").write_text(json.dumps(split))
    report = {"videos": [{"video": "anomaly/fi1.mp4", "label": 1, "score": 0.9},
                         {"video": "normal/no1.mp4", "label": 0, "score": 0.4}]}  # fmt: skip
    clips = rqr.fold_clips(tmp_path, report)
    assert clips == [
        {"video": "fight/fi1.mp4", "label": 1, "score": 0.9, "group": "scene-a"},
        {"video": "noFight/no1.mp4", "label": 0, "score": 0.4, "group": "scene-b"},
    ]
    with pytest.raises(FileNotFoundError, match="no split written by i3dmtn data prepare"):
        rqr.fold_clips(tmp_path / "elsewhere", report)


def test_the_figure_has_a_roc_per_fold_and_one_column_per_source_in_fold_order(tmp_path):
    fig = rqr.plot_cross_validation(ROWS)
    roc, strip = fig.axes
    labels = [line.get_label() for line in roc.get_lines()]
    assert labels[:2] == ["fold 0 (AUC 0.750)", "fold 1 (AUC 1.000)"] and "floor" in labels[2]
    assert [t.get_text() for t in strip.get_xticklabels()] == ["a (0)", "b (0)", "c (1)"]
    heights = np.concatenate([c.get_offsets()[:, 1] for c in strip.collections])
    np.testing.assert_allclose(
        sorted(heights), sorted([0.4, -0.3, -0.4, 0.2, 0.05, -0.1])
    )  # score - threshold
    path = rqr.plot_cross_validation(ROWS, tmp_path / "cv" / "real_quality.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_json_file_holds_the_summary_and_every_round(tmp_path):
    path = rqr.write_json(tmp_path / "out" / "real_quality.json", ROWS, {"auc": 0.875})
    data = json.loads(path.read_text())
    assert data["summary"] == {"auc": 0.875} and data["folds"][1]["clips"][0]["score"] == pytest.approx(0.85)
    assert [p.name for p in path.parent.iterdir()] == ["real_quality.json"]  # no temporary file left


def test_real_quality_with_work_writes_the_figure_and_the_json_beside_the_rounds(
    monkeypatch, capsys, tmp_path
):
    from benchmarks import real_quality

    def fake_round(opts, fold, work, threads):  # the rounds' own commands are measured by real runs
        row = {"test_videos": 2, "ap": 1.0, "eer": 0.0, "accuracy": 1.0, "train_s": 1.0, "floor_auc": 0.5,
               "network_auc": float("nan"), "forest_auc": float("nan"), "weight_auc": {}}  # fmt: skip
        return {**ROWS[fold], **row}

    monkeypatch.setattr(real_quality, "run_fold", fake_round)
    data = tmp_path / "data"
    data.mkdir()
    code = real_quality.main(["--data", str(data), "--folds", "2", "--work", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert code == 1 and "errors by source video: 2 of 3 sources have one" in out  # mean AUC 0.875: missed
    saved = json.loads((tmp_path / "work" / "real_quality.json").read_text())
    assert saved["summary"]["auc"] == pytest.approx(0.875) and saved["summary"]["goal_met"] is False
    assert [f["fold"] for f in saved["folds"]] == [0, 1]
    assert (tmp_path / "work" / "real_quality.png").read_bytes()[:4] == b"\x89PNG"
