"""sbp_jax.datasets: disjoint stratified splits, standardisation on training
statistics only, split errors, `plain` (bundled loaders: test_bundled.py; CSV /
NPZ: test_datafiles.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sbp_jax import bundled
from sbp_jax import datasets as D

def _with_ids(n=300, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    x = np.column_stack([np.arange(n), rng.normal(size=(n, 2)) + y[:, None]])
    return x, y


def _ids(ds: D.Dataset, split: str) -> np.ndarray:
    x = ds.split(split)[0]
    return np.rint(x[:, 0].astype(np.float64) * ds.x_std[0] + ds.x_mean[0]).astype(int)


def test_splits_are_disjoint_cover_everything_and_are_stratified():
    x, y = _with_ids()
    ds = D.from_arrays(x, y, val_frac=0.2, test_frac=0.25, seed=3)
    ids = {s: _ids(ds, s) for s in ("train", "val", "test")}
    all_ids = np.concatenate(list(ids.values()))
    assert len(all_ids) == len(set(all_ids.tolist())) == len(x)  # disjoint and complete
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(ds.split(s)[1], y[ids[s]])  # labels travel with their rows
        share = np.bincount(ds.split(s)[1], minlength=3) / len(ids[s])
        np.testing.assert_allclose(share, np.bincount(y) / len(y), atol=1.5 / len(ids[s]) + 0.01)
    other = D.from_arrays(x, y, val_frac=0.2, test_frac=0.25, seed=4)
    assert set(_ids(other, "test").tolist()) != set(ids["test"].tolist())  # the seed matters
    same = D.from_arrays(x, y, val_frac=0.2, test_frac=0.25, seed=3)
    np.testing.assert_array_equal(same.x_test, ds.x_test)


def test_no_validation_split_when_val_frac_is_zero():
    x, y = _with_ids()
    ds = D.from_arrays(x, y, val_frac=0.0, test_frac=0.2)
    assert ds.x_val.shape == (0, 3) and len(ds.y_val) == 0 and len(ds.x_train) == 240


def test_standardisation_uses_training_statistics_only():
    x, y = _with_ids(seed=1)
    ds = D.from_arrays(x, y, seed=0)
    np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(0), 1, atol=1e-4)
    # Make every non-training row wildly different: training data and statistics must not move.
    held_out = np.concatenate([_ids(ds, "val"), _ids(ds, "test")])
    x2 = x.copy()
    x2[held_out, 1:] = x2[held_out, 1:] * 100 + 1e4
    ds2 = D.from_arrays(x2, y, seed=0)
    np.testing.assert_array_equal(ds2.x_mean, ds.x_mean)
    np.testing.assert_array_equal(ds2.x_std, ds.x_std)
    np.testing.assert_array_equal(ds2.x_train, ds.x_train)
    assert ds2.x_test[:, 1:].mean() > 100  # the held-out rows are scaled with the training stats


def test_regression_targets_standardised_on_train():
    ds = bundled.diabetes()
    assert abs(float(ds.y_train.mean())) < 1e-5 and abs(float(ds.y_train.std()) - 1) < 1e-4
    assert 100 < ds.y_mean < 200 and ds.y_std > 10
    raw_test = ds.y_test[:, 0] * ds.y_std + ds.y_mean
    assert raw_test.min() >= 25 - 1e-3 and raw_test.max() <= 346 + 1e-3


def test_constant_columns_do_not_divide_by_zero():
    ds = bundled.digits()  # several pixels are always 0
    assert np.all(np.isfinite(ds.x_train)) and np.all(ds.x_std > 0)


# --------------------------------------------------------------------- CSV
@pytest.mark.parametrize("kwargs, needle", [
    ({"val_frac": 1.2}, "val_frac=1.2"),
    ({"test_frac": -0.1}, "test_frac=-0.1"),
    ({"val_frac": 0.5, "test_frac": 0.5}, "val_frac + test_frac"),
    ({"task": "ranking"}, "task='ranking'"),
])
def test_bad_split_arguments(kwargs, needle):
    x, y = _with_ids()
    with pytest.raises(ValueError) as e:
        D.from_arrays(x, y, **kwargs)
    assert needle in str(e.value)


def test_plain_keeps_arrays_as_they_are():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.array([0, 1, 2, 0, 1, 2], np.int32)
    ds = D.plain(x, y)
    assert ds.kind == "multiclass" and ds.n_out == 3 and ds.x_val.shape == (0, 2)
    np.testing.assert_array_equal(ds.x_train, x)
    np.testing.assert_array_equal(ds.x_test, x)
