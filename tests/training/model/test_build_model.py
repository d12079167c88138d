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
