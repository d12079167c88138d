"""The I3D backbone: structure, names, widths, shapes, padding and parameter count."""

import pytest
import torch
import torch.nn.functional as F

from training.model.i3d import (
    ENDPOINTS,
    MIN_INPUT_SIZE,
    PARAMS_FULL_WIDTH,
    PARAMS_FULL_WIDTH_FEATURES,
    InceptionI3d,
    InceptionModule,
    MaxPool3dSame,
    Unit3D,
)

TINY = 1 / 16


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _expected_full_width_params() -> int:
    """Parameters of I3D from the published widths (docs/architecture.md), independently of the model code."""
    total = 0

    def unit(cin: int, cout: int, k: int) -> None:
        nonlocal total
        total += cin * cout * k**3 + 2 * cout  # conv (no bias) + BN scale and shift

    unit(3, 64, 7)
    unit(64, 64, 1)
    unit(64, 192, 3)
    blocks = [
        (192, [64, 96, 128, 16, 32, 32]),
        (256, [128, 128, 192, 32, 96, 64]),
        (480, [192, 96, 208, 16, 48, 64]),
        (512, [160, 112, 224, 24, 64, 64]),
        (512, [128, 128, 256, 24, 64, 64]),
        (512, [112, 144, 288, 32, 64, 64]),
        (528, [256, 160, 320, 32, 128, 128]),
        (832, [256, 160, 320, 32, 128, 128]),
        (832, [384, 192, 384, 48, 128, 128]),
    ]
    for cin, (b0, b1a, b1b, b2a, b2b, b3b) in blocks:
        unit(cin, b0, 1)
        unit(cin, b1a, 1)
        unit(b1a, b1b, 3)
        unit(cin, b2a, 1)
        unit(b2a, b2b, 3)
        unit(cin, b3b, 1)
    return total + 1024 * 400 + 400  # Logits conv with bias


def test_full_width_parameter_count_is_the_published_i3d():
    model = InceptionI3d()
    count = _num_params(model)
    print(f"I3D full width: {count:,} parameters ({count - (1024 * 400 + 400):,} without Logits)")
    assert count == _expected_full_width_params() == PARAMS_FULL_WIDTH
    assert _num_params(model) - _num_params(model.logits) == PARAMS_FULL_WIDTH_FEATURES
    # The figure quoted for I3D (Carreira & Zisserman 2017, table 1): 12M, i.e. 12.3 M without Logits.
    assert abs(PARAMS_FULL_WIDTH_FEATURES - 12.3e6) / 12.3e6 < 0.02


def test_full_width_feature_dim_is_1024():
    assert InceptionI3d().feature_dim == 1024


def test_endpoints_are_submodules_in_order():
    model = InceptionI3d(width_multiplier=TINY)
    children = [name for name, _ in model.named_children()]
    built = [name for name in children if name in ENDPOINTS]
    assert built == list(ENDPOINTS[:-1])
    assert isinstance(model.logits, Unit3D)  # the Logits endpoint, named as in pytorch-i3d
    for name in ENDPOINTS:
        if name.startswith("Mixed_"):
            assert isinstance(getattr(model, name), InceptionModule)
        elif name.startswith("MaxPool3d_"):
            assert isinstance(getattr(model, name), MaxPool3dSame)


def test_state_dict_uses_the_published_key_layout():
    keys = set(InceptionI3d(width_multiplier=TINY).state_dict())
    for key in [
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.weight",
        "Conv3d_1a_7x7.bn.bias",
        "Conv3d_1a_7x7.bn.running_mean",
        "Conv3d_1a_7x7.bn.running_var",
        "Conv3d_2c_3x3.conv3d.weight",
        "Mixed_3b.b0.conv3d.weight",
        "Mixed_3b.b1a.conv3d.weight",
        "Mixed_3b.b1b.conv3d.weight",
        "Mixed_4f.b2a.bn.running_var",
        "Mixed_5c.b2b.conv3d.weight",
        "Mixed_5c.b3b.bn.weight",
        "logits.conv3d.weight",
        "logits.conv3d.bias",
    ]:
        assert key in keys
    assert not any(".b3a." in key for key in keys)  # the pooling branch has no parameters
    assert not any(k.endswith("conv3d.bias") for k in keys if not k.startswith("logits."))


