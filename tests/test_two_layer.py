"""The hand-written two-layer gradients (`sbp_jax.two_layer`) against `jax.grad`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax import TrainConfig
from sbp_jax.engine import _autodiff_grads
from sbp_jax.two_layer import GEMM_MIN_HIDDEN, two_layer_grads, two_layer_ok

# jitted (config and layout static): one compiled program per case instead of one per eager op
_two_layer = jax.jit(two_layer_grads, static_argnums=(0, 1))
_autodiff = jax.jit(_autodiff_grads, static_argnums=(0, 1))


@pytest.mark.parametrize("layers,loss,act,bias,skip,batch", [
    ((2, 8, 1), "mse", "relu", False, False, False),  # batched matrix product (GEMM_MIN_HIDDEN)
    ((3, 12, 1), "mse", "relu", True, True, False),
    ((2, 4, 1), "mse", "relu", True, False, True),  # per-unit sums
    ((2, 8, 1), "bce", "relu", False, True, True),
    ((2, 4, 1), "bce", "identity", True, True, False),  # mask 1: K sums
    ((2, 8, 1), "mse", "identity", False, False, False),
])
def test_two_layer_grads_match_autodiff(layers, loss, act, bias, skip, batch):
    """`two_layer_grads` (A[j,k] = Σ_s δ·m_j·x̃_k, dW0 = w1·A, dW1 = Σ_k w0·A, skip and bias edges)
    against `jax.grad` of each config's task loss, on 6 configs with random edges (some hidden units
    dead on every sample, some on none), in every formulation it has, on shared data and on
    per-config minibatches with a ragged last batch's weights."""
    assert GEMM_MIN_HIDDEN == 8  # the cases cover both sides of it
    cfg = TrainConfig(layers=layers, loss=loss, hidden_activation=act, bias=bias, skip=skip)
    assert two_layer_ok(cfg) is None
    rng = np.random.default_rng(sum(layers))
    S, C = 50, 6
    shape = (S, layers[0], C if batch else 1)
    x = jnp.asarray(rng.uniform(-1, 1, size=shape), jnp.float32)
    y = rng.integers(0, 2, size=(S, 1, shape[2])) if loss == "bce" else rng.normal(size=(S, 1, shape[2]))
    y = jnp.asarray(y, jnp.float32)
    wts = jnp.asarray((np.arange(S) < 41)[:, None], jnp.float32) if batch else None
    edges = tuple(jnp.asarray(rng.normal(size=(*cfg.layout.shape(l), C)), jnp.float32) for l in range(2))
    task, grads = _two_layer(cfg, cfg.layout, edges, x, y, wts)
    ref_task, ref = _autodiff(cfg, cfg.layout, edges, x, y, wts)
    np.testing.assert_allclose(task, ref_task, rtol=1e-6)
    for g, r in zip(grads, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
