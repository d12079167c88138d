"""Stochastic weight averaging: the average, BatchNorm measured again, and the trainer's ``swa_epochs``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.training.tiny_data import synth_root, tiny_config, video_datasets
from training.checkpoint import new_model
from training.configs import ConfigError, create_experiment_config
from training.schedule import swa_start_step
from training.trainer import I3D_MTN_Trainer
from training.weight_average import WeightAverage, recompute_batchnorm


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synth_root(tmp_path_factory)


def _fit(root, out, resume=False, **overrides):
    config = tiny_config(early_stopping_patience=0, **overrides)
    train, val = video_datasets(root, config)
    trainer = I3D_MTN_Trainer(new_model(config), config, output_dir=out, device="cpu", progress=False)
    return trainer.fit(train, val, resume=resume)


def test_the_average_is_the_mean_of_the_weights_it_was_given():
    layer = nn.Linear(3, 2)
    average = WeightAverage(layer)
    with pytest.raises(RuntimeError, match="no weights averaged"):
        average.apply()
    seen = []
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        seen.append(layer.weight.clone())
        average.update()
    average.apply()
    assert average.count == 3
    assert torch.allclose(layer.weight, torch.stack(seen).mean(0))  # 3.0 everywhere

    again = WeightAverage(nn.Linear(3, 2))
    again.load_state_dict(average.state_dict())
    assert again.count == 3


def test_batchnorm_is_measured_again_on_the_given_batches_only_for_the_module():
    torch.manual_seed(0)
    inner, outer = nn.BatchNorm1d(4, momentum=0.3), nn.BatchNorm1d(4)
    with torch.no_grad():
        outer.running_mean.fill_(5.0)
    inner.eval()
    batches = [torch.randn(8, 4) * 2 + 1, torch.randn(8, 4) * 2 + 3]
    seen = recompute_batchnorm(inner, batches, inner)
    assert seen == 2
    expected = torch.stack([b.mean(0) for b in batches]).mean(0)  # every batch counts the same
    assert torch.allclose(inner.running_mean, expected, atol=1e-6)
    assert inner.momentum == 0.3 and not inner.training  # as it was
    assert torch.all(outer.running_mean == 5.0)  # another module's statistics untouched


def test_the_learning_rate_holds_from_the_start_of_the_averaging_phase():
    config = create_experiment_config("debug", epochs=10, swa_epochs=4, early_stopping_patience=0)
    assert swa_start_step(config, updates_per_epoch=3) == 18
    assert swa_start_step({**config, "swa_epochs": 0}, updates_per_epoch=3) is None


def test_swa_epochs_refuses_more_epochs_than_the_run_and_early_stopping_by_name():
    with pytest.raises(ConfigError, match="'swa_epochs' must be <= epochs"):
        create_experiment_config("debug", epochs=3, swa_epochs=4, early_stopping_patience=0)
    with pytest.raises(ConfigError, match="'swa_epochs' must be 0 with early stopping"):
        create_experiment_config("debug", swa_epochs=2, early_stopping_patience=5)


def test_the_trainer_keeps_the_averaged_weights_and_new_batchnorm_statistics(root, tmp_path):
    history = _fit(root, tmp_path / "swa", epochs=3, swa_epochs=2)
    plain = _fit(root, tmp_path / "plain", epochs=3)
    lrs = [row["lr"] for row in history]
    assert lrs[1] == lrs[2] and [row["lr"] for row in plain][2] < lrs[2]  # held through the phase
    ckpt = torch.load(tmp_path / "swa" / "last.pt", weights_only=True)
    assert int(ckpt["swa"]["n_averaged"]) == 2
    model = ckpt["model"]
    params = dict(new_model(tiny_config()).named_parameters())
    assert all(torch.equal(model[name], ckpt["swa"][f"module.{name}"]) for name in params)
    norms = [name for name in model if name.endswith("running_var")]
    assert norms and all(not torch.equal(model[n], ckpt["swa"][f"module.{n}"]) for n in norms)
    assert history[-1]["val_loss"] != plain[-1]["val_loss"]


def test_resume_inside_the_averaging_phase_continues_the_same_run(root, tmp_path, monkeypatch):
    straight = _fit(root, tmp_path / "straight", epochs=3, swa_epochs=2)
    real_epoch = I3D_MTN_Trainer.train_epoch

    def killed_at_the_third(self, dataset, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(self, dataset, epoch)

    monkeypatch.setattr(I3D_MTN_Trainer, "train_epoch", killed_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        _fit(root, tmp_path / "resumed", epochs=3, swa_epochs=2)
    monkeypatch.setattr(I3D_MTN_Trainer, "train_epoch", real_epoch)
    resumed = _fit(root, tmp_path / "resumed", resume=True, epochs=3, swa_epochs=2)

    def numbers(history):
        return [{k: v for k, v in r.items() if k not in ("time_s", "checkpoint_s")} for r in history]

    assert numbers(resumed) == numbers(straight)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_extended_past_its_averaging_phase_averages_its_new_last_epochs(root, tmp_path):
    _fit(root, tmp_path, epochs=2, swa_epochs=2)
    _fit(root, tmp_path, resume=True, epochs=4, swa_epochs=1)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 4 and int(ckpt["swa"]["n_averaged"]) == 1  # not 2 + 1


def test_a_run_given_swa_epochs_inside_its_phase_on_resume_says_what_the_average_lacks(
    root, tmp_path, caplog
):
    _fit(root, tmp_path, epochs=3)
    with caplog.at_level("WARNING", logger="training.trainer"):
        _fit(root, tmp_path, resume=True, epochs=4, swa_epochs=3)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 4 and int(ckpt["swa"]["n_averaged"]) == 1
    assert "leaves out epochs 2-3 of the averaging phase" in caplog.text