def test_full_width_kernel_shapes_match_the_published_model():
    sd = InceptionI3d().state_dict()
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["Conv3d_2c_3x3.conv3d.weight"].shape == (192, 64, 3, 3, 3)
    assert sd["Mixed_4b.b1b.conv3d.weight"].shape == (208, 96, 3, 3, 3)
    assert sd["Mixed_5c.b0.conv3d.weight"].shape == (384, 832, 1, 1, 1)
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)


def test_width_multiplier_scales_every_width():
    model = InceptionI3d(width_multiplier=TINY)
    sd = model.state_dict()
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape[0] == 4  # 64 / 16
    assert sd["Mixed_3b.b2a.conv3d.weight"].shape[0] == 1  # 16 / 16
    assert model.feature_dim == 24 + 24 + 8 + 8  # Mixed_5c b0, b1b, b2b, b3b: 384, 384, 128, 128 / 16
    assert InceptionI3d(width_multiplier=1 / 64).state_dict()["Mixed_3b.b2a.conv3d.weight"].shape[0] == 1


def test_default_norm_is_batchnorm_with_i3d_eps_and_momentum():
    bn = InceptionI3d(width_multiplier=TINY).Mixed_4c.b1b.bn
    assert isinstance(bn, torch.nn.BatchNorm3d)
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)


def test_norm_layer_is_injectable():
    model = InceptionI3d(width_multiplier=TINY, norm_layer=lambda c: torch.nn.GroupNorm(1, c))
    assert isinstance(model.Conv3d_1a_7x7.bn, torch.nn.GroupNorm)
    assert isinstance(model.Mixed_5c.b3b.bn, torch.nn.GroupNorm)
    assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, model.feature_dim)


@pytest.mark.parametrize(
    "frames, size", [(8, 32), (16, 32), (12, 40), (MIN_INPUT_SIZE[0], MIN_INPUT_SIZE[1]), (5, 17)]
)
def test_features_have_feature_dim_for_small_and_odd_inputs(frames, size):
    model = InceptionI3d(width_multiplier=TINY).eval()
    with torch.no_grad():
        features = model(torch.randn(2, 3, frames, size, size))
    assert features.shape == (2, model.feature_dim)
    assert torch.isfinite(features).all()


def test_features_keep_their_scale_at_initialisation():
    model = InceptionI3d(width_multiplier=TINY).eval()
    with torch.no_grad():
        features = model(torch.randn(2, 3, 8, 32, 32))
    assert features.abs().mean() > 1e-2  # not vanished through depth


def test_too_small_snippets_are_refused_naming_the_minimum():
    model = InceptionI3d(width_multiplier=TINY)
    with pytest.raises(
        ValueError, match=r"at least \(4, 16, 16\) \(frames, height, width\), got \(8, 8, 32\)"
    ):
        model(torch.randn(1, 3, 8, 8, 32))


def test_classify_gives_class_logits():
    model = InceptionI3d(width_multiplier=TINY, num_classes=7).eval()
    with torch.no_grad():
        assert model.classify(torch.randn(3, 3, 8, 32, 32)).shape == (3, 7)


@pytest.mark.parametrize("kwargs", [{"width_multiplier": 0}, {"dropout": 1.0}, {"dropout": -0.1}])
def test_bad_constructor_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        InceptionI3d(**kwargs)


# A reference in the style of pytorch-i3d / TensorFlow: "SAME" padding computed from each input's size.
def _tf_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    pads = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _reference(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(module, Unit3D):
        conv = module.conv3d
        x = F.conv3d(_tf_same(x, conv.kernel_size, conv.stride), conv.weight, conv.bias, conv.stride)
        return F.relu(module.bn(x))
    if isinstance(module, MaxPool3dSame):
        return F.max_pool3d(_tf_same(x, module.kernel_size, module.stride), module.kernel_size, module.stride)
    if isinstance(module, InceptionModule):
        branches = [
            _reference(module.b0, x),
            _reference(module.b1b, _reference(module.b1a, x)),
            _reference(module.b2b, _reference(module.b2a, x)),
            _reference(module.b3b, _reference(module.b3a, x)),
        ]
        return torch.cat(branches, dim=1)
    raise TypeError(module)


def test_fixed_padding_equals_tf_same_padding_on_even_sizes():
    torch.manual_seed(0)
    model = InceptionI3d(width_multiplier=TINY).eval()
    x = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        ours = model.extract(x)
        ref = x
        for name in ENDPOINTS[:-1]:
            ref = _reference(getattr(model, name), ref)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
