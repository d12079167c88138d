"""The trainer: checkpoints, resume, reproducibility, head-only mode, the schedule and the train command."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from tests.training.test_features import CLI_SETS
from tests.training.tiny_data import synth_root, tiny_config, trained_run, video_datasets
from training.checkpoint import CheckpointError, load_checkpoint, new_model
from training.cli import main
from training.configs import ConfigError
from training.model import build_model
from training.schedule import lr_at
from training.trainer import I3D_MTN_Trainer

RUN_FILES = {"best.pt", "last.pt", "config.json", "history.json", "training_curves.png"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def _fit(root, out, resume=False, **overrides):
    config = tiny_config(**overrides)
    train, val = video_datasets(root, config)
    trainer = I3D_MTN_Trainer(new_model(config), config, output_dir=out, device="cpu", progress=False)
    return trainer.fit(train, val, resume=resume)


def _numbers(history):
    return [{k: v for k, v in row.items() if k not in ("time_s", "checkpoint_s")} for row in history]


def test_checkpoint_loads_with_weights_only_and_holds_what_resume_needs(run_dir):
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "config", "epoch", "best_metric", "rng", "threshold"} <= set(
        ckpt
    )
    assert ckpt["epoch"] == 2 and ckpt["scheduler"]["step"] > 0
    assert isinstance(ckpt["rng"]["torch"], torch.Tensor)


def test_checkpoint_round_trip_rebuilds_the_same_model(run_dir):
    model, config, ckpt = load_checkpoint(run_dir / "best.pt")
    assert config == json.loads((run_dir / "config.json").read_text())
    state = model.state_dict()
    assert state.keys() == ckpt["model"].keys()
    assert all(torch.equal(state[k], ckpt["model"][k]) for k in state)
    assert any(k.startswith("backbone.") for k in state) and any(k.startswith("head.") for k in state)


def test_checkpoint_of_another_architecture_names_the_mismatched_keys(run_dir):
    other = build_model(tiny_config(mtn_hidden_dim=8, mtn_num_scales=2))
    with pytest.raises(CheckpointError, match="does not fit the model architecture") as info:
        load_checkpoint(run_dir / "best.pt", other)
    message = str(info.value)
    assert "head.mtn." in message and "unexpected keys" in message and "shape mismatch" in message


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=str(bad)):
        load_checkpoint(bad)


def test_history_rows_hold_loss_parts_lr_val_auc_and_time(run_dir):
    history = json.loads((run_dir / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for key in ("train_total", "train_video_bce", "train_topk_mil", "lr", "val_auc", "val_loss", "time_s"):
        assert all(key in r for r in history), key
    assert all(r["checkpoint_s"] > 0 for r in history)  # the checkpoints' time too, in history.json at once


def test_same_seed_gives_the_same_history(root, tmp_path):
    a = _fit(root, tmp_path / "a", epochs=1)
    b = _fit(root, tmp_path / "b", epochs=1)
    assert _numbers(a) == _numbers(b)
    c = _fit(root, tmp_path / "c", epochs=1, seed=4)
    assert _numbers(c) != _numbers(a)


def test_mixup_and_the_snippet_loss_act_on_training(root, tmp_path):
    plain = _numbers(_fit(root, tmp_path / "plain", epochs=1))[0]
    mixed = _numbers(_fit(root, tmp_path / "mixed", epochs=1, augment_mixup=0.4))[0]
    assert mixed["train_total"] != plain["train_total"]  # other inputs, soft labels
    snippet = _numbers(_fit(root, tmp_path / "snippet", epochs=1, snippet_loss_weight=1.0))[0]
    assert snippet["train_total"] > plain["train_total"]  # one more BCE term, same first step
    assert snippet["train_snippet_bce"] > 0


def test_resume_continues_the_run_as_if_uninterrupted(root, tmp_path):
    constant = {"warmup_epochs": 0, "min_lr_ratio": 1.0}  # the lr schedule then does not depend on epochs
    straight = _fit(root, tmp_path / "straight", epochs=2, **constant)
    first = _fit(root, tmp_path / "resumed", epochs=1, **constant)
    resumed = _fit(root, tmp_path / "resumed", resume=True, epochs=2, **constant)
    assert len(first) == 1 and [r["epoch"] for r in resumed] == [1, 2]
    assert _numbers(resumed) == _numbers(straight)


def test_resume_without_last_checkpoint_is_an_error(root, tmp_path):
    with pytest.raises(CheckpointError, match="last.pt not found"):
        _fit(root, tmp_path, resume=True)


def test_head_only_training_changes_the_head_not_the_backbone(root, run_dir, tmp_path):
    from training.features import extract_features

    config = tiny_config(epochs=1)
    model, _, _ = load_checkpoint(run_dir / "best.pt")
    extract_features(model.backbone, config, root, tmp_path / "feats", device="cpu", progress=False)
    from training.commands.train import build_datasets

    train, val = build_datasets(config, None, tmp_path / "feats")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    I3D_MTN_Trainer(model, config, output_dir=tmp_path / "run", device="cpu", progress=False).fit(train, val)
    after = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("head."))


def _standardized_run(root, tmp_path, started_from=None):
    """Head-only training of a standardising head on a fresh backbone's features; (trainer, train set)."""
    from training.commands.train import build_datasets
    from training.features import extract_features

    config = tiny_config(epochs=1, standardize_features=True)
    model = new_model(config)
    extract_features(model.backbone, config, root, tmp_path / "feats", device="cpu", progress=False)
    train, val = build_datasets(config, None, tmp_path / "feats")
    trainer = I3D_MTN_Trainer(model, config, output_dir=tmp_path / "run", device="cpu", progress=False)
    trainer.started_from = started_from
    if started_from:  # a fine-tune's head comes with its own statistics
        model.head.feature_mean.fill_(5.0)
    trainer.fit(train, val)
    return trainer, train


