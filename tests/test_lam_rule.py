"""lam_rule: the counting quantile against jnp.quantile, and the warm-up ramp by hand.

The rule as the L1 transforms use it (schedules, per-layer λ, the controller) is tested in
test_penalty.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax.lam_rule import COUNTING_QUANTILE_MAX, LamRule, quantile, warmup_ramp


@pytest.mark.parametrize("n", [1, 2, 5, 12, COUNTING_QUANTILE_MAX, COUNTING_QUANTILE_MAX + 1])
@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.7, 1.0])
def test_quantile_equals_jnp_quantile(n, q):
    g = jnp.asarray(np.random.default_rng(n).exponential(size=n), jnp.float32)
    g = g.at[n // 2].set(g[0])  # a tie
    np.testing.assert_allclose(float(jax.jit(quantile, static_argnums=1)(g, q)), float(jnp.quantile(g, q)),
                               rtol=1e-6)


def test_quantile_nan_propagates():
    g = jnp.array([0.1, jnp.nan, 0.3], jnp.float32)
    assert np.isnan(float(quantile(g, 0.5)))


def test_warmup_ramp_by_hand():
    s = warmup_ramp(100, 200)
    assert [float(s(t)) for t in (0, 99, 100, 200, 300, 400)] == pytest.approx([0, 0, 0, 0.5, 1, 1])
    step = warmup_ramp(3, 0)
    assert [float(step(t)) for t in range(5)] == [0, 0, 0, 1, 1]


def test_plain_rule_keeps_lam():
    rule = LamRule(jnp.float32(0.3))
    assert rule.plain()
    w = (jnp.ones((2, 2), jnp.float32), jnp.ones((1, 2), jnp.float32))
    lams, state = rule.step(rule.init(), w, w)
    assert [float(x) for x in lams] == pytest.approx([0.3, 0.3]) and int(state.count) == 1
