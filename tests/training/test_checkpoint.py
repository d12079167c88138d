"""Checkpoint files: written through a rename, and best.pt as a second name of last.pt's file."""

from __future__ import annotations

import os

import torch

from training.checkpoint import copy_checkpoint, save_checkpoint


def _save(path, value):
    return save_checkpoint(path, {"model": {"w": torch.full((3,), float(value))}})


def _value(path):
    return float(torch.load(path, weights_only=True)["model"]["w"][0])


def test_best_is_a_link_to_last_until_last_is_written_again(tmp_path):
    last = _save(tmp_path / "last.pt", 1)
    best = copy_checkpoint(last, tmp_path / "best.pt")
    assert os.path.samefile(best, last) and _value(best) == 1  # no bytes copied
    _save(last, 2)  # the next epoch: a new file renamed over last.pt
    assert _value(last) == 2 and _value(best) == 1 and not os.path.samefile(best, last)
    copy_checkpoint(last, best)  # a better epoch again: best.pt now names the new file
    assert _value(best) == 2 and os.path.samefile(best, last)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_without_hard_links_best_is_a_byte_copy(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    last = _save(tmp_path / "last.pt", 1)
    best = copy_checkpoint(last, tmp_path / "best.pt")
    assert not os.path.samefile(best, last) and best.read_bytes() == last.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_a_temporary_file_left_by_a_killed_run_does_not_stop_the_next(tmp_path):
    last = _save(tmp_path / "last.pt", 1)
    (tmp_path / f".best.pt.{os.getpid()}.tmp").write_bytes(b"half a file")
    best = copy_checkpoint(last, tmp_path / "best.pt")
    assert _value(best) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_a_config_object_is_saved_as_plain_data_and_reads_back(tmp_path):
    from training.checkpoint import read_checkpoint, save_checkpoint
    from training.configs import Config, get_config

    config = get_config("debug")
    assert isinstance(config, Config)
    path = save_checkpoint(tmp_path / "m.pt", {"model": {}, "config": config})
    on_disk = torch.load(path, weights_only=True)  # raises on a pickled Config class
    assert type(on_disk["config"]) is dict
    assert read_checkpoint(path)["config"]["clip_length"] == config["clip_length"]


def test_a_state_dict_keeps_its_module_versions(tmp_path):
    from training.checkpoint import save_checkpoint

    state = torch.nn.BatchNorm1d(2).state_dict()
    path = save_checkpoint(tmp_path / "m.pt", {"model": state, "config": {}})
    assert torch.load(path, weights_only=True)["model"]._metadata == state._metadata


def test_a_kinetics_checkpoint_written_before_the_standardised_head_still_loads(tmp_path):
    # the kinetics preset standardises its head's input now; a checkpoint of it written before has no
    # statistics in its head and a config without the key: it loads as it was trained
    from training.checkpoint import load_checkpoint, save_checkpoint
    from training.configs import create_experiment_config, get_config
    from training.model import build_model

    config = create_experiment_config(
        get_config("kinetics"), width_multiplier=0.125, standardize_features=False
    )
    model = build_model(config)
    old = {k: v for k, v in config.items() if k not in ("standardize_features", "interpolation")}
    path = save_checkpoint(tmp_path / "old.pt", {"model": model.state_dict(), "config": old})
    loaded, read, _ = load_checkpoint(path)
    assert read["standardize_features"] is False and read["interpolation"] == "area"
    assert not any("feature_mean" in k for k in loaded.state_dict())
