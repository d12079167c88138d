"""benchmarks.real_forest: a fold's forest, threshold and metrics, and the options it refuses."""

from pathlib import Path

import numpy as np
import pytest

from benchmarks import real_forest
from edge_runtime.motion_stats import WINDOW_STATS_SIZE
from training.configs import create_experiment_config


def _windows(n_clips, separation, seed, crops=3, shifted=None):
    """Clips of 4 windows of ``crops`` crops; anomalous ones shifted by ``separation`` on every statistic of
    the crops ``shifted`` (all by default)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n_clips):
        label = i % 2
        x = rng.normal(0.0, 1.0, (4, crops, WINDOW_STATS_SIZE)).astype(np.float32)
        x[:, range(crops) if shifted is None else shifted] += label * separation
        out[Path(f"/clips/{seed}-{i}.mp4")] = (x.reshape(4, -1), np.full(4, label, np.int64))
    return out


def _fold(windows):
    clips = sorted(windows)
    return {"train": clips[:24], "val": clips[24:32], "test": clips[32:]}


def test_separable_statistics_give_a_perfect_fold_at_the_val_threshold():
    config = create_experiment_config("surveillance", motion_forest_trees=20)
    windows = _windows(44, separation=4.0, seed=0)
    m = real_forest.fold_metrics(config, windows, **_fold(windows))
    assert m["auc"] == 1.0 and m["accuracy"] == 1.0 and m["test_videos"] == 12
    assert m["train_windows"] == (24 + 8) * 4  # refitted on train + val, as training does


def test_an_anomaly_seen_in_a_side_crop_only_is_found_with_three_crops():
    """The forest is fitted on the centre crop's windows (here: anomalous ones shifted in every crop) and a
    clip scores the max over its crops: test clips anomalous at the left edge only are found with 3 crops."""
    config = create_experiment_config("surveillance", motion_forest_trees=20)
    train = _windows(32, separation=4.0, seed=0)
    test = _windows(20, separation=4.0, seed=2, shifted=[1])  # the left crop only
    windows = {**train, **test}
    split = {"train": sorted(train)[:24], "val": sorted(train)[24:], "test": sorted(test)}
    assert real_forest.fold_metrics(config, windows, **split)["auc"] == 1.0
    centre = {c: (x[:, :WINDOW_STATS_SIZE], y) for c, (x, y) in windows.items()}
    one = create_experiment_config("surveillance", motion_forest_trees=20, motion_crops=1)
    assert real_forest.fold_metrics(one, centre, **split)["auc"] < 0.8


def test_the_forest_of_train_alone_when_the_config_says_so():
    config = create_experiment_config("surveillance", motion_forest_trees=20, motion_forest_data="train")
    windows = _windows(44, separation=4.0, seed=0)
    assert real_forest.fold_metrics(config, windows, **_fold(windows))["train_windows"] == 24 * 4


def test_statistics_that_say_nothing_give_no_better_than_chance():
    config = create_experiment_config("surveillance", motion_forest_trees=20)
    windows = _windows(200, separation=0.0, seed=1)
    clips = sorted(windows)
    m = real_forest.fold_metrics(config, windows, clips[:120], clips[120:150], clips[150:])
    assert 0.25 < m["auc"] < 0.75


@pytest.mark.parametrize(
    "sets, message",
    [
        (["motion_forest_trees=0", "motion_weight=0.5", "motion_crops=1"], "motion_forest_trees = 0"),
        (["motion_forest_trees=0"], "config key 'motion_weight' must be 0.5"),
        (["no_such_key=1"], "no_such_key"),
    ],
)
def test_a_config_without_a_forest_or_a_bad_one_is_refused_by_name(sets, message, tmp_path, capsys):
    argv = ["--data", str(tmp_path)] + [a for kv in sets for a in ("--set", kv)]
    with pytest.raises(SystemExit) as exc:
        real_forest.main(argv)
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after argparse's usage: one line
    assert (
        exc.value.code == 2
        and last.startswith("python -m benchmarks.real_forest: error:")
        and message in last
    )


def test_repeats_weigh_each_split_the_same_and_report_their_spread():
    def row(seed, fold, auc):
        return {"seed": seed, "fold": fold, "auc": auc, "ap": auc, "accuracy": auc, "eer": 1 - auc,
                "test_videos": 10, "train_windows": 40}  # fmt: skip

    rows = [row(0, 0, 0.6), row(0, 1, 0.8), row(1, 0, 0.9)]  # seed 1 ran one fold only
    means = real_forest.repeat_means(rows)
    assert means[0]["auc"] == pytest.approx(0.7) and means[1]["auc"] == pytest.approx(0.9)
    assert real_forest.overall_mean(means)["auc"] == pytest.approx(0.8)  # not 0.767, the mean of the rows
    table = real_forest._table(rows)
    assert any(t.split()[:2] == ["std", "repeats"] and t.split()[2] == "0.100" for t in table)
    single = real_forest._table(rows[:2])
    assert any(t.split()[:2] == ["std", "folds"] and t.split()[2] == "0.100" for t in single)


def test_repeats_below_one_are_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        real_forest.main(["--data", str(tmp_path), "--repeats", "0"])
    assert exc.value.code == 2 and "--repeats 0" in capsys.readouterr().err.strip().splitlines()[-1]
