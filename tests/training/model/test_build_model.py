import pytest
import torch

from training.configs import ConfigError, create_experiment_config, get_config
from training.model import build_model


def _momenta(model):
    return {m.momentum for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm3d)}


def test_bn_momentum_from_the_config_reaches_every_backbone_batchnorm():
    cfg = create_experiment_config(get_config("debug"), bn_momentum=0.2)
    assert _momenta(build_model(cfg)) == {0.2}


def test_default_config_keeps_the_published_i3d_momentum():
    assert _momenta(build_model(create_experiment_config(get_config("default"), width_multiplier=0.125))) == {
        0.01
    }


def test_bn_momentum_does_not_change_the_state_dict():
    a = build_model(create_experiment_config(get_config("debug"), bn_momentum=0.5))
    b = build_model(get_config("debug"))
    assert a.state_dict().keys() == b.state_dict().keys()


def test_bn_momentum_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="bn_momentum"):
        create_experiment_config(get_config("debug"), bn_momentum=0.0)


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_scorer_layers_sets_the_scorers_hidden_layers_and_round_trips(layers):
    from training.model import model_config

    config = create_experiment_config(get_config("debug"), scorer_layers=layers)
    model = build_model(config)
    linears = [m for m in model.head.scorer.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == layers + 1
    assert linears[-1].out_features == 1
    assert model_config(model)["scorer_layers"] == layers
    assert build_model(model_config(model)).state_dict().keys() == model.state_dict().keys()


def test_scorer_layers_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="scorer_layers"):
        create_experiment_config(get_config("debug"), scorer_layers=3)
