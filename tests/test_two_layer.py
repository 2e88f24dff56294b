"""The hand-written two-layer gradients (`sbp_jax.two_layer`) against `jax.grad`."""

from __future__ import annotations

import jax
import pytest
from conftest import assert_grads_match_autodiff

from sbp_jax import TrainConfig
from sbp_jax.two_layer import GEMM_MIN_HIDDEN, two_layer_grads, two_layer_ok

# jitted (config and layout static): one compiled program per case instead of one per eager op
_two_layer = jax.jit(two_layer_grads, static_argnums=(0, 1))


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
    assert_grads_match_autodiff(_two_layer, cfg, batch=batch, per_config=batch)