def test_head_only_training_standardizes_with_the_training_snippets(root, tmp_path):
    trainer, train = _standardized_run(root, tmp_path)
    features = torch.from_numpy(train.snippet_features()).double()
    assert len(features) > len(train)  # every snippet of every training video, not one per video
    head = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    torch.testing.assert_close(head["head.feature_mean"], features.mean(0).float())
    std = features.std(0, unbiased=False)
    varies = std > 1e-6  # a fresh backbone has dead channels: those keep a scale of 1
    assert varies.sum() > len(std) // 2
    torch.testing.assert_close(head["head.feature_scale"][varies], 1 / std[varies].float())
    assert (head["head.feature_scale"][~varies] == 1).all()
    model, config, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    assert config["standardize_features"] and model.head.standardize


def test_a_fine_tune_keeps_its_checkpoints_feature_statistics(root, tmp_path):
    trainer, _ = _standardized_run(root, tmp_path, started_from={"checkpoint": "earlier.pt"})
    assert (trainer.model.head.feature_mean == 5.0).all()


def test_standardize_features_is_refused_end_to_end(root, tmp_path):
    with pytest.raises(ConfigError, match="standardize_features needs head-only training"):
        _fit(root, tmp_path, standardize_features=True)


def test_schedule_warms_up_decays_by_cosine_and_stays_at_the_floor():
    kw = {"total_steps": 100, "warmup_steps": 10, "base_lr": 1e-3, "min_lr_ratio": 0.1}
    warm = [lr_at(s, **kw) for s in range(10)]
    assert warm == sorted(warm) and math.isclose(warm[-1], 1e-3)
    decay = [lr_at(s, **kw) for s in range(10, 101)]
    assert decay == sorted(decay, reverse=True)
    assert math.isclose(lr_at(55, **kw), 1e-4 + 0.5 * (1e-3 - 1e-4))
    assert math.isclose(lr_at(100, **kw), 1e-4) and math.isclose(lr_at(500, **kw), 1e-4)


def test_train_command_writes_the_promised_files(root, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        "debug",
        *CLI_SETS,
        "--data_path",
        str(root),
        "--epochs",
        "1",
        "--output",
        str(out),
    ]
    assert main([*args, "--no-progress"]) == 0
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert (out / "training_curves.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    ckpt = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    summary = (
        f"best.pt: epoch 1 of 1, validation AUC {ckpt['best_metric']:.4f}, threshold {ckpt['threshold']:.4f}"
    )
    assert f"trained 1 epochs -> {out}; {summary}" in printed


