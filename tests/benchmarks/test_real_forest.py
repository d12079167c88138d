"""benchmarks.real_forest: a fold's forest, threshold and metrics, and the options it refuses."""

from pathlib import Path

import numpy as np
import pytest

from benchmarks import real_forest
from edge_runtime.motion_stats import WINDOW_STATS_SIZE
from training.configs import create_experiment_config


def _windows(n_clips, separation, seed):
    """Clips of 4 windows; anomalous ones shifted by ``separation`` on every statistic."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n_clips):
        label = i % 2
        x = rng.normal(label * separation, 1.0, (4, WINDOW_STATS_SIZE)).astype(np.float32)
        out[Path(f"/clips/{seed}-{i}.mp4")] = (x, np.full(4, label, np.int64))
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
        (["motion_forest_trees=0", "motion_weight=0.5"], "motion_forest_trees = 0"),
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
