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


@pytest.mark.parametrize("fraction", [None, 0.0, 0.25])
def test_motion_filters_come_from_the_config_and_else_from_its_defaults(fraction):
    from training.configs import DEFAULTS

    config = (
        {"width_multiplier": 0.125}
        if fraction is None
        else {"width_multiplier": 0.125, "motion_filters": fraction}
    )
    assert build_model(config).backbone.motion_filters == (
        DEFAULTS["motion_filters"] if fraction is None else fraction
    )


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


def _dropouts(model):
    return {m.p for m in model.head.modules() if isinstance(m, torch.nn.Dropout)}


def test_the_config_dropout_reaches_every_head_dropout():
    cfg = create_experiment_config(get_config("debug"), dropout=0.25)
    assert _dropouts(build_model(cfg)) == {0.25}


def test_one_default_for_dropout_and_bn_momentum_whichever_way_the_model_is_built():
    from training.configs import DEFAULTS
    from training.model import I3D_MTN_AnomalyDetector

    tiny = {"width_multiplier": 1 / 16, "mtn_hidden_dim": 8, "mil_attention_dim": 4}
    for model in (I3D_MTN_AnomalyDetector(4, **tiny), build_model({"clip_length": 4, **tiny})):
        assert _dropouts(model) == {DEFAULTS["dropout"]} == {get_config("default")["dropout"]}
        assert _momenta(model) == {DEFAULTS["bn_momentum"]} == {get_config("default")["bn_momentum"]}


@pytest.mark.parametrize("bad", [0.0, 1.5, "0.1", True])
def test_a_bad_bn_momentum_is_refused_by_build_model(bad):
    with pytest.raises(ValueError, match="bn_momentum"):
        build_model({"clip_length": 4, "width_multiplier": 1 / 16, "bn_momentum": bad})
