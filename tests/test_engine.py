"""The fast engine (`sbp_jax.engine`): chunk and device independence, the cheap
divergence check, the engine's initial draws. Agreement with the reference over
every option is tests/test_conformance.py; the hand-written gradients:
tests/test_two_layer.py."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SMALL, assert_tree_bitwise_equal

from sbp_jax import TrainConfig, make_grid, run_grid, tasks
from sbp_jax.engine import _output_bound
from sbp_jax.two_layer import two_layer_ok
from sbp_jax.loop import fresh_state
from sbp_jax.network import forward, init_edges
from sbp_jax.chunks import default_mesh, inputs_of
from sbp_jax.sweep import select

XOR = TrainConfig(layers=(2, 4, 1), loss="bce", epochs=100, history_every=0)
ADD = TrainConfig(layers=(2, 8, 1), loss="mse", epochs=100, history_every=50)
OPTIONS = XOR.replace(bias=True, skip=True, dropout=0.2, penalty="proximal", history_every=7)
# The options config of the chunk, device and initial-draw tests: one static config, so that its chunk
# programs (chunk 4 on one device, chunk 4 on the mesh, chunk 5) compile once for the three tests.
OPTIONS_MB = OPTIONS.replace(batch_size=32, target_active=0.5, init="glorot_uniform", bias_init="same")
# Minibatch addition: shared by the chunk test and the divergence check (its chunk-12 program).
ADD_MB = ADD.replace(history_every=0, batch_size=48, epochs=60)


def _data(cfg):
    return tasks.addition() if cfg.loss == "mse" else tasks.xor(data_seed=0)


def _run(cfg, data, grid, kernel):
    """The whole `grid` as one chunk through the chunk program of `kernel` (one device)."""
    t = {}
    out = run_grid(cfg, data, grid, chunk=len(grid), mesh=None, kernel=kernel, timing=t)
    assert t["kernel"] == kernel
    return out


def _permuted_equal(cfg, chunk_a, chunk_b=5):
    data = _data(cfg)
    g = make_grid(cfg, lams=[0.0, 1e-2, 1e-1], lrs=[1e-3, 1e20], seeds=3)
    perm = np.random.default_rng(0).permutation(len(g))
    a = run_grid(cfg, data, g, chunk=chunk_a, mesh=None)
    b = run_grid(cfg, data, g.take(perm), chunk=chunk_b, mesh=None)
    for j, i in enumerate(perm):
        assert_tree_bitwise_equal(select(b, j), select(a, i))


# chunk_a: 18 = the whole grid in one chunk; 4 and 12 are the chunk programs of the device test and the
# divergence check (compiled once for both); chunk_b = 5 in every case. The full-batch "options" case is
# slow: the same options with minibatches run by default, and full batches in test_sweep's chunk test.
@pytest.mark.parametrize("cfg,chunk_a", [pytest.param(XOR, 18, marks=pytest.mark.slow),
                                         pytest.param(ADD, 18, marks=pytest.mark.slow),
                                         pytest.param(OPTIONS, 18, marks=pytest.mark.slow),
                                         (OPTIONS_MB, 4), (ADD_MB, 12)],
                         ids=["xor", "addition", "options", "options_minibatch", "minibatch"])
def test_results_independent_of_chunk_neighbours_and_size(cfg, chunk_a):
    _permuted_equal(cfg, chunk_a)


@pytest.mark.slow  # 12 s: an edge case of warm starts
def test_minibatch_warm_starts_at_different_epochs_in_one_chunk():
    """A chunk shares one batch order per epoch when its configs are at the same epoch; warm starts
    at different epochs take per-config batches: each config then equals its own run (alone in its
    chunk, where it is at the chunk's epoch; a single run equals the reference: test_conformance)."""
    cfg = ADD.replace(epochs=4, batch_size=48, history_every=2)
    data = _data(cfg)
    g = make_grid(cfg, lams=[0.0, 1e-2], seeds=2)
    seeds, hyper, _ = inputs_of(g)
    fresh = jax.vmap(lambda s, h: fresh_state(cfg.static_part(), jax.random.key(s), h))(seeds, hyper)
    mixed = jax.tree.map(np.asarray, fresh._replace(epoch=jnp.array([0, 5, 0, 9], jnp.int32)))
    got = run_grid(cfg, data, g, mesh=None, init=mixed)
    for i in range(len(g)):
        one = run_grid(cfg, data, g.take([i]), mesh=None, init=jax.tree.map(lambda a: a[i:i + 1], mixed))
        for a, b in zip(got.result.edges, one.result.edges):
            np.testing.assert_allclose(a[i], b[0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got.result.history.task_loss[i], one.result.history.task_loss[0], rtol=1e-6)


# "small": conftest's SMALL (the plain XOR net), whose chunk-4 programs test_sweep compiles too.
@pytest.mark.parametrize("cfg", [SMALL, pytest.param(XOR, marks=pytest.mark.slow), pytest.param(ADD, marks=pytest.mark.slow),
                                 OPTIONS_MB],
                         ids=["small", "xor", "addition", "options"])
def test_one_and_two_devices_bitwise_equal(cfg):
    mesh = default_mesh()
    if mesh is None:
        pytest.skip("needs 2 devices")
    data = _data(cfg)
    g = make_grid(cfg, lams=[0.0, 1e-2, 1e-1], seeds=4)
    one = run_grid(cfg, data, g, chunk=4, mesh=None)
    two = run_grid(cfg, data, g, chunk=4, mesh=mesh)
    assert_tree_bitwise_equal(two.result, one.result)  # the kernel's output
    assert_tree_bitwise_equal(two.structure, one.structure)
    for split in ("train", "test", "pruned_test"):
        for k, a in getattr(one, split).items():
            if k == "r2":
                # Not bitwise: metrics.regression_metrics divides by ss_tot, a scalar shared by the
                # configs, which XLA compiles differently under shard_map (1 ulp); the trained edges are
                # bitwise equal.
                np.testing.assert_allclose(getattr(two, split)[k], a, rtol=1e-6, atol=0)
            else:
                assert_tree_bitwise_equal(getattr(two, split)[k], a)


# "addition" (full batch, two_layer, mse) is slow: its parts run by default in "cross_entropy_skip_dropout"
# (the full-batch epoch of the same engine loop) and "addition_minibatch" (two_layer, mse and its threshold).
@pytest.mark.parametrize("cfg", [pytest.param(XOR.replace(history_every=7), marks=pytest.mark.slow),
                                 pytest.param(ADD.replace(history_every=0), marks=pytest.mark.slow),
                                 pytest.param(XOR.replace(layers=(2, 4, 3, 1), hidden_activation="tanh", bias=True),
                                              marks=pytest.mark.slow),
                                 XOR.replace(loss="cross_entropy", layers=(2, 5, 2), skip=True, dropout=0.1),
                                 ADD_MB,
                                 pytest.param(XOR.replace(history_every=7, batch_size=32, bias=True),
                                              marks=pytest.mark.slow)],
                         ids=["xor_history7", "addition", "deep_tanh_bias", "cross_entropy_skip_dropout",
                              "addition_minibatch", "xor_minibatch_bias"])
def test_cheap_divergence_check_matches_reference(cfg):
    """Epochs without a history record detect divergence by a bound on the outputs instead of the
    task loss (engine.py; with minibatches at every step): the reference's `diverged_at`, on configs that diverge (lr=1e20: NaN
    weights; lr=1e10: inf loss for mse, huge but finite loss for bce, so the exact check runs every
    epoch without flagging) next to configs that do not."""
    data = _data(cfg)
    if cfg.loss == "cross_entropy":
        data = dataclasses.replace(data, y_train=data.y_train[:, 0].astype(np.int32), y_test=data.y_test[:, 0].astype(np.int32))
    cfg = cfg.replace(epochs=60)
    g = make_grid(cfg, lams=[0.0, 1e-1], lrs=[1e-3, 1e10, 1e20], seeds=2)
    kernel = "two_layer" if two_layer_ok(cfg) is None else "autodiff"
    ref, fast = _run(cfg, data, g, "reference"), _run(cfg, data, g, kernel)
    np.testing.assert_array_equal(fast.result.diverged_at, ref.result.diverged_at)
    lr = np.asarray(g.lr)
    assert np.all(fast.result.diverged_at[lr == np.float32(1e-3)] == -1)
    if cfg.hidden_activation != "tanh":  # tanh units saturate: huge weights need not give a non-finite loss
        assert np.all(fast.result.diverged_at[lr == np.float32(1e20)] >= 0)
    if cfg.loss == "mse":
        assert np.all(fast.result.diverged_at[lr == np.float32(1e10)] >= 0)


@pytest.mark.parametrize("layers,act,bias,skip", [((2, 8, 1), "relu", False, False), ((2, 4, 3, 2), "identity", True, False),
                                                  ((3, 5, 4, 2), "tanh", True, True), ((2, 6, 1), "sigmoid", False, True)])
def test_output_bound_bounds_the_outputs(layers, act, bias, skip):
    x = jnp.asarray(tasks.addition().x_train, jnp.float32)
    x = jnp.concatenate([x, x[:, :1] * 3], axis=1)[:, :layers[0]]
    cfg = TrainConfig(layers=layers, hidden_activation=act, bias=bias, skip=skip)
    rng = np.random.default_rng(0)
    C = 16
    edges = tuple(jnp.asarray(rng.normal(size=(*cfg.layout.shape(l), C)) * 10.0 ** rng.integers(-3, 6, size=(1, 1, C)),
                              jnp.float32) for l in range(cfg.layout.n_layers))
    for scale in (1.0, 1.25):  # dropout with p = 0.2 scales kept edges by 1.25
        keep = tuple(jnp.asarray(rng.random(w.shape) < 0.8, jnp.float32) * scale for w in edges)
        out = forward(tuple(w * k for w, k in zip(edges, keep)), x[:, :, None], act, cfg.layout)
        zmax = np.max(np.abs(np.asarray(out)), axis=(0, 1))
        bound = np.asarray(_output_bound(edges, jnp.max(jnp.abs(x), axis=0), cfg.layout, act, scale))
        assert np.all(zmax <= bound * (1 + 1e-5))


def test_init_edges_of_the_engine_are_the_reference_draws():
    """A sweep's initial edges are `init_edges(jax.random.key(seed))` of each seed (lr tiny: every step
    moves an edge by about 1e-30, below float32 rounding of the drawn values; the options config and its
    chunk-4 program, bias and skip edges drawn by glorot_uniform)."""
    cfg = OPTIONS_MB.replace(lr=1e-30)
    assert cfg.bias and cfg.bias_init == "same" and cfg.skip and cfg.init == "glorot_uniform"
    g = make_grid(cfg, seeds=[3, 11])
    out = run_grid(cfg, _data(cfg), g, chunk=4, mesh=None)
    for i, s in enumerate(g.seed):
        e0 = init_edges(jax.random.key(int(s)), cfg.layers, cfg.init, bias=True, bias_init="same", skip=True)
        for w, w0 in zip(out.result.edges, e0):
            np.testing.assert_allclose(w[i], w0, rtol=0, atol=1e-25)
