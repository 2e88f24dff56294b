"""The fast sweep kernel (fast.py) against the generic vmap(train_core) path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import adam_promotion, assert_tree_bitwise_equal

from sbp_jax import TrainConfig, make_grid, run_grid, tasks
from sbp_jax.fast import fast_path_ok
from sbp_jax.sweep import Grid, _inputs, chunk_program, default_mesh, select
from sbp_jax.train import train_core


@pytest.fixture(autouse=True)
def _standard_promotion_for_adam():
    with adam_promotion():
        yield


XOR = TrainConfig(layers=(2, 4, 1), loss="bce", epochs=200, history_every=0)
ADD = TrainConfig(layers=(2, 8, 1), loss="mse", epochs=200, history_every=50)
DEEP = TrainConfig(layers=(2, 4, 3, 1), loss="bce", hidden_activation="identity", epochs=200, history_every=1)


def _data(cfg):
    return tasks.addition() if cfg.loss == "mse" else tasks.xor(data_seed=0)


def _run(cfg, data, grid, fast):
    """One chunk of `grid` through the fast or the generic chunk program (one device)."""
    dev = tuple(jnp.asarray(a, jnp.float32) for a in data)
    seeds, hyper = _inputs(grid)
    return jax.tree.map(np.asarray, chunk_program(cfg.static_part(), None, fast)(dev, seeds, hyper))


@pytest.mark.parametrize("cfg", [XOR, ADD, DEEP], ids=["xor", "addition", "deep_identity"])
def test_fast_matches_generic(cfg):
    assert fast_path_ok(cfg.static_part())
    data = _data(cfg)
    g = make_grid(cfg, lams=[0.0, 1e-2, 1e-1], lrs=[1e-3, 5e-3], seeds=2)
    gen, fast = _run(cfg, data, g, False), _run(cfg, data, g, True)
    assert jax.tree.structure(gen) == jax.tree.structure(fast)
    for a, b in zip(jax.tree.leaves(gen), jax.tree.leaves(fast)):
        assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(fast.result.diverged_at, gen.result.diverged_at)
    assert np.all(gen.result.diverged_at == -1)
    for a, b in zip(jax.tree.leaves(gen.structure), jax.tree.leaves(fast.structure)):
        np.testing.assert_array_equal(b, a)
    for split in ("train", "test", "pruned_test"):
        for k in getattr(gen, split):
            np.testing.assert_allclose(getattr(fast, split)[k], getattr(gen, split)[k], rtol=1e-6, atol=1e-6)
    for a, b in zip(gen.result.edges, fast.result.edges):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)
    h_gen, h_fast = gen.result.history, fast.result.history
    np.testing.assert_array_equal(h_fast.active_edges, h_gen.active_edges)
    for a, b in zip(h_gen[:3], h_fast[:3]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cfg", [XOR.replace(history_every=1), ADD], ids=["xor", "addition"])
def test_divergence_flagged_at_the_same_epoch(cfg):
    data = _data(cfg)
    g = make_grid(cfg, lams=[1e-2], lrs=[1e-3, 1e20], seeds=2)
    gen, fast = _run(cfg, data, g, False), _run(cfg, data, g, True)
    np.testing.assert_array_equal(fast.result.diverged_at, gen.result.diverged_at)
    np.testing.assert_array_equal(fast.result.diverged_at, [-1, -1, 1, 1])


def _permuted_equal(cfg, chunk_a, chunk_b):
    data = _data(cfg)
    g = make_grid(cfg, lams=[0.0, 1e-2, 1e-1], lrs=[1e-3, 1e20], seeds=3)
    perm = np.random.default_rng(0).permutation(len(g))
    a = run_grid(cfg, data, g, chunk=chunk_a, mesh=None)
    b = run_grid(cfg, data, g.take(perm), chunk=chunk_b, mesh=None)
    for j, i in enumerate(perm):
        assert_tree_bitwise_equal(select(b, j), select(a, i))


@pytest.mark.parametrize("cfg", [XOR, ADD], ids=["xor", "addition"])
def test_results_independent_of_chunk_neighbours_and_size(cfg):
    _permuted_equal(cfg.replace(epochs=100), 18, 5)


@pytest.mark.parametrize("cfg", [XOR, ADD], ids=["xor", "addition"])
def test_one_and_two_devices_bitwise_equal(cfg):
    mesh = default_mesh()
    if mesh is None:
        pytest.skip("needs 2 devices")
    cfg = cfg.replace(epochs=100)
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
                # configs, which XLA compiles differently under shard_map (1 ulp). The generic
                # vmap(run_one) path shows the same on addition; the trained edges are bitwise equal.
                np.testing.assert_allclose(getattr(two, split)[k], a, rtol=1e-6, atol=0)
            else:
                assert_tree_bitwise_equal(getattr(two, split)[k], a)


def test_run_grid_takes_the_fast_path():
    cfg = XOR.replace(epochs=50)
    data = _data(cfg)
    g = make_grid(cfg, lams=[0.0, 1e-2], seeds=2)
    out = run_grid(cfg, data, g, chunk=4, mesh=None)
    assert_tree_bitwise_equal(out, _run(cfg, data, g, True))


@pytest.mark.parametrize("change", [
    dict(batch_size=8), dict(penalty="proximal"), dict(penalty="proximal_plain"), dict(layer_lams=(1.0, 0.5)),
    dict(lam_schedule="warmup_ramp", lam_warmup=5), dict(target_active=0.5), dict(target_gain=0.02),
    dict(bias=True), dict(bias_init="same"), dict(dropout=0.1), dict(hidden_activation="sigmoid"),
    dict(hidden_activation="tanh"), dict(loss="cross_entropy", layers=(2, 4, 2)), dict(layers=(2, 40, 1)),
], ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_fast_path_ok_rejects_unsupported_options(change):
    base = TrainConfig(layers=(2, 4, 1))
    assert fast_path_ok(base.static_part())
    assert not fast_path_ok(base.replace(**change).static_part())


@pytest.mark.parametrize("change", [
    dict(), dict(history_every=0), dict(history_every=7), dict(hidden_activation="identity"), dict(loss="mse"),
    dict(init="uniform"), dict(layers=(3, 8, 8, 2)), dict(epochs=5),
], ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) or "default")
def test_fast_path_ok_accepts_supported_options(change):
    assert fast_path_ok(TrainConfig().replace(**change).static_part())


def test_generic_path_unchanged_for_rejected_configs():
    cfg = TrainConfig(layers=(2, 4, 1), epochs=20, history_every=0, dropout=0.1)
    g = make_grid(cfg, seeds=2)
    data = _data(cfg)
    out = run_grid(cfg, data, Grid(*g), chunk=2, mesh=None)
    assert_tree_bitwise_equal(out, _run(cfg, data, g, False))


@pytest.mark.parametrize("cfg", [XOR, XOR.replace(history_every=7), ADD.replace(history_every=0), ADD,
                                 DEEP.replace(history_every=0)],
                         ids=["xor", "xor_history7", "addition", "addition_history50", "deep_identity"])
def test_cheap_divergence_check_matches_generic(cfg):
    """Epochs without a history record detect divergence by a bound on the outputs instead of the
    task loss (fast.py): same `diverged_at` as the generic path, on configs that diverge (lr=1e20:
    NaN weights; lr=1e10: inf loss for mse, huge but finite loss for bce, so the exact check runs
    every epoch without flagging) next to configs that do not."""
    data = _data(cfg)
    g = make_grid(cfg.replace(epochs=60), lams=[0.0, 1e-2, 1e-1], lrs=[1e-3, 1e10, 1e20], seeds=2)
    cfg = cfg.replace(epochs=60)
    gen, fast = _run(cfg, data, g, False), _run(cfg, data, g, True)
    np.testing.assert_array_equal(fast.result.diverged_at, gen.result.diverged_at)
    lr = np.asarray(g.lr)
    assert np.all(fast.result.diverged_at[lr == np.float32(1e-3)] == -1)
    assert np.all(fast.result.diverged_at[lr == np.float32(1e20)] >= 0)
    if cfg.loss == "mse":
        assert np.all(fast.result.diverged_at[lr == np.float32(1e10)] >= 0)


def test_output_bound_bounds_the_outputs():
    from sbp_jax.fast import _forward, _output_bound
    x = tasks.addition()[0]
    x = jnp.asarray(x, jnp.float32)
    rng = np.random.default_rng(0)
    for layers, act in [((2, 8, 1), "relu"), ((2, 4, 3, 2), "identity")]:
        edges = tuple(jnp.asarray(rng.normal(size=(b, a, 16)) * 10.0 ** rng.integers(-3, 6, size=(1, 1, 16)),
                                  jnp.float32) for a, b in zip(layers[:-1], layers[1:]))
        out = _forward(edges, x, act)[1][-1]
        zmax = np.max(np.abs(np.stack([np.asarray(o) for o in out])), axis=(0, 1))
        bound = np.asarray(_output_bound(edges, jnp.max(jnp.abs(x), axis=0)))
        assert np.all(zmax <= bound * (1 + 1e-5))


@pytest.mark.parametrize("layers,loss,act", [
    ((2, 8, 1), "mse", "relu"),  # batched matrix product (GEMM_MIN_HIDDEN)
    ((3, 12, 1), "mse", "relu"),
    ((2, 4, 1), "mse", "relu"),  # per-unit sums
    ((2, 8, 1), "bce", "relu"),
    ((2, 4, 1), "bce", "identity"),  # mask 1: K sums
    ((2, 8, 1), "mse", "identity"),
])
def test_two_layer_grads_match_autodiff(layers, loss, act):
    """`_two_layer_grads` (A[j,k] = Σ_s δ·m_j·x_k, dW0 = w1·A, dW1 = Σ_k w0·A) against `jax.grad` of
    each config's mean task loss, on 6 configs with random edges (some hidden units dead on every
    sample, some on none), in every formulation it has."""
    from sbp_jax.fast import GEMM_MIN_HIDDEN, _two_layer_grads
    from sbp_jax.objective import task_loss

    assert GEMM_MIN_HIDDEN == 8  # the cases below cover both sides of it
    rng = np.random.default_rng(sum(layers))
    S, C = 50, 6
    x = jnp.asarray(rng.uniform(-1, 1, size=(S, layers[0])), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, size=(S, 1)) if loss == "bce" else rng.normal(size=(S, 1)), jnp.float32)
    edges = [jnp.asarray(rng.normal(size=(b, a, C)), jnp.float32) for a, b in zip(layers[:-1], layers[1:])]
    task, grads = _two_layer_grads(edges, x, y, loss, act)

    def one(ed):
        return task_loss(ed, x, y, loss=loss, hidden_activation=act)

    for c in range(C):
        ed = tuple(w[..., c] for w in edges)
        ref_task, ref = jax.value_and_grad(one)(ed)
        np.testing.assert_allclose(task[c], ref_task, rtol=1e-6)
        for g, r in zip(grads, ref):
            assert g[..., c].shape == r.shape
            np.testing.assert_allclose(g[..., c], r, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- single runs (fast.train_single)

_train_core_jit = jax.jit(train_core, static_argnums=0)


def _generic_single(cfg, x, y, key):
    """One run through the generic `train_core` (what `train` runs off the fast path)."""
    from sbp_jax.train import check_data, hyper_of

    x, y = check_data(cfg, x, y)
    return _train_core_jit(cfg.static_part(), x, y, key, hyper_of(cfg))


SINGLE_CASES = [
    TrainConfig(layers=(2, 4, 1), loss="bce", lam=1e-2, lr=5e-3, epochs=200, history_every=1),
    TrainConfig(layers=(2, 8, 1), loss="mse", lam=1e-1, lr=5e-3, epochs=200, history_every=50),
    TrainConfig(layers=(2, 4, 3, 1), loss="bce", hidden_activation="identity", epochs=100, history_every=7),
    TrainConfig(layers=(2, 4, 1), loss="bce", lam=0.0, epochs=100, history_every=0, init="uniform"),
]


@pytest.mark.parametrize("cfg", SINGLE_CASES, ids=["xor", "addition_h50", "deep_identity_h7", "xor_h0_uniform"])
def test_train_single_matches_train(cfg):
    from sbp_jax.fast import train_single

    d = _data(cfg)
    key = jax.random.key(3)
    gen = jax.tree.map(np.asarray, _generic_single(cfg, d.x_train, d.y_train, key))
    fast = jax.tree.map(np.asarray, train_single(cfg, d.x_train, d.y_train, key))
    assert jax.tree.structure(gen) == jax.tree.structure(fast)
    for a, b in zip(jax.tree.leaves(gen), jax.tree.leaves(fast)):
        assert a.shape == b.shape and a.dtype == b.dtype
    assert fast.history.loss.shape == (cfg.n_records,)
    assert int(fast.diverged_at) == int(gen.diverged_at) == -1
    for a, b in zip(gen.edges, fast.edges):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(fast.history.active_edges, gen.history.active_edges)
    for a, b in zip(gen.history[:3], fast.history[:3]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_train_single_is_deterministic_and_flags_divergence():
    from sbp_jax.fast import train_single

    d = tasks.xor(data_seed=0)
    cfg = XOR.replace(epochs=60, history_every=1)
    a = train_single(cfg, d.x_train, d.y_train, jax.random.key(0))
    b = train_single(cfg, d.x_train, d.y_train, jax.random.key(0))
    assert_tree_bitwise_equal(a, b)
    # another loop unroll is another compiled program: float32 rounding apart, not bitwise
    c = train_single(cfg, d.x_train, d.y_train, jax.random.key(0), unroll=3)
    for u, v in zip(a.edges, c.edges):
        np.testing.assert_allclose(np.asarray(v), np.asarray(u), rtol=0, atol=1e-6)
    for loss, data in (("bce", d), ("mse", tasks.addition())):
        bad = cfg.replace(loss=loss, lr=1e20, layers=(2, 8, 1))
        gen = _generic_single(bad, data.x_train, data.y_train, jax.random.key(1))
        fast = train_single(bad, data.x_train, data.y_train, jax.random.key(1))
        assert int(fast.diverged_at) == int(gen.diverged_at) >= 0


def test_train_single_validates():
    from sbp_jax.fast import train_single

    d = tasks.xor(data_seed=0)
    with pytest.raises(TypeError):
        train_single({"layers": (2, 4, 1)}, d.x_train, d.y_train, jax.random.key(0))
    with pytest.raises(ValueError, match="fast_path_ok"):
        train_single(XOR.replace(dropout=0.1), d.x_train, d.y_train, jax.random.key(0))
    with pytest.raises(ValueError):
        train_single(XOR, d.x_train[:, :1], d.y_train, jax.random.key(0))
