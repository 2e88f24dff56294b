"""train(): no recompilation across λ, lr, ε, keys, divergence detection, and
data validation before tracing (the reference loop itself: test_reference.py)."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SMALL, adam_promotion

from sbp_jax import TrainConfig, check_data, train
from sbp_jax.metrics import evaluate

# `sbp_jax.train` is the re-exported function; the module is reached this way.
train_mod = importlib.import_module("sbp_jax.train")


@pytest.fixture(autouse=True, scope="module")
def _standard_promotion_for_adam():
    with adam_promotion():
        yield


def test_l1_prunes_and_lambda_zero_learns(xy):
    free = train(SMALL.replace(lam=0.0), *xy, jax.random.key(0))
    assert free.history.task_loss[-1] < 0.5 * free.history.task_loss[0]
    x, y = (jnp.asarray(a) for a in xy)
    assert float(evaluate(free.edges, x, y, loss="bce", hidden_activation="relu")["accuracy"]) > 0.6
    sparse = train(SMALL.replace(lam=1.0), *xy, jax.random.key(0))
    assert int(sparse.history.active_edges[-1]) <= 2 < SMALL.total_edges


def test_changing_lambda_lr_eps_does_not_recompile(xy):
    train(SMALL, *xy, jax.random.key(0))  # compiled (here or by an earlier test)
    size = train_mod._train_jit._cache_size()
    results = [
        train(SMALL.replace(lam=lam, lr=lr, eps=eps), *xy, jax.random.key(seed))
        for lam, lr, eps, seed in [(0.0, 0.1, 0.0, 1), (0.3, 1e-4, 0.5, 2), (1e-3, 0.02, 1e-3, 0)]
    ]
    assert train_mod._train_jit._cache_size() == size
    # ... and the traced values are really used
    assert not np.array_equal(results[0].edges[0], results[1].edges[0])
    assert int(results[1].history.active_edges[0]) < SMALL.total_edges  # ε = 0.5 counts fewer
    assert float(results[0].history.penalty[0]) == 0.0
    # a different static setting does compile a new program (an odd one, so
    # that no other test has compiled it already)
    train(SMALL.replace(epochs=13, history_every=13), *xy, jax.random.key(0))
    assert train_mod._train_jit._cache_size() == size + 1


def test_same_key_same_result_different_key_different_result(xy):
    a = train(SMALL, *xy, jax.random.key(11))
    b = train(SMALL, *xy, jax.random.key(11))
    c = train(SMALL, *xy, jax.random.key(12))
    assert all(np.asarray(u).tobytes() == np.asarray(v).tobytes() for u, v in zip(a.edges, b.edges))
    assert not np.array_equal(a.edges[0], c.edges[0])


DIVERGING_LR = 1e20  # lr = 1e6 or 1e10 stays finite (weights ~1e10): too small


def test_divergence_is_reported(xy):
    res = train(SMALL.replace(lr=DIVERGING_LR), *xy, jax.random.key(0))
    at = int(res.diverged_at)
    loss = np.asarray(res.history.loss)
    assert at >= 0
    assert not np.isfinite(loss[at]) and np.all(np.isfinite(loss[:at]))


# --- data validation, before anything is traced ------------------------------


@pytest.fixture
def no_trace(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("_train_jit was called: validation must happen before tracing")

    monkeypatch.setattr(train_mod, "_train_jit", fail)


X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
Y = np.array([[0], [1], [1], [0]], np.float32)
CFG = TrainConfig(layers=(2, 3, 1), epochs=5)
CE = TrainConfig(layers=(2, 3, 3), loss="cross_entropy", epochs=5)
NAN_X = X.copy()
NAN_X[1, 0] = np.nan
INF_X = X.copy()
INF_X[2, 1] = np.inf
NAN_Y = Y.copy()
NAN_Y[0, 0] = np.nan
INF_Y = Y.copy()
INF_Y[3, 0] = -np.inf

BAD_DATA = {
    "x too wide": (CFG, np.zeros((4, 3), np.float32), Y, ValueError, ["x.shape=(4, 3)", "(n_samples, 2)"]),
    "x 1-d": (CFG, np.zeros(4, np.float32), Y, ValueError, ["x.shape=(4,)", "(n_samples, 2)"]),
    "x 3-d": (CFG, np.zeros((4, 2, 1), np.float32), Y, ValueError, ["x.shape=(4, 2, 1)"]),
    "y too wide": (CFG, X, np.zeros((4, 2), np.float32), ValueError, ["y.shape=(4, 2)", "(4, 1)"]),
    "y 1-d": (CFG, X, Y[:, 0], ValueError, ["y.shape=(4,)", "(4, 1)"]),
    "y wrong n": (CFG, X, Y[:3], ValueError, ["y.shape=(3, 1)", "(4, 1)"]),
    "x int": (CFG, X.astype(np.int32), Y, TypeError, ["x.dtype=int32", "floating"]),
    "x bool": (CFG, X.astype(bool), Y, TypeError, ["x.dtype=bool", "floating"]),
    "x nan": (CFG, NAN_X, Y, ValueError, ["x contains NaN or inf", "finite"]),
    "x inf": (CFG, INF_X, Y, ValueError, ["x contains NaN or inf", "finite"]),
    "y nan": (CFG.replace(loss="mse"), X, NAN_Y, ValueError, ["y contains NaN or inf", "finite"]),
    "y inf": (CFG.replace(loss="mse"), X, INF_Y, ValueError, ["y contains NaN or inf", "finite"]),
    "y nan bce": (CFG, X, NAN_Y, ValueError, ["y", "NaN"]),
    "empty": (CFG, np.zeros((0, 2), np.float32), np.zeros((0, 1), np.float32), ValueError, ["x.shape=(0, 2)", "at least one sample"]),
    "bce labels": (CFG, X, Y * 0.5, ValueError, ["y has values other than 0 and 1", "{0, 1}", "bce"]),
    "bce label 2": (CFG, X, Y * 2, ValueError, ["y has values other than 0 and 1"]),
    "ce float labels": (CE, X, np.array([0.0, 1.0, 2.0, 1.0], np.float32), TypeError, ["y.dtype=float32", "integer"]),
    "ce 2-d labels": (CE, X, np.zeros((4, 3), np.int32), ValueError, ["y.shape=(4, 3)", "(4,)"]),
    "ce label too big": (CE, X, np.array([0, 1, 3, 1], np.int32), ValueError, ["labels in [0, 3]", "0..2"]),
    "ce label negative": (CE, X, np.array([0, -1, 2, 1], np.int32), ValueError, ["labels in [-1, 2]", "0..2"]),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_raises_before_tracing(case, no_trace):
    cfg, x, y, exc, parts = BAD_DATA[case]
    for call in (lambda: check_data(cfg, x, y), lambda: train(cfg, x, y, jax.random.key(0))):
        with pytest.raises(exc) as e:
            call()
        for p in parts:
            assert p in str(e.value), f"{p!r} not in {str(e.value)!r}"


def test_check_data_names_test_arrays():
    with pytest.raises(ValueError, match=r"y_test\.shape=\(4, 2\)"):
        check_data(CFG, X, np.zeros((4, 2), np.float32), name="x_test")
    with pytest.raises(ValueError, match=r"x_test contains NaN"):
        check_data(CFG, NAN_X, Y, name="x_test")


def test_check_data_converts_good_data():
    x, y = check_data(CFG, X.astype(np.float64), Y.astype(np.int64))  # integer 0/1 labels are fine
    assert x.dtype == jnp.float32 and y.dtype == jnp.float32
    np.testing.assert_array_equal(y, Y)
    x, y = check_data(CE, X.tolist(), [0, 1, 2, 1])
    assert x.dtype == jnp.float32 and y.dtype == jnp.int32


def test_train_rejects_a_non_config(no_trace):
    with pytest.raises(TypeError, match="config="):
        train({"layers": (2, 3, 1)}, X, Y, jax.random.key(0))
