import pytest
import torch
import torch.nn.functional as F

from training.configs import ConfigError, create_experiment_config, get_config
from training.model import InceptionI3d, build_model
from training.model.motion_init import init_motion_filters_


def _stem_response(weight, video):
    # valid in time (no edge of zero frames), mean absolute response per filter: (C,)
    return F.conv3d(video, weight, padding=(0, 3, 3)).abs().mean(dim=(0, 2, 3, 4))


def _videos():
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 3, 1, 32, 32, generator=g)
    static = frame.expand(1, 3, 8, 32, 32).contiguous()
    moving = torch.cat([torch.roll(frame, shifts=2 * t, dims=-1) for t in range(8)], dim=2)  # pans right
    return static, moving


def test_motion_filters_ignore_a_still_scene_and_answer_a_moving_one():
    weight = torch.randn(8, 3, 7, 7, 7)
    assert init_motion_filters_(weight, 0.5) == 4
    static, moving = _videos()
    still, motion = _stem_response(weight, static), _stem_response(weight, moving)
    assert torch.all(still[:4] < 1e-5)  # a temporal derivative of a still scene is zero
    assert torch.all(motion[:4] > 100 * still[:4] + 1e-3)
    assert torch.all(still[4:] > 1e-2)  # the random filters, left alone, answer the still scene too


def test_motion_filters_cover_both_signs_and_orders_at_the_he_scale():
    weight = torch.randn(8, 3, 7, 7, 7)
    init_motion_filters_(weight, 0.5)
    profiles = weight[:4].sum(dim=(1, 3, 4))  # (4, kt): each filter's temporal profile
    assert torch.allclose(profiles[0], -profiles[1]) and torch.allclose(profiles[2], -profiles[3])
    assert torch.allclose(profiles.sum(dim=1), torch.zeros(4), atol=1e-6)  # derivatives: zero DC
    assert (profiles[0] != 0).sum() == 2 and (profiles[2] != 0).sum() == 3  # first and second differences
    he = (2 / (3 * 7**3)) ** 0.5 * (3 * 7**3) ** 0.5
    assert torch.allclose(weight[:4].flatten(1).norm(dim=1), torch.full((4,), he), rtol=1e-4)


def test_fraction_zero_and_short_kernels_leave_the_weight_alone():
    weight = torch.randn(8, 3, 7, 7, 7)
    before = weight.clone()
    assert init_motion_filters_(weight, 0.0) == 0
    short = torch.randn(8, 3, 2, 3, 3)
    assert init_motion_filters_(short.clone(), 1.0) == 0
    assert torch.equal(weight, before)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_fraction_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="fraction"):
        init_motion_filters_(torch.randn(8, 3, 7, 7, 7), bad)
    with pytest.raises(ValueError, match="motion_filters"):
        InceptionI3d(width_multiplier=0.125, motion_filters=bad)
    with pytest.raises(ConfigError, match="motion_filters"):
        create_experiment_config(get_config("debug"), motion_filters=bad)


def test_config_motion_filters_reaches_the_stem_without_changing_the_state_dict():
    static, _ = _videos()
    on = build_model(create_experiment_config(get_config("debug"), motion_filters=0.5))
    off = build_model(create_experiment_config(get_config("debug"), motion_filters=0.0))
    assert on.state_dict().keys() == off.state_dict().keys()
    quiet = lambda m: int((_stem_response(m.backbone.Conv3d_1a_7x7.conv3d.weight, static) < 1e-5).sum())  # noqa: E731
    assert quiet(on) == 4 and quiet(off) == 0  # debug stem: 8 filters
