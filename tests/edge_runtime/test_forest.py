"""A tree ensemble from plain arrays equals scikit-learn's forest; its file loads without unpickling."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.forest import ForestError, load_forest

sklearn_ensemble = pytest.importorskip("sklearn.ensemble", reason="the conversion is on the training side")


@pytest.fixture(scope="module")
def fitted():
    from training.motion_forest import forest_arrays

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12)).astype(np.float32)
    y = (x[:, 0] + x[:, 3] * x[:, 5] + 0.5 * rng.normal(size=400) > 0).astype(int)
    model = sklearn_ensemble.RandomForestClassifier(20, min_samples_leaf=2, random_state=0).fit(x, y)
    return model, forest_arrays(model, "test-stats/1"), rng.normal(size=(300, 12))


def test_the_forest_equals_sklearns_predict_proba(fitted):
    model, forest, x = fitted
    expected = model.predict_proba(x)[:, 1]
    np.testing.assert_allclose(forest.predict(x), expected, atol=1e-6, rtol=0)
    assert forest.n_trees == 20 and np.ptp(expected) > 0.5  # the scores vary: the comparison can fail


def test_a_saved_forest_loads_back_equal(fitted, tmp_path):
    _, forest, x = fitted
    loaded = load_forest(forest.save(tmp_path / "forest.npz"))
    np.testing.assert_array_equal(loaded.predict(x), forest.predict(x))
    assert loaded.stats_version == "test-stats/1"


def test_rows_of_the_wrong_width_are_refused(fitted):
    with pytest.raises(ForestError, match="rows of 12 features"):
        fitted[1].predict(np.zeros((2, 11)))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(left=a["left"] * 0), "point forward"),  # a child pointing back: a loop
        (lambda a: a.update(format=np.array("other/1")), "forest format"),
        (lambda a: a.pop("roots"), "missing"),
        (lambda a: a.update(value=a["value"][:-1]), "one per node"),
    ],
)
def test_a_broken_forest_file_is_refused_naming_it(fitted, tmp_path, change, message):
    path = fitted[1].save(tmp_path / "forest.npz")
    with np.load(path) as data:
        arrays = dict(data)
    change(arrays)
    np.savez(path, **arrays)
    with pytest.raises(ForestError, match=message) as exc:
        load_forest(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_file_that_is_not_a_forest_is_refused(tmp_path):
    bad = tmp_path / "forest.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ForestError, match="not a forest file"):
        load_forest(bad)
