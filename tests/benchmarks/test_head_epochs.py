"""The measured head-only vs end-to-end epochs: real videos, the real feature cache and trainer, both modes."""

from __future__ import annotations

import json

import pytest

from benchmarks.head_epochs import format_measure, measure


def test_measure_trains_both_ways_on_the_same_videos_and_reports_the_ratio(tmp_path):
    result = measure(tmp_path, "debug", videos_per_class=1, e2e_epochs=1, head_epochs=2)
    assert result["train_videos"] == 2 and result["val_videos"] == 2 and result["feature_dim"] == 128
    assert result["speedup"] == pytest.approx(result["e2e_epoch_s"] / result["head_epoch_s"])
    assert result["e2e_epoch_s"] > 0 and result["head_epoch_s"] > 0 and result["features_s"] > 0
    # both runs really trained: one history row per epoch, in its own run folder
    e2e = json.loads((tmp_path / "e2e_run" / "history.json").read_text())
    head = json.loads((tmp_path / "head_run" / "history.json").read_text())
    assert len(e2e) == 1 and len(head) == 2
    # an epoch's time is its training, validation and checkpoints
    assert result["e2e_epoch_s"] == e2e[0]["time_s"] + e2e[0]["checkpoint_s"]
    assert result["head_epoch_s"] in [r["time_s"] + r["checkpoint_s"] for r in head]
    # the head-only run read the features of all four videos from the cache
    cached = [p for p in (tmp_path / "features").rglob("*.npy") if not p.name.endswith(".labels.npy")]
    assert len(cached) == 4
    line = format_measure(result)
    assert "debug preset" in line and "measured" in line and "2 train + 2 val videos" in line


def test_no_training_video_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="videos_per_class must be >= 1"):
        measure(tmp_path, "debug", videos_per_class=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--videos-per-class", "0"], "--videos-per-class"), (["--head-epochs", "0"], "--head-epochs"),
     (["--config", "huge"], "--config")],
)  # fmt: skip
def test_bad_option_is_one_line_naming_it(args, named, capsys):
    from benchmarks.head_epochs import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        exit_info.value.code == 2
        and named in err[-1]
        and err[-1].startswith("python -m benchmarks.head_epochs: error")
    )