def test_train_command_splits_a_single_folder_for_validation(root, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--config", "debug", *CLI_SETS, "--data_path", str(root / "train"), "--epochs", "1"]
    assert main([*args, "--output", str(out), "--no-progress"]) == 0
    assert json.loads((out / "history.json").read_text())[0]["val_auc"] is not None


def test_train_command_resume_extends_the_run(root, tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        "debug",
        *CLI_SETS,
        "--data_path",
        str(root),
        "--output",
        str(out),
        "--no-progress",
    ]
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert [r["epoch"] for r in json.loads((out / "history.json").read_text())] == [1, 2]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--resume"], "last.pt not found"),
        (["--set", "no_such_key=1"], "no_such_key"),
        (["--set", "epochs"], "KEY=VALUE"),
        (["--set", "motion_forest_trees=5"], "input_modality 'rgb'"),
        (["--set", "standardize_features=true"], "standardize_features needs head-only training"),
        (
            ["--features", "feats", "--set", "input_modality=flow", "--set", "motion_forest_trees=5"],
            "motion_forest_trees needs the videos' flow",
        ),
    ],
)
def test_train_command_bad_options_are_one_line_errors(root, tmp_path, capsys, extra, message):
    args = ["train", "--config", "debug", "--data_path", str(root), "--output", str(tmp_path / "r"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_train_command_bad_data_path_is_a_one_line_error(tmp_path, capsys):
    assert (
        main(["train", "--config", "debug", "--data_path", str(tmp_path), "--output", str(tmp_path / "r")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert str(tmp_path) in err and len(err.splitlines()) == 1


def test_validation_video_score_is_the_devices_streaming_score():
    """The device scores the newest snippet of its ring over the snippets so far; validation takes the max
    of one whole-window pass. The causal head makes the two the same number."""
    torch.manual_seed(0)
    head = build_model(tiny_config()).head.eval()
    feats = torch.randn(3, 6, head.feature_dim)
    with torch.no_grad():
        streaming = torch.stack([head(feats[:, : i + 1]).snippet_scores[:, -1] for i in range(6)], 1)
        whole = head(feats).snippet_scores
    torch.testing.assert_close(whole, streaming, rtol=1e-5, atol=1e-6)


def test_best_epoch_is_the_highest_val_auc_and_ties_go_to_the_lower_val_loss(
    root, tmp_path, monkeypatch, caplog
):
    # real training steps; only the validation figures are scripted, to put a tie where it matters
    scripted = iter([(0.9, 0.5), (1.0, 0.6), (1.0, 0.4), (1.0, 0.45), (0.95, 0.1)])

    def validate(self, dataset):
        auc, loss = next(scripted)
        return {"auc_roc": auc, "loss": loss, "auc_pr": auc, "optimal_threshold": 0.5}

    # after each epoch's write: is best.pt a byte copy of last.pt (written once, copied on a better epoch)?
    same_files = []
    write = I3D_MTN_Trainer._write

    def spy(self, improved):
        write(self, improved)
        same_files.append((tmp_path / "best.pt").read_bytes() == (tmp_path / "last.pt").read_bytes())

    monkeypatch.setattr(I3D_MTN_Trainer, "validate", validate)
    monkeypatch.setattr(I3D_MTN_Trainer, "_write", spy)
    with caplog.at_level(logging.INFO, logger="training.trainer"):
        history = _fit(root, tmp_path, epochs=5, early_stopping_patience=2)
    tagged = [r.getMessage()[6:9] for r in caplog.records if "(best)" in r.getMessage()]
    assert tagged == ["1/5", "2/5", "3/5"]  # the epochs written to best.pt are the ones tagged
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["best_loss"] == 0.4  # AUC 1.0 at epochs 2-4; epoch 3's loss is lowest
    assert len(history) == 5  # epochs 4 and 5 are not better: patience 2 lets both run, then the run ends
    assert same_files == [True, True, True, False, False]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 5
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_best_checkpoint_last_keeps_the_last_epoch_and_its_threshold(root, tmp_path, monkeypatch, caplog):
    scripted = iter([(1.0, 0.1, 0.3), (0.5, 0.9, 0.7)])  # epoch 1 would win on validation

    def validate(self, dataset):
        auc, loss, thr = next(scripted)
        return {"auc_roc": auc, "loss": loss, "auc_pr": auc, "optimal_threshold": thr}

    monkeypatch.setattr(I3D_MTN_Trainer, "validate", validate)
    with caplog.at_level(logging.INFO, logger="training.trainer"):
        _fit(root, tmp_path, epochs=2, early_stopping_patience=0, best_checkpoint="last")
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["threshold"] == 0.7
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(epochs) == 2 and not any("(best)" in line for line in epochs)  # every epoch is kept: no tag


def test_best_checkpoint_last_refuses_early_stopping_by_name():
    from training.configs import ConfigError, create_experiment_config

    with pytest.raises(ConfigError, match="early_stopping_patience"):
        create_experiment_config("debug", best_checkpoint="last", early_stopping_patience=3)
    with pytest.raises(ConfigError, match="best_checkpoint"):
        create_experiment_config("debug", best_checkpoint="best")
