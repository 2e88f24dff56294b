"""Metrics on hand-computed cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax import evaluate
from sbp_jax.metrics import accuracy, metric_names, regression_metrics


def test_accuracy_bce_sign_of_logit():
    z = jnp.array([[2.0], [-1.0], [0.5], [-3.0], [0.0]], jnp.float32)
    y = jnp.array([[1.0], [1.0], [0.0], [0.0], [1.0]], jnp.float32)
    # right, wrong, wrong, right, wrong (z = 0 means p = 0.5: predicted 0)
    np.testing.assert_allclose(accuracy(z, y, "bce"), 2 / 5, rtol=1e-6)


def test_accuracy_bce_mean_over_outputs():
    z = jnp.array([[1.0, -1.0], [1.0, 1.0]], jnp.float32)
    y = jnp.array([[1.0, 1.0], [1.0, 1.0]], jnp.float32)
    np.testing.assert_allclose(accuracy(z, y, "bce"), 3 / 4, rtol=1e-6)


def test_accuracy_cross_entropy_argmax():
    z = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.9, 0.0]], jnp.float32)
    y = jnp.array([1, 0, 1, 1], jnp.int32)
    np.testing.assert_allclose(accuracy(z, y, "cross_entropy"), 2 / 4, rtol=1e-6)


Y = jnp.array([[1.0], [2.0], [3.0], [4.0]], jnp.float32)


def test_regression_perfect():
    m = regression_metrics(Y, Y)
    assert float(m["mse"]) == 0.0 and float(m["mae"]) == 0.0 and float(m["r2"]) == 1.0


def test_regression_predicting_the_mean_has_r2_zero():
    m = regression_metrics(jnp.full_like(Y, 2.5), Y)
    np.testing.assert_allclose(m["r2"], 0.0, atol=1e-7)
    np.testing.assert_allclose(m["mse"], (2.25 + 0.25 + 0.25 + 2.25) / 4, rtol=1e-6)
    np.testing.assert_allclose(m["mae"], 1.0, rtol=1e-6)


def test_regression_hand_computed():
    z = jnp.array([[1.0], [2.0], [3.0], [5.0]], jnp.float32)
    m = regression_metrics(z, Y)
    np.testing.assert_allclose(m["mse"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(m["mae"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(m["r2"], 1 - 1 / 5, rtol=1e-6)  # SS_tot = 2.25+0.25+0.25+2.25


def test_r2_centres_each_output_on_its_own_mean():
    y = jnp.array([[1.0, 10.0], [3.0, 30.0]], jnp.float32)
    z = y.at[0, 0].add(1.0)
    # SS_tot = 1 + 1 + 100 + 100 (pooling both outputs on one mean would give more)
    np.testing.assert_allclose(regression_metrics(z, y)["r2"], 1 - 1 / 202, rtol=1e-6)


def test_evaluate_uses_the_network():
    edges = (jnp.array([[1.0, 0.0], [0.0, 1.0]], jnp.float32), jnp.array([[1.0, 1.0]], jnp.float32))
    x = jnp.array([[1.0, 2.0], [-1.0, 3.0]], jnp.float32)  # relu net: [3, 3]; identity: [3, 2]
    y = jnp.array([[3.0], [2.0]], jnp.float32)
    relu = evaluate(edges, x, y, loss="mse", hidden_activation="relu")
    ident = evaluate(edges, x, y, loss="mse", hidden_activation="identity")
    assert set(relu) == {"mse", "mae", "r2"}
    np.testing.assert_allclose(relu["mse"], 0.5, rtol=1e-6)
    assert float(ident["mse"]) == 0.0
    acc = evaluate(edges, x, jnp.array([[1.0], [0.0]], jnp.float32), loss="bce", hidden_activation="relu")
    assert set(acc) == {"accuracy"}
    np.testing.assert_allclose(acc["accuracy"], 0.5, rtol=1e-6)


def test_evaluate_jits_and_vmaps():
    edges = (jnp.array([[[1.0, -1.0]], [[2.0, 0.5]]], jnp.float32),)  # two 2->1 nets
    x = jnp.array([[1.0, 1.0], [2.0, -2.0]], jnp.float32)
    y = jnp.array([[0.0], [4.0]], jnp.float32)
    f = jax.jit(jax.vmap(lambda e: evaluate(e, x, y, loss="mse", hidden_activation="relu")))
    out = f(edges)
    # net 0 predicts [0, 4] (exact); net 1 predicts [2.5, 3] -> mse (6.25 + 1) / 2
    np.testing.assert_allclose(out["mse"], [0.0, 3.625], rtol=1e-6)


@pytest.mark.parametrize("loss,names", [("bce", ("accuracy",)), ("cross_entropy", ("accuracy",)), ("mse", ("mse", "mae", "r2"))])
def test_metric_names(loss, names):
    assert metric_names(loss) == names
