"""benchmarks.quality: a full run that misses a goal exits 1 and names it; a quick run checks none."""

from benchmarks import quality

MET = {"video_auc": 0.99, "frame_auc": 0.95, "train_s": 300.0, "full_size_epoch_speedup": 80.0}


def test_every_goal_met_exits_0():
    result = {**MET, "goals": quality.goals(MET, 50)}
    assert all(result["goals"].values())
    assert quality.exit_status(result) == 0


def test_a_missed_goal_exits_1_and_is_named(capsys):
    for key, bad in [
        ("video_auc", 0.9),
        ("frame_auc", 0.5),
        ("train_s", 700.0),
        ("full_size_epoch_speedup", 3.0),
    ]:
        result = {**MET, key: bad}
        result["goals"] = quality.goals(result, 50)
        assert quality.exit_status(result) == 1, key
        missed = capsys.readouterr().out
        assert "goal(s) missed" in missed
        assert [g for g, ok in result["goals"].items() if not ok][0] in missed


def test_a_quick_run_checks_no_goal():
    assert quality.exit_status({**MET, "video_auc": 0.1}) == 0  # run() adds "goals" on full runs only
