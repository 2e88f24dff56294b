"""finetune: retraining from the mask, the lottery-ticket rewind, and the magnitude baseline at
equal edge counts (stacked over runs)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SMALL, adam_promotion

from sbp_jax import finetune, init_edges, masked, tasks
from sbp_jax.finetune import finetune_masked, magnitude_masks, magnitude_masks_per_layer
from sbp_jax.objective import task_loss
from sbp_jax.sweep import make_grid, run_grid


@pytest.fixture(scope="module")
def stacked_runs():
    """Three trained SMALL nets (with bias), stacked on a run axis, and their data."""
    data = tasks.xor(0)
    cfg = SMALL.replace(bias=True, epochs=150)
    with adam_promotion():
        out = run_grid(cfg, data, make_grid(cfg, seeds=3))
    return cfg, data, tuple(jnp.asarray(w) for w in out.result.edges)


def test_retrain_keeps_the_mask_and_does_not_raise_the_training_loss(stacked_runs):
    cfg, data, edges = stacked_runs
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    out = finetune.retrain_from_mask(edges, cfg.eps, x, y, cfg.lr, epochs=100, loss="bce", hidden_activation="relu")
    for w, v in zip(edges, out):
        pruned = np.abs(np.asarray(w)) < cfg.eps
        assert np.all(np.asarray(v)[pruned] == 0.0)
    loss = jax.vmap(lambda e: task_loss(e, x, y, loss="bce", hidden_activation="relu"))
    before = np.asarray(loss(tuple(jax.vmap(lambda e: masked(e, cfg.eps))(edges))))
    after = np.asarray(loss(out))
    assert np.all(after <= before + 1e-6), (before, after)


def test_rewind_starts_from_the_survivors_initial_values(stacked_runs):
    cfg, data, edges = stacked_runs
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    init = finetune.initial_edges(cfg, [0, 1, 2])
    np.testing.assert_array_equal(np.asarray(init[0][1]),
                                  np.asarray(init_edges(jax.random.key(1), cfg.layers, cfg.init, bias=True)[0]))
    start = finetune.rewind_and_retrain(edges, init, cfg.eps, x, y, cfg.lr, epochs=0, loss="bce",
                                        hidden_activation="relu")
    for w, w0, s in zip(edges, init, start):
        keep = np.abs(np.asarray(w)) >= cfg.eps
        np.testing.assert_array_equal(np.asarray(s), np.where(keep, np.asarray(w0), 0.0))


def test_magnitude_baseline_hits_the_requested_edge_counts(stacked_runs):
    cfg, data, edges = stacked_runs
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    ks = np.array([0, 5, 13])  # 13 = all edges of [2,3,1] with bias
    out, m = finetune.magnitude_baseline(edges, ks, x, y, 1e-2, epochs=20, loss="bce", hidden_activation="relu")
    counts = sum(np.asarray(mk).reshape(3, -1).sum(1) for mk in m)
    np.testing.assert_array_equal(counts, ks)
    nonzero = sum((np.asarray(w) != 0).reshape(3, -1).sum(1) for w in out)
    assert np.all(nonzero <= ks)


def test_magnitude_masks_and_masked_finetune():
    w = (jnp.array([[0.5, -0.1], [0.05, -2.0]]), jnp.array([[0.3, -0.01]]))
    m = magnitude_masks(w, 3)
    assert [np.asarray(a).tolist() for a in m] == [[[True, False], [False, True]], [[True, False]]]
    assert sum(int(np.asarray(a).sum()) for a in magnitude_masks(w, 0)) == 0
    ml = magnitude_masks_per_layer(w, jnp.array([1, 1]))
    assert [np.asarray(a).tolist() for a in ml] == [[[False, False], [False, True]], [[True, False]]]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(40, 2)), jnp.float32)
    y = jnp.asarray((np.asarray(x)[:, :1] > 0).astype(np.float32))
    with adam_promotion():
        ft = finetune_masked(w, m, x, y, 1e-2, epochs=50, loss="bce", hidden_activation="relu")
    for a, mk, w0 in zip(ft, m, w):
        a, mk = np.asarray(a), np.asarray(mk)
        assert np.all(a[~mk] == 0)  # pruned edges stay exactly zero
        assert np.any(a[mk] != np.asarray(w0)[mk])  # kept edges were trained
