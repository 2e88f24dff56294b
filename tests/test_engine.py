"""The fast engine (engine.py) and the single-run kernel (single.py): their own
properties (chunk and device independence, the cheap divergence check, the
hand-written gradients against `jax.grad`). Agreement with the reference
over every option is tests/test_conformance.py."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_tree_bitwise_equal

from sbp_jax import TrainConfig, make_grid, run_grid, tasks, train
from sbp_jax.engine import GEMM_MIN_HIDDEN, _autodiff_grads, _output_bound, _two_layer_grads, two_layer_ok
from sbp_jax.network import forward, init_edges
from sbp_jax.sweep import _inputs, chunk_program, default_mesh, select, split_arrays

XOR = TrainConfig(layers=(2, 4, 1), loss="bce", epochs=100, history_every=0)
ADD = TrainConfig(layers=(2, 8, 1), loss="mse", epochs=100, history_every=50)
OPTIONS = XOR.replace(bias=True, skip=True, dropout=0.2, penalty="proximal", history_every=7)


def _data(cfg):
    return tasks.addition() if cfg.loss == "mse" else tasks.xor(data_seed=0)


def _run(cfg, data, grid, kernel):
    """One chunk of `grid` through the chunk program of `kernel` (one device)."""
    dev = tuple(jnp.asarray(a, jnp.int32 if np.issubdtype(np.asarray(a).dtype, np.integer) else jnp.float32)
                for a in split_arrays(cfg, data))
    return jax.tree.map(np.asarray, chunk_program(cfg.static_part(), None, kernel)(dev, *_inputs(grid)))


def _permuted_equal(cfg, chunk_a, chunk_b):
    data = _data(cfg)
    g = make_grid(cfg, lams=[0.0, 1e-2, 1e-1], lrs=[1e-3, 1e20], seeds=3)
    perm = np.random.default_rng(0).permutation(len(g))
    a = run_grid(cfg, data, g, chunk=chunk_a, mesh=None)
    b = run_grid(cfg, data, g.take(perm), chunk=chunk_b, mesh=None)
    for j, i in enumerate(perm):
        assert_tree_bitwise_equal(select(b, j), select(a, i))


@pytest.mark.parametrize("cfg", [pytest.param(XOR, marks=pytest.mark.slow), ADD, OPTIONS],
                         ids=["xor", "addition", "options"])
def test_results_independent_of_chunk_neighbours_and_size(cfg):
    _permuted_equal(cfg, 18, 5)


@pytest.mark.parametrize("cfg", [XOR, pytest.param(ADD, marks=pytest.mark.slow),
                                 OPTIONS.replace(batch_size=32, target_active=0.5)],
                         ids=["xor", "addition", "options"])
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


@pytest.mark.parametrize("cfg", [pytest.param(XOR.replace(history_every=7), marks=pytest.mark.slow),
                                 ADD.replace(history_every=0),
                                 pytest.param(XOR.replace(layers=(2, 4, 3, 1), hidden_activation="tanh", bias=True),
                                              marks=pytest.mark.slow),
                                 XOR.replace(loss="cross_entropy", layers=(2, 5, 2), skip=True, dropout=0.1)],
                         ids=["xor_history7", "addition", "deep_tanh_bias", "cross_entropy_skip_dropout"])
def test_cheap_divergence_check_matches_reference(cfg):
    """Epochs without a history record detect divergence by a bound on the outputs instead of the
    task loss (engine.py): the reference's `diverged_at`, on configs that diverge (lr=1e20: NaN
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


