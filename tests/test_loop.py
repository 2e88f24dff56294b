"""The loop pieces every kernel shares (`sbp_jax.loop`): minibatch plans and
the shuffle seed's batch order (against a Python loop), and the hashed dropout masks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import adam_promotion, assert_tree_bitwise_equal

from sbp_jax import TrainConfig, datasets, sweep, train
from sbp_jax.loop import SHUFFLE_STREAM, epoch_batches, minibatch_plan
from sbp_jax.network import forward, init_edges
from sbp_jax.objective import task_loss_from_logits
from sbp_jax.penalty import make_optimizer
from sbp_jax.train import check_data

MB = TrainConfig(layers=(3, 4, 2), loss="cross_entropy", lam=1e-2, lr=1e-2, epochs=6, eps=1e-2)


@pytest.fixture(scope="module")
def mb_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 3)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    return x, y


@pytest.mark.parametrize("b", [23, 24, 1000])
def test_minibatch_of_the_whole_data_is_exactly_full_batch(mb_data, b):
    x, y = mb_data
    with adam_promotion():
        full = train(MB, x, y, jax.random.key(1))
        mini = train(MB.replace(batch_size=b), x, y, jax.random.key(1))
    assert_tree_bitwise_equal(full, mini)


def test_minibatch_plan():
    assert minibatch_plan(23, 0) == (1, 23)
    assert minibatch_plan(23, 23) == (1, 23)
    assert minibatch_plan(23, 5) == (5, 5)
    assert minibatch_plan(20, 5) == (4, 5)


@pytest.mark.parametrize("b", [5, pytest.param(8, marks=pytest.mark.slow)])  # 23 = 4·5 + 3 = 2·8 + 7
def test_minibatch_matches_a_python_loop_over_shuffled_batches(mb_data, b):
    """Reference: per epoch, the permutation from fold_in(fold_in(key(shuffle_seed), SHUFFLE_STREAM),
    epoch) (the shuffle seed's, not the run's key), consecutive slices of b (the last one short), one
    Adam step per slice on its mean loss."""
    x, y = mb_data
    cfg = MB.replace(batch_size=b, shuffle_seed=7)
    key = jax.random.key(3)
    with adam_promotion():
        xj, yj = check_data(cfg, x, y)
        edges = init_edges(key, cfg.layers, cfg.init)
        # from the key's initial edges as a warm start (a fresh optimizer, as without init): the
        # compiled program of the tests below
        got = train(cfg, x, y, key, init=edges)
        opt = make_optimizer(jnp.float32(cfg.lam), jnp.float32(cfg.lr))
        state = opt.init(edges)
        loss = lambda e, xb, yb: task_loss_from_logits(forward(e, xb, cfg.hidden_activation), yb, cfg.loss)

        @jax.jit  # one Adam step on one batch (compiled per batch size: b and the short last one)
        def step(edges, state, xb, yb):
            l, g = jax.value_and_grad(loss)(edges, xb, yb)
            u, state = opt.update(g, state, edges)
            return optax.apply_updates(edges, u), state, l

        epoch_losses = []
        for epoch in range(cfg.epochs):
            perm = np.asarray(jax.random.permutation(
                jax.random.fold_in(jax.random.fold_in(jax.random.key(7), SHUFFLE_STREAM), epoch), len(x)))
            losses = []
            for s in range(0, len(x), b):
                idx = perm[s:s + b]
                edges, state, l = step(edges, state, xj[idx], yj[idx])
                losses.append(float(l) * len(idx))
            epoch_losses.append(sum(losses) / len(x))
        full = train(MB, x, y, key)
    for a, r in zip(got.edges, edges):
        np.testing.assert_allclose(np.asarray(a), np.asarray(r), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got.history.task_loss), epoch_losses, rtol=1e-5)
    assert not np.array_equal(np.asarray(got.edges[0]), np.asarray(full.edges[0]))


def test_epoch_batches_are_the_shuffle_seeds_permutation():
    """Every sample once per epoch, the padding weighted 0; the order changes with the epoch and the
    shuffle seed and is `jax.random.permutation` of fold_in(fold_in(key(seed), SHUFFLE_STREAM), epoch)."""
    n, b = 23, 5
    idx, w = epoch_batches(0, 4, n, b)
    assert idx.shape == w.shape == (5, 5) and idx.dtype == jnp.int32
    flat, wf = np.asarray(idx).ravel(), np.asarray(w).ravel()
    assert sorted(flat[wf == 1]) == list(range(n)) and np.all(wf[:n] == 1) and np.all(wf[n:] == 0)
    want = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(jax.random.key(0), SHUFFLE_STREAM), 4), n)
    np.testing.assert_array_equal(flat[:n], np.asarray(want))
    orders = {tuple(np.asarray(epoch_batches(s, t, n, b)[0]).ravel()[:n]) for s in (0, 1) for t in (0, 1, 2)}
    assert len(orders) == 6
    np.testing.assert_array_equal(epoch_batches(3, 2, n, b)[0], jax.jit(epoch_batches, static_argnums=(0, 2, 3))(
        3, jnp.int32(2), n, b)[0])  # a traced epoch gives the same order


@pytest.mark.parametrize("seed, exc", [(-1, ValueError), (2**32, ValueError), (1.0, TypeError), (True, TypeError)])
def test_bad_shuffle_seeds_say_what_is_allowed(seed, exc):
    with pytest.raises(exc, match=r"shuffle_seed=.* is invalid: allowed an integer"):
        TrainConfig(shuffle_seed=seed)
    assert TrainConfig(shuffle_seed=2**32 - 1).shuffle_seed == 2**32 - 1


def test_the_minibatch_order_does_not_depend_on_the_run_key(mb_data):
    """Two runs from the same initial edges with different keys train identically (the key draws
    the initial edges and dropout masks only); another shuffle seed trains differently."""
    x, y = mb_data
    cfg = MB.replace(batch_size=5, shuffle_seed=7)  # the python-loop test's config and program
    e0 = init_edges(jax.random.key(0), cfg.layers, cfg.init)
    with adam_promotion():
        a = train(cfg, x, y, jax.random.key(1), init=e0)
        assert_tree_bitwise_equal(a, train(cfg, x, y, jax.random.key(2), init=e0))
        c = train(cfg.replace(shuffle_seed=1), x, y, jax.random.key(1), init=e0)
    assert not np.array_equal(np.asarray(a.edges[0]), np.asarray(c.edges[0]))


def test_minibatch_sweep_equals_single_runs_seed_by_seed(mb_data):
    """The single runs start from each seed's initial edges passed as init (as without init: the
    compiled program of the tests above)."""
    x, y = mb_data
    cfg = MB.replace(batch_size=5, shuffle_seed=7)
    with adam_promotion():
        out = sweep.run_grid(cfg, datasets.plain(x, y), sweep.make_grid(cfg, lams=[0.0, 1e-2], seeds=[0, 5]))
        for i, (lam, seed) in enumerate(zip(out_grid := sweep.make_grid(cfg, lams=[0.0, 1e-2], seeds=[0, 5]).lam,
                                            sweep.make_grid(cfg, lams=[0.0, 1e-2], seeds=[0, 5]).seed)):
            key = jax.random.key(int(seed))
            single = train(cfg.replace(lam=float(lam)), x, y, key, init=init_edges(key, cfg.layers, cfg.init))
            for a, b in zip(single.edges, out.result.edges):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b)[i], rtol=1e-5, atol=1e-6)
    assert len(out_grid) == 4


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
