"""adam: our Adam is optax's (constants, state, updates), with the bias correction as a multiply."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import adam_promotion

from sbp_jax.adam import ADAM_EPS, B1, B2, adam, bias_correction, scale_by_adam

PARAMS = (
    jnp.array([[0.5, -0.25, 0.0], [-1.0, 0.0, 2.0]], jnp.float32),
    jnp.array([[3.0, -0.125]], jnp.float32),
)


def test_scale_by_adam_state_and_constants_are_optax_adams():
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


def test_bias_correction_by_hand():
    c1, c2 = bias_correction(jnp.int32(1))
    assert c1.dtype == c2.dtype == jnp.float32
    assert float(c1) == pytest.approx(10.0, rel=1e-6) and float(c2) == pytest.approx(1000.0, rel=1e-4)
    c1, c2 = bias_correction(jnp.int32(2))
    assert float(c1) == pytest.approx(1 / 0.19, rel=1e-6) and float(c2) == pytest.approx(1 / 0.001999, rel=1e-4)


def test_adam_first_step_is_lr_times_sign():
    """Step 1: m̂ = g, v̂ = g², so the update is −lr·g/(|g| + ε) ≈ −lr·sign(g)."""
    g = jax.tree.map(lambda w: w - 0.3, PARAMS)
    tx = adam(0.01)
    u, _ = tx.update(g, tx.init(PARAMS))
    for ui, gi in zip(u, g):
        np.testing.assert_allclose(np.asarray(ui), -0.01 * np.sign(np.asarray(gi)), rtol=1e-5)
