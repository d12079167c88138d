"""Features of a pretrained backbone: `i3dmtn features --i3d_weights`, then `i3dmtn train --features` on them."""

from __future__ import annotations

import json

import pytest
import torch

from tests.training.test_features import CLI_SETS
from tests.training.tiny_data import synth_root, tiny_config
from training.checkpoint import new_model
from training.cli import main


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """An I3D weights file (the backbone's own names, as pytorch-i3d's) of a backbone no config seeds."""
    torch.manual_seed(1234)
    backbone = new_model(tiny_config(seed=77)).backbone
    for p in backbone.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path_factory.mktemp("i3d") / "i3d.pt"
    torch.save(backbone.state_dict(), path)
    return path


def _features(root, out, *extra):
    return main(
        ["features", "--config", "debug", *CLI_SETS, "--data_path", str(root), "--out", str(out), *extra]
    )


def test_train_on_features_of_pretrained_weights_keeps_those_weights(root, weights, tmp_path, capsys):
    feats, run = tmp_path / "feats", tmp_path / "run"
    assert _features(root, feats, "--i3d_weights", str(weights)) == 0
    source = json.loads((feats / "index.json").read_text())["source"]
    assert source["i3d_weights"] == str(weights.absolute())
    args = [
        "train",
        "--config",
        "debug",
        *CLI_SETS,
        "--features",
        str(feats),
        "--epochs",
        "1",
        "--output",
        str(run),
    ]
    assert main([*args, "--no-progress"]) == 0, capsys.readouterr().err
    model = torch.load(run / "best.pt", map_location="cpu", weights_only=True)["model"]
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Mixed_5c.b3b.bn.running_var"):
        torch.testing.assert_close(model[f"backbone.{key}"], saved[key], rtol=0, atol=0)


def test_features_of_a_moved_weights_file_are_refused_by_train(root, weights, tmp_path, capsys):
    feats, moved = tmp_path / "feats", tmp_path / "moved.pt"
    moved.write_bytes(weights.read_bytes())
    assert _features(root, feats, "--i3d_weights", str(moved)) == 0
    moved.unlink()
    capsys.readouterr()
    args = ["train", "--config", "debug", *CLI_SETS, "--features", str(feats), "--epochs", "1"]
    assert main([*args, "--output", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(moved) in err and "--features" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--i3d_weights", "nowhere.pt"], "--i3d_weights: nowhere.pt: no such I3D weights file"),
        (["--checkpoint", "x.pt", "--i3d_weights", "y.pt"], "leave out --config, --set and --i3d_weights"),
    ],
)
def test_features_command_bad_weights_are_one_line_errors(root, tmp_path, capsys, extra, message):
    args = ["features", "--data_path", str(root / "val"), "--out", str(tmp_path / "f"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
