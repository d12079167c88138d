"""benchmarks.real_quality: the floor score, the options it refuses, the table and the goal."""

import numpy as np
import pytest

from benchmarks import real_quality
from edge_runtime.video import write_video


def test_the_motion_floor_scores_moving_frames_above_still_ones(tmp_path):
    rng = np.random.default_rng(0)
    still = np.repeat(rng.integers(0, 255, (1, 48, 64, 3), dtype=np.uint8), 20, axis=0)
    moving = np.stack([np.roll(still[0], 3 * i, axis=1) for i in range(20)])
    write_video(tmp_path / "still.mp4", still, 30.0)
    write_video(tmp_path / "moving.mp4", moving, 30.0)
    a = real_quality.motion_floor_score(tmp_path / "still.mp4", 15)
    b = real_quality.motion_floor_score(tmp_path / "moving.mp4", 15)
    assert b > a + 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "/nonexistent"], "not a folder"),
        (["--only", "7"], "--only: folds must be in 0 .. 4"),
        (["--init", "/nonexistent/best.pt"], "--init /nonexistent/best.pt: no such checkpoint file"),
        (["--i3d-weights", "/nonexistent/i3d.pt"], "--i3d-weights /nonexistent/i3d.pt: no such file"),
        (["--plot", "/tmp"], "--plot /tmp: is a folder; give the file to write"),
        (["--json", "/tmp"], "--json /tmp: is a folder; give the file to write"),
    ],
)
def test_bad_options_are_one_line_errors(argv, message, capsys, tmp_path):
    if "--data" not in argv:
        argv = ["--data", str(tmp_path), *argv]
    with pytest.raises(SystemExit) as exc:
        real_quality.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_without_data_and_without_the_reference_clips_beside_it_asks_for_data(monkeypatch, capsys, tmp_path):
    # a user's clone has no ../shared: the default is the project's own reference clips, so it says what to give
    monkeypatch.setattr(real_quality, "default_data", lambda: tmp_path / "absent")
    with pytest.raises(SystemExit) as exc:
        real_quality.main([])
    error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert exc.value.code == 2 and len(error) == 1 and "--data DIR is needed" in error[0]


def test_the_table_has_each_fold_a_mean_and_a_spread():
    rows = [
        {
            "fold": i,
            "test_videos": 40,
            "auc": a,
            "ap": a,
            "accuracy": 0.8,
            "eer": 0.2,
            "floor_auc": 0.7,
            "network_auc": float("nan"),
            "forest_auc": float("nan"),
            "train_s": 100,
        }
        for i, a in enumerate((0.8, 0.9))
    ]
    table = real_quality._table(rows)
    assert len(table) == 5 and "0.850" in table[3] and "0.050" in table[4]
    assert table[1].split()[7:9] == ["-", "-"]  # no motion forest: no parts


def test_the_table_gives_the_network_and_forest_aucs_of_a_fused_run():
    row = {"fold": 0, "test_videos": 40, "auc": 0.8, "ap": 0.8, "accuracy": 0.8, "eer": 0.2,
           "floor_auc": 0.7, "network_auc": 0.743, "forest_auc": 0.812, "train_s": 100}  # fmt: skip
    table = real_quality._table([row])
    assert table[0].split()[7:9] == ["net", "forest"] and table[1].split()[7:9] == ["0.743", "0.812"]


def test_the_weight_sweep_scores_the_reports_snippet_parts_again_at_each_motion_weight():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    videos = [
        {"label": i % 2, "parts": {"network": rng.random(n).tolist(), "forest": rng.random(n).tolist()}}
        for i, n in enumerate((3, 5, 4, 6, 2, 7, 5, 3))
    ]
    sweep = real_quality.weight_sweep(videos, (0.0, 0.4, 1.0))
    labels = [v["label"] for v in videos]
    for w, name in ((0.0, "network"), (1.0, "forest")):  # the ends: each part alone
        assert sweep[w] == roc_auc_score(labels, [max(v["parts"][name]) for v in videos])
    fused = [max(0.6 * a + 0.4 * b for a, b in zip(*v["parts"].values(), strict=True)) for v in videos]
    assert sweep[0.4] == pytest.approx(roc_auc_score(labels, fused))  # per snippet, then the max
    assert real_quality.weight_sweep([{"label": 1, "snippet_scores": [0.5]}]) == {}  # no forest, no parts


def test_the_sweep_line_gives_each_weights_mean_over_the_folds_and_nothing_without_parts():
    rows = [{"weight_auc": {0.0: 0.7, 0.75: 0.8}}, {"weight_auc": {0.0: 0.8, 0.75: 0.9}}]
    assert real_quality._sweep_line(rows).endswith("0: 0.750  0.75: 0.850")
    assert real_quality._sweep_line([*rows, {"weight_auc": {}}]) is None


def test_the_table_and_the_weight_sweep_take_a_pose_forest_in():
    from sklearn.metrics import roc_auc_score

    row = {"fold": 0, "test_videos": 40, "auc": 0.8, "ap": 0.8, "accuracy": 0.8, "eer": 0.2,
           "floor_auc": 0.7, "network_auc": 0.743, "forest_auc": 0.812, "pose_auc": 0.701, "train_s": 100}  # fmt: skip
    table = real_quality._table([row])
    assert table[0].split()[9] == "pose" and table[1].split()[9] == "0.701"
    rng = np.random.default_rng(1)
    videos = [
        {"label": i % 2, "parts": {k: rng.random(n).tolist() for k in ("network", "forest", "pose")}}
        for i, n in enumerate((3, 5, 4, 6, 2, 7))
    ]
    sweep = real_quality.weight_sweep(videos, (0.5,), pose_weight=0.4)
    fused = [
        max(0.6 * (0.5 * a + 0.5 * b) + 0.4 * c for a, b, c in zip(*v["parts"].values(), strict=True))
        for v in videos
    ]
    assert sweep[0.5] == pytest.approx(roc_auc_score([v["label"] for v in videos], fused))
    assert sweep != real_quality.weight_sweep(videos, (0.5,))  # the pose part counts only with its weight