@pytest.mark.parametrize("layers,loss,act,bias,skip,batch", [
    ((2, 8, 1), "mse", "relu", False, False, False),  # batched matrix product (GEMM_MIN_HIDDEN)
    ((3, 12, 1), "mse", "relu", True, True, False),
    ((2, 4, 1), "mse", "relu", True, False, True),  # per-unit sums
    ((2, 8, 1), "bce", "relu", False, True, True),
    ((2, 4, 1), "bce", "identity", True, True, False),  # mask 1: K sums
    ((2, 8, 1), "mse", "identity", False, False, False),
])
def test_two_layer_grads_match_autodiff(layers, loss, act, bias, skip, batch):
    """`_two_layer_grads` (A[j,k] = Σ_s δ·m_j·x̃_k, dW0 = w1·A, dW1 = Σ_k w0·A, skip and bias edges)
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
    task, grads = _two_layer_grads(cfg, cfg.layout, edges, x, y, wts)
    ref_task, ref = _autodiff_grads(cfg, cfg.layout, edges, x, y, wts)
    np.testing.assert_allclose(task, ref_task, rtol=1e-6)
    for g, r in zip(grads, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the single-run kernel


def test_single_kernel_is_deterministic_and_flags_divergence():
    d = tasks.xor(data_seed=0)
    cfg = XOR.replace(epochs=60, history_every=1)
    a = train(cfg, d.x_train, d.y_train, jax.random.key(0), kernel="single")
    b = train(cfg, d.x_train, d.y_train, jax.random.key(0))
    assert_tree_bitwise_equal(a, b)  # `train` picks it for the plain setting
    for loss, data in (("bce", d), ("mse", tasks.addition())):
        bad = cfg.replace(loss=loss, lr=1e20, layers=(2, 8, 1))
        ref = train(bad, data.x_train, data.y_train, jax.random.key(1), kernel="reference")
        fast = train(bad, data.x_train, data.y_train, jax.random.key(1), kernel="single")
        assert int(fast.diverged_at) == int(ref.diverged_at) >= 0


def test_forcing_a_kernel_that_does_not_fit_is_an_error():
    d = tasks.xor(data_seed=0)
    with pytest.raises(ValueError, match=r"kernel='single' is invalid for this config \(dropout=0.1.*allowed 'auto'"):
        train(XOR.replace(dropout=0.1), d.x_train, d.y_train, jax.random.key(0), kernel="single")
    with pytest.raises(ValueError, match=r"kernel='two_layer' is invalid.*one hidden layer"):
        run_grid(XOR.replace(layers=(2, 3, 3, 1)), d, make_grid(XOR, seeds=1), kernel="two_layer")
    with pytest.raises(ValueError, match=r"kernel='fast' is invalid: allowed one of 'auto', 'single'"):
        train(XOR, d.x_train, d.y_train, jax.random.key(0), kernel="fast")
    with pytest.raises(ValueError, match=r"kernel='single' is invalid for this config \(a sweep"):
        run_grid(XOR, d, make_grid(XOR, seeds=1), kernel="single")


def test_init_edges_of_the_engine_are_the_reference_draws():
    """A sweep's initial edges are `init_edges(jax.random.key(seed))` of each seed (epochs=1, lr tiny)."""
    cfg = XOR.replace(epochs=1, lr=1e-30, bias=True, bias_init="same", skip=True, init="glorot_uniform")
    g = make_grid(cfg, seeds=[3, 11])
    out = run_grid(cfg, _data(cfg), g, mesh=None)
    for i, s in enumerate(g.seed):
        e0 = init_edges(jax.random.key(int(s)), cfg.layers, cfg.init, bias=True, bias_init="same", skip=True)
        for w, w0 in zip(out.result.edges, e0):
            np.testing.assert_allclose(w[i], w0, rtol=0, atol=1e-25)


def test_select_names_the_field_that_keeps_a_config_off_the_fastest_kernel(caplog):
    from sbp_jax.kernels import select as select_kernel

    with caplog.at_level("INFO", logger="sbp_jax"):
        c = select_kernel(XOR.replace(hidden_activation="tanh", lam=0.5).static_part(), single=False)
        assert c == ("autodiff", "not two_layer: hidden_activation='tanh': the hand-written gradients cover "
                                 "relu and identity")
        assert select_kernel(XOR.replace(bias=True).static_part(), single=False) == ("two_layer", None)
        assert select_kernel(XOR.static_part(), single=True) == ("single", None)
        c = select_kernel(XOR.replace(batch_size=8).static_part(), single=True)
        assert c.kernel == "two_layer" and c.why_not_faster.startswith("not single: batch_size=8")
    lines = [r.getMessage() for r in caplog.records if r.name == "sbp_jax"]
    assert any("kernel autodiff (not two_layer: hidden_activation='tanh'" in m for m in lines)
    assert any("kernel two_layer (not single: batch_size=8" in m for m in lines)


def test_dropout_masks_are_bernoulli_and_independent():
    """The hashed masks: keep rate 1 − p within 4 standard errors, no correlation between
    neighbouring edges or consecutive epochs, different runs' streams differ, configs-last equals one run."""
    from sbp_jax.loop import dropout_key, dropout_masks

    e = (jnp.zeros((50, 40)), jnp.zeros((10, 50)))
    p = 0.3
    keys = [jax.random.key(s) for s in range(3)]
    m = np.stack([np.concatenate([np.asarray(w).ravel() for w in dropout_masks(dropout_key(k), t, e, p)]) > 0
                  for k in keys for t in range(20)]).astype(float)  # (60, 2500)
    n = m.size
    assert abs(m.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    c = m - m.mean()
    assert abs(np.mean(c[:, 1:] * c[:, :-1])) / m.var() < 4 / np.sqrt(n)  # neighbouring edges
    assert abs(np.mean(c[1:20] * c[:19])) / m.var() < 4 / np.sqrt(19 * 2500)  # consecutive epochs
    assert not np.array_equal(m[0], m[20])  # another key, another stream
    streams = jnp.stack([dropout_key(k) for k in keys], axis=-1)  # (2, C)
    cl = dropout_masks(streams, jnp.array([5, 5, 5]), tuple(jnp.zeros((*w.shape, 3)) for w in e), p)
    for i, k in enumerate(keys):
        for a, b in zip(cl, dropout_masks(dropout_key(k), 5, e, p)):
            np.testing.assert_array_equal(np.asarray(a)[..., i], np.asarray(b))
