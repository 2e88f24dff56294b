"""The wide-net gradient kernel (`sbp_jax.wide`): against `jax.grad`, the reference, and chunk
neighbours / devices (bitwise)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_grads_match_autodiff, assert_tree_bitwise_equal

from sbp_jax import TrainConfig, make_grid, run_grid, tasks, train
from sbp_jax.chunks import default_mesh
from sbp_jax.kernels import select
from sbp_jax.sweep import select as select_run
from sbp_jax.wide import wide_grads, wide_ok

_wide = jax.jit(wide_grads, static_argnums=(0, 1))

# a wide net on XOR's two inputs (2·40 = 80 edges > SMALL_LAYER_EDGES), every option the kernel sees
WIDE = TrainConfig(layers=(2, 40, 1), loss="bce", epochs=60, history_every=0)
WIDE_OPTIONS = WIDE.replace(bias=True, skip=True, dropout=0.2, batch_size=32, history_every=7)


@pytest.mark.parametrize("layers,loss,act,bias,skip,batch", [
    ((30, 64, 1), "bce", "relu", False, False, False),  # the benchmark net
    ((30, 64, 1), "bce", "relu", True, False, True),
    ((3, 40, 1), "mse", "relu", True, True, False),
    ((3, 40, 1), "mse", "identity", False, True, True),
    ((5, 16, 1), "bce", "identity", True, False, False),
])
def test_wide_grads_match_autodiff(layers, loss, act, bias, skip, batch):
    """`wide_grads` (z = x̃·W0 and A = x̃ᵀ·M as products over every config's units, dW0 = w1·A,
    dW1 = Σ_k w0·A, skip and bias edges) against `jax.grad` of each config's task loss on 6 configs
    (some hidden units dead on every sample), on shared data with and without a ragged minibatch's
    sample weights."""
    cfg = TrainConfig(layers=layers, loss=loss, hidden_activation=act, bias=bias, skip=skip)
    assert wide_ok(cfg) is None
    assert_grads_match_autodiff(_wide, cfg, batch=batch)


def test_wide_per_config_data_take_the_fallback():
    cfg = WIDE.replace(bias=True)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, size=(20, 2, 3)), jnp.float32)
    edges = tuple(jnp.asarray(rng.normal(size=(*cfg.layout.shape(l), 3)), jnp.float32) for l in range(2))
    got = wide_grads(cfg, cfg.layout, edges, x, x[:, :1], None, fallback=lambda *a: "fallback")
    assert got == "fallback"


def test_select_takes_wide_for_wide_nets_only():
    assert select(WIDE.static_part(), single=False) == ("wide", None)
    assert select(WIDE.replace(bias=True).static_part(), single=True).kernel == "wide"
    assert select(TrainConfig(layers=(2, 8, 1)).static_part(), single=False) == ("two_layer", None)
    c = select(WIDE.replace(hidden_activation="tanh").static_part(), single=False)
    assert c == ("autodiff", "not wide: hidden_activation='tanh': the hand-written gradients cover relu and identity")
    with pytest.raises(ValueError, match="kernel='wide' is invalid"):
        select(TrainConfig(layers=(2, 4, 1)).static_part(), single=False, kernel="wide")


# options / options_minibatch: slow; the default run pins the wide kernel with bias, skip, minibatches,
# dropout and the proximal rule in tests/test_conformance.py (its wide case).
@pytest.mark.parametrize("cfg", [pytest.param(WIDE, id="plain"),
                                 pytest.param(WIDE_OPTIONS.replace(batch_size=0), id="options", marks=pytest.mark.slow),
                                 pytest.param(WIDE_OPTIONS, id="options_minibatch", marks=pytest.mark.slow)])
def test_wide_conforms_to_reference(cfg):
    """`train(kernel='wide')` equals `train(kernel='reference')` to float32 rounding."""
    d = tasks.xor(data_seed=0)
    key = jax.random.key(3)
    got = train(cfg, d.x_train, d.y_train, key, kernel="wide")
    ref = train(cfg, d.x_train, d.y_train, key, kernel="reference")
    for a, b in zip(got.edges, ref.edges):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=2e-6)
    np.testing.assert_array_equal(np.asarray(got.diverged_at), np.asarray(ref.diverged_at))
    np.testing.assert_allclose(np.asarray(got.history.task_loss), np.asarray(ref.history.task_loss),
                               rtol=2e-5, atol=1e-6)


# dropout with minibatches is left out: there a config's result depends on the chunk size at float32
# rounding on every kernel (two_layer [2,8,1] bce on XOR data, chunks 12 vs 5, as of 9e60235)
# options / minibatch: 18-23 s each (compile); slow, their siblings in the default run are the plain case here and
# test_engine's neighbour/device tests of the same engine loop with options and minibatches (two_layer)
@pytest.mark.parametrize("cfg", [pytest.param(WIDE, id="plain"),
                                 pytest.param(WIDE_OPTIONS.replace(batch_size=0), id="options", marks=pytest.mark.slow),
                                 pytest.param(WIDE_OPTIONS.replace(dropout=0.0), id="minibatch",
                                              marks=pytest.mark.slow)])
def test_wide_independent_of_chunk_neighbours_and_devices(cfg):
    """A config's result is bitwise the same in any chunk (size, neighbours) and on 1 or 2 devices."""
    data = tasks.xor(data_seed=0)
    g = make_grid(cfg, lams=[0.0, 1e-2, 1e-1], lrs=[1e-3, 1e20], seeds=2)
    t = {}
    a = run_grid(cfg, data, g, chunk=len(g), mesh=None, timing=t)
    assert t["kernel"] == "wide"
    perm = np.random.default_rng(0).permutation(len(g))
    b = run_grid(cfg, data, g.take(perm), chunk=5, mesh=None)
    for j, i in enumerate(perm):
        assert_tree_bitwise_equal(select_run(b, j), select_run(a, i))
    mesh = default_mesh()
    if mesh is not None:
        two = run_grid(cfg, data, g, chunk=4, mesh=mesh)
        assert_tree_bitwise_equal(two.result, a.result)
