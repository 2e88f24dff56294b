"""The objective: task losses on hand-computed cases; gradient vs finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax import l1_norm, objective, task_loss
from sbp_jax.objective import task_loss_from_logits


def test_bce_hand_computed():
    z = jnp.array([[0.0], [2.0], [-1.0]], jnp.float32)
    y = jnp.array([[1.0], [0.0], [0.0]], jnp.float32)
    expected = np.mean([np.log(2.0), np.log1p(np.exp(2.0)), np.log1p(np.exp(-1.0))])
    np.testing.assert_allclose(task_loss_from_logits(z, y, "bce"), expected, rtol=1e-6)


def test_bce_is_stable_for_large_logits():
    z = jnp.array([[100.0], [-100.0], [100.0]], jnp.float32)
    y = jnp.array([[1.0], [0.0], [0.0]], jnp.float32)
    loss = task_loss_from_logits(z, y, "bce")
    np.testing.assert_allclose(loss, 100.0 / 3, rtol=1e-6)  # only the wrong one costs, 100
    g = jax.grad(task_loss_from_logits)(z, y, "bce")
    assert np.all(np.isfinite(g))


def test_mse_hand_computed():
    z = jnp.array([[1.0, 2.0], [3.0, 4.0]], jnp.float32)
    y = jnp.array([[1.0, 0.0], [0.0, 4.0]], jnp.float32)
    np.testing.assert_allclose(task_loss_from_logits(z, y, "mse"), (4.0 + 9.0) / 4, rtol=1e-6)


def test_cross_entropy_hand_computed():
    z = jnp.array([[0.0, 0.0, 0.0], [np.log(3.0), 0.0, 0.0]], jnp.float32)
    y = jnp.array([2, 0], jnp.int32)
    # uniform softmax: -log(1/3); second row p(0) = 3 / 5
    np.testing.assert_allclose(task_loss_from_logits(z, y, "cross_entropy"), (np.log(3.0) - np.log(0.6)) / 2, rtol=1e-6)


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss='hinge'"):
        task_loss_from_logits(jnp.zeros((1, 1), jnp.float32), jnp.zeros((1, 1), jnp.float32), "hinge")


def test_objective_is_task_loss_plus_lambda_l1():
    rng = np.random.default_rng(1)
    edges = (jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), jnp.asarray(rng.normal(size=(1, 3)), jnp.float32))
    x = jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)
    y = jnp.array([[0.0], [1.0], [1.0], [0.0]], jnp.float32)
    f = jax.jit(lambda e, lam: (task_loss(e, x, y, loss="bce", hidden_activation="relu"),
                                objective(e, x, y, lam, loss="bce", hidden_activation="relu")))
    t, o = f(edges, jnp.float32(0.25))
    l1 = sum(np.abs(np.asarray(w, np.float64)).sum() for w in edges)
    np.testing.assert_allclose(o, float(t) + 0.25 * l1, rtol=1e-6)
    np.testing.assert_allclose(l1_norm(edges), l1, rtol=1e-6)
    t0, o0 = f(edges, jnp.float32(0.0))
    assert float(o0) == float(t0) == float(t)


def _problem(loss, dtype):
    """A tiny net with every |w| >= 0.2 and every hidden pre-activation at
    least 1e-2 from 0, so the objective is smooth near the point (NumPy data:
    the test is about the objective, not about initialisation)."""
    layers = (2, 3, 2) if loss != "bce" else (2, 3, 1)
    rng = np.random.default_rng(0)
    while True:  # deterministic: the first draw that keeps away from the relu kinks
        edges = [rng.uniform(0.2, 1.0, (b, a)) * rng.choice([-1.0, 1.0], (b, a)) for a, b in zip(layers[:-1], layers[1:])]
        x = rng.normal(size=(6, 2))
        if np.min(np.abs(x @ edges[0].T)) > 1e-2:
            break
    if loss == "bce":
        y = np.array([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]])
    elif loss == "mse":
        y = rng.normal(size=(6, 2))
    else:
        y = np.array([0, 1, 1, 0, 1, 0], np.int32)
    cast = lambda a: jnp.asarray(a, dtype) if a.dtype.kind == "f" else jnp.asarray(a)
    return tuple(cast(w) for w in edges), cast(x), cast(y)


@pytest.mark.parametrize("loss", ["bce", "mse", "cross_entropy"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_gradient_matches_central_differences(loss, act):
    lam = 0.1

    def make(x, y):
        return lambda e: objective(e, x, y, lam, loss=loss, hidden_activation=act)

    with jax.enable_x64(True):
        edges, x, y = _problem(loss, jnp.float64)
        f = jax.jit(make(x, y))
        grad = jax.jit(jax.grad(make(x, y)))(edges)
        assert all(g.dtype == jnp.float64 for g in grad)
        h = 1e-6
        base = [np.asarray(w, np.float64) for w in edges]
        for l, w in enumerate(base):
            fd = np.zeros(w.shape)
            for idx in np.ndindex(*w.shape):
                def at(s):
                    moved = [b.copy() for b in base]
                    moved[l][idx] += s * h
                    return float(f(tuple(jnp.asarray(m) for m in moved)))
                fd[idx] = (at(1.0) - at(-1.0)) / (2 * h)
            np.testing.assert_allclose(grad[l], fd, rtol=1e-6, atol=1e-8, err_msg=f"layer {l}")
        grad = [np.asarray(g) for g in grad]
    # and the float32 gradient the trainer uses agrees with the float64 one
    e32, x32, y32 = _problem(loss, jnp.float32)
    g32 = jax.jit(jax.grad(make(x32, y32)))(e32)
    for a, b in zip(g32, grad):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_l1_gradient_is_lambda_sign():
    """The penalty's own gradient: λ·sign(w) (task loss held at zero by y = z)."""
    edges = (jnp.array([[0.5, -0.3]], jnp.float32),)
    x = jnp.array([[1.0, 1.0]], jnp.float32)
    y = jnp.array([[0.2]], jnp.float32)  # 0.5 - 0.3: the mse is zero at this point
    g = jax.jit(jax.grad(objective), static_argnames=("loss", "hidden_activation"))(edges, x, y, 0.7, loss="mse", hidden_activation="relu")
    np.testing.assert_allclose(g[0], [[0.7, -0.7]], rtol=1e-6)
