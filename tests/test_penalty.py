"""The L1 transform `add_l1_subgradient` and the paper's optimizer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import adam_promotion

from sbp_jax import add_l1_subgradient, l1_norm, make_optimizer

PARAMS = (
    jnp.array([[0.5, -0.25, 0.0], [-1.0, 0.0, 2.0]], jnp.float32),
    jnp.array([[3.0, -0.125]], jnp.float32),
)
GRADS = (
    jnp.array([[0.1, 0.2, -0.3], [0.0, 1.5, -2.0]], jnp.float32),
    jnp.array([[-0.7, 0.9]], jnp.float32),
)


def test_l1_norm():
    assert float(l1_norm(PARAMS)) == 0.5 + 0.25 + 1.0 + 2.0 + 3.0 + 0.125
    assert l1_norm(PARAMS).shape == ()


@pytest.mark.parametrize("lam", [0.0, 0.01, 0.3, 2.0])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_adds_lambda_sign_exactly(lam, jit):
    tx = add_l1_subgradient(lam)
    state = tx.init(PARAMS)
    assert state == optax.EmptyState()
    update = jax.jit(tx.update) if jit else tx.update
    out, new_state = update(GRADS, state, PARAMS)
    assert new_state == optax.EmptyState()
    for g, w, u in zip(GRADS, PARAMS, out):
        # float32 reference; sign(0) = 0, so zero weights get the bare gradient
        expected = np.asarray(g) + np.float32(lam) * np.sign(np.asarray(w))
        assert u.dtype == jnp.float32
        np.testing.assert_array_equal(u, expected)
    # the hand-computed corner cases
    if lam == 0.3:
        np.testing.assert_allclose(out[0][0], [0.1 + 0.3, 0.2 - 0.3, -0.3], rtol=1e-6)
        np.testing.assert_array_equal(out[0][1, 1], np.float32(1.5))  # w = 0


def test_needs_params():
    # optax.chain forwards params=None when the caller gives none
    tx = optax.chain(add_l1_subgradient(0.1))
    with pytest.raises(ValueError, match="params"):
        tx.update(GRADS, tx.init(PARAMS))


def test_traced_lambda_does_not_recompile():
    calls = []

    @jax.jit
    def step(lam, g, w):
        calls.append(1)  # runs once per trace
        tx = add_l1_subgradient(lam)
        return tx.update(g, tx.init(w), w)[0]

    for lam in (0.1, 0.2, 0.0, 5.0):
        out = step(jnp.float32(lam), GRADS, PARAMS)
        np.testing.assert_array_equal(out[1], np.asarray(GRADS[1]) + np.float32(lam) * np.sign(np.asarray(PARAMS[1])))
    assert len(calls) == 1
    assert step._cache_size() == 1


def _run(tx, steps, seed):
    rng = np.random.default_rng(seed)
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(steps):
        g = jax.tree.map(lambda w: jnp.asarray(rng.normal(size=w.shape), jnp.float32), params)
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_zero_lambda_chain_equals_plain_adam_bitwise():
    with adam_promotion():
        a = _run(optax.chain(add_l1_subgradient(0.0), optax.adam(1e-2)), 6, 0)
        b = _run(optax.adam(1e-2), 6, 0)
        c = _run(optax.chain(add_l1_subgradient(0.1), optax.adam(1e-2)), 6, 0)
    for u, v in zip(a, b):
        assert np.asarray(u).tobytes() == np.asarray(v).tobytes()
    assert not np.array_equal(a[0], c[0])  # and λ > 0 does change the trajectory


def test_make_optimizer_adds_l1_before_adam():
    """With zero task gradient the first Adam step normalises λ·sign(w):
    update = -lr · λ·sign(w) / (|λ·sign(w)| + 1e-8) ≈ -lr·sign(w), and 0 where w = 0.
    (L1 added after Adam would give -λ·sign(w) instead.)"""
    lam, lr = 0.05, 0.01
    zero = jax.tree.map(jnp.zeros_like, PARAMS)
    with adam_promotion():
        opt = make_optimizer(jnp.float32(lam), jnp.float32(lr))
        updates, _ = opt.update(zero, opt.init(PARAMS), PARAMS)
    for u, w in zip(updates, PARAMS):
        np.testing.assert_allclose(u, -lr * np.sign(np.asarray(w)), rtol=1e-5, atol=1e-9)


def test_make_optimizer_equals_chain_with_optax_adam():
    """Our Adam (`penalty.scale_by_adam`: the bias correction as a reciprocal multiply) is
    `optax.adam` to float32 rounding, with the same state layout; λ = 0 and λ > 0."""
    for lam in (0.0, 0.02):
        with adam_promotion():
            a = _run(make_optimizer(lam, 0.003), 4, 7)
            b = _run(optax.chain(add_l1_subgradient(lam), optax.adam(0.003)), 4, 7)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=2e-6, atol=1e-7)


def test_scale_by_adam_state_and_constants_are_optax_adams():
    from sbp_jax.penalty import ADAM_EPS, B1, B2, scale_by_adam

    g = jax.tree.map(lambda w: w * 0.5 + 0.1, PARAMS)
    ours, theirs = scale_by_adam(), optax.scale_by_adam(B1, B2, ADAM_EPS)
    with adam_promotion():
        s1, s2 = ours.init(PARAMS), theirs.init(PARAMS)
        assert jax.tree.structure(s1) == jax.tree.structure(s2)
        for _ in range(3):
            (u1, s1), (u2, s2) = ours.update(g, s1), theirs.update(g, s2)
            for a, b in zip(jax.tree.leaves((u1, s1)), jax.tree.leaves((u2, s2))):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    assert (B1, B2, ADAM_EPS) == (0.9, 0.999, 1e-8)  # optax.adam's defaults, the paper's Adam
