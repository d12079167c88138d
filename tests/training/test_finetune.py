"""``i3dmtn train --init``: a fine-tune starts from a checkpoint's weights, with a fresh optimizer and epochs."""

from __future__ import annotations

import json

import pytest
import torch

from edge_runtime.bundle import sha256_file
from tests.training.tiny_data import synth_root, tiny_config
from training.checkpoint import new_model, read_checkpoint, save_checkpoint
from training.cli import main
from training.finetune import INIT_FILE, init_from, read_init


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A checkpoint of the tiny model (seed 7, "after 3 epochs") to fine-tune from."""
    config = tiny_config(seed=7, epochs=1)
    path = tmp_path_factory.mktemp("start") / "best.pt"
    return save_checkpoint(path, {"model": new_model(config).state_dict(), "config": config, "epoch": 3})


def _train(capsys, *argv) -> tuple[int, str]:
    code = main(["train", *map(str, argv), "--no-progress"])
    return code, capsys.readouterr().err.strip()


def _params(state, model):
    names = {name for name, _ in model.named_parameters()}
    return {k: v for k, v in state.items() if k in names}


def test_init_from_loads_the_checkpoints_backbone_and_head(start):
    ckpt = read_init(start)
    model = new_model(tiny_config(seed=3))
    record = init_from(model, start, ckpt)
    state = model.state_dict()
    assert all(torch.equal(state[k], ckpt["model"][k]) for k in state)
    assert any(k.startswith("backbone.") for k in state) and any(k.startswith("head.") for k in state)
    assert record["sha256"] == sha256_file(start) and record["epoch"] == 3


def test_a_fine_tune_starts_from_the_checkpoints_weights_with_fresh_epochs(root, start, tmp_path, capsys):
    """At a learning rate of 1e-12 one epoch leaves the weights where they started: the checkpoint's, not
    the fresh model's of the run's seed; the epoch counter starts at 0 although the checkpoint says 3."""
    out = tmp_path / "run"
    code, err = _train(
        capsys, "--init", start, "--data_path", root, "--output", out, "--no-frame-cache",
        "--set", "learning_rate=1e-12", "--set", "seed=3",
    )  # fmt: skip
    assert code == 0, err
    last, init = read_checkpoint(out / "last.pt"), read_checkpoint(start)
    fresh = new_model(last["config"])
    trained, started = _params(last["model"], fresh), _params(init["model"], fresh)
    assert all(torch.allclose(trained[k], started[k], atol=1e-6) for k in trained)
    fresh_state = fresh.state_dict()
    assert not all(torch.allclose(trained[k], fresh_state[k], atol=1e-3) for k in trained)
    assert last["epoch"] == 1 and [r["epoch"] for r in json.loads((out / "history.json").read_text())] == [1]
    config = json.loads((out / "config.json").read_text())
    assert config["learning_rate"] == 1e-12 and config["clip_length"] == init["config"]["clip_length"]
    record = json.loads((out / INIT_FILE).read_text())
    assert record["sha256"] == sha256_file(start) and record["path"] == str(start.absolute())
    assert last["started_from"] == record


@pytest.mark.parametrize(
    "override",
    ["width_multiplier=0.125", "input_modality=flow", "frame_rate=15", "mtn_hidden_dim=32"],
)
def test_another_architecture_or_contract_is_refused_by_its_key(root, start, tmp_path, capsys, override):
    key = override.split("=")[0]
    code, err = _train(
        capsys, "--init", start, "--data_path", root, "--output", tmp_path / "r", "--set", override
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{key} " in err and str(start) in err
    assert not (tmp_path / "r").exists()


def test_another_preset_is_refused_by_the_keys_that_differ(root, start, tmp_path, capsys):
    code, err = _train(
        capsys, "--init", start, "--config", "debug", "--data_path", root, "--output", tmp_path / "r"
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert "clip_length 4 (the run's config: 8)" in err


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--resume"], ("--init", "--resume")),
        (["--i3d_weights", "x.pt"], ("--init", "--i3d_weights")),
    ],
)
def test_init_with_resume_or_i3d_weights_is_refused(root, start, tmp_path, capsys, extra, words):
    code, err = _train(capsys, "--init", start, "--data_path", root, "--output", tmp_path, *extra)
    assert code == 2 and len(err.splitlines()) == 1
    assert all(w in err for w in words)


def test_a_file_that_is_not_a_checkpoint_is_one_line(root, tmp_path, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    code, err = _train(capsys, "--init", bad, "--data_path", root, "--output", tmp_path / "r")
    assert code == 2 and len(err.splitlines()) == 1
    assert "--init" in err and str(bad) in err and "not a checkpoint" in err


def test_a_run_folder_that_holds_the_starting_checkpoint_is_refused(root, start, capsys):
    code, err = _train(capsys, "--init", start, "--data_path", root, "--output", start.parent)
    assert code == 2 and "would replace it" in err


def test_help_tells_a_fine_tune_from_a_resume(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--init CHECKPOINT" in text and "fine-tune" in text and "continues a killed run" in text
    assert "not with --resume" in text and "(not with --init)" in text
