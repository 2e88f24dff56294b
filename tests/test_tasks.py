"""The data sets."""

from __future__ import annotations

import numpy as np
import pytest

from sbp_jax import tasks


SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def _assert_same(a, b):
    for k in SPLITS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def test_xor_shapes_and_dtypes():
    d = tasks.xor()
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.shape == (100, 2) and y.shape == (100, 1)
        assert x.dtype == np.float32 and y.dtype == np.float32


def test_xor_labels_are_xor_of_the_nearest_corner():
    d = tasks.xor()
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        corner = np.round(x).astype(int)
        assert set(np.unique(corner)) <= {0, 1}  # noise 0.1 stays near its corner
        np.testing.assert_array_equal(y[:, 0], corner[:, 0] ^ corner[:, 1])
        assert np.all(np.bincount(corner[:, 0] * 2 + corner[:, 1]) == 25)  # 25 copies each
        assert 0.05 < np.std(x - corner) < 0.15  # noise of scale 0.1


def test_xor_deterministic_in_data_seed():
    _assert_same(tasks.xor(data_seed=3), tasks.xor(data_seed=3))
    a, b = tasks.xor(data_seed=0), tasks.xor(data_seed=1)
    assert not np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, a.x_test)  # the test set is a fresh draw


def test_xor_bare_is_the_four_corners():
    d = tasks.xor(bare=True)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    np.testing.assert_array_equal(d.x_train, corners)
    np.testing.assert_array_equal(d.y_train, [[0], [1], [1], [0]])
    np.testing.assert_array_equal(d.x_test, corners)
    np.testing.assert_array_equal(d.y_test, d.y_train)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.float32


def test_xor_copies_and_zero_noise():
    d = tasks.xor(copies=3, noise=0.0)
    assert d.x_train.shape == (12, 2)
    assert set(map(tuple, d.x_train.tolist())) == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}
    assert d.x_train.dtype == np.float32


@pytest.mark.parametrize("n_train,n_test", [(200, 1000), (7, 3)])
def test_addition(n_train, n_test):
    d = tasks.addition(data_seed=5, n_train=n_train, n_test=n_test)
    assert d.x_train.shape == (n_train, 2) and d.y_train.shape == (n_train, 1)
    assert d.x_test.shape == (n_test, 2) and d.y_test.shape == (n_test, 1)
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert np.all((x >= 0) & (x <= 1))
        np.testing.assert_array_equal(y[:, 0], x[:, 0] + x[:, 1])
    _assert_same(d, tasks.addition(data_seed=5, n_train=n_train, n_test=n_test))
    assert not np.array_equal(d.x_train, tasks.addition(data_seed=6, n_train=n_train, n_test=n_test).x_train)


def test_paper_tasks_are_datasets_with_an_optional_fresh_validation_draw():
    d, v = tasks.xor(), tasks.xor(val_copies=5)
    assert (d.kind, d.loss, d.n_in, d.n_out, d.x_val.shape, d.y_val.shape) == ("binary", "bce", 2, 1, (0, 2), (0, 1))
    for k in ("x_train", "y_train", "x_test", "y_test"):  # asking for validation leaves train and test unchanged
        np.testing.assert_array_equal(getattr(d, k), getattr(v, k))
    assert v.x_val.shape == (20, 2) and not np.array_equal(v.x_val, v.x_test[:20])
    a = tasks.addition(n_val=7)
    assert (a.kind, a.loss, a.x_val.shape) == ("regression", "mse", (7, 2))
    np.testing.assert_allclose(a.y_val[:, 0], a.x_val.sum(1), rtol=1e-6)
    np.testing.assert_array_equal(a.x_test, tasks.addition().x_test)


@pytest.mark.parametrize("call, needle", [
    (lambda: tasks.xor(copies=0), "copies=0"), (lambda: tasks.xor(noise=-1.0), "noise=-1.0"),
    (lambda: tasks.addition(n_train=0), "n_train=0"), (lambda: tasks.addition(n_val=-2), "n_val=-2"),
])
def test_bad_task_parameters_name_the_argument(call, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        call()
