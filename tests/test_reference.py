"""The reference trainer (`sbp_jax.reference.train_core`, the executable
specification every kernel is pinned to) against the paper's procedure
written out as a Python loop; history records and their thinning. The kernels
against the reference: tests/test_conformance.py."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import SMALL, adam_promotion

from sbp_jax import TrainConfig, init_edges, make_optimizer, task_loss, train

# `sbp_jax.train` is the re-exported function; the module is reached this way.
train_mod = importlib.import_module("sbp_jax.train")


@pytest.fixture(autouse=True, scope="module")
def _standard_promotion_for_adam():
    with adam_promotion():
        yield


def reference_loop(cfg: TrainConfig, x, y, key):
    """The paper's procedure written out: one Adam step per epoch, history
    recorded from the weights each step starts from."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    edges = init_edges(key, cfg.layers, cfg.init)
    opt = make_optimizer(jnp.float32(cfg.lam), jnp.float32(cfg.lr))
    state = opt.init(edges)

    @jax.jit
    def step(edges, state):
        task, grads = jax.value_and_grad(task_loss)(
            edges, x, y, loss=cfg.loss, hidden_activation=cfg.hidden_activation
        )
        updates, state = opt.update(grads, state, edges)
        return optax.apply_updates(edges, updates), state, task

    hist = {"loss": [], "task_loss": [], "penalty": [], "active_edges": []}
    for _ in range(cfg.epochs):
        w = [np.asarray(a) for a in edges]
        penalty = cfg.lam * sum(np.abs(a.astype(np.float64)).sum() for a in w)
        active = sum(int((np.abs(a) >= np.float32(cfg.eps)).sum()) for a in w)
        edges, state, task = step(edges, state)
        hist["task_loss"].append(float(task))
        hist["penalty"].append(penalty)
        hist["loss"].append(float(task) + penalty)
        hist["active_edges"].append(active)
    return edges, {k: np.array(v) for k, v in hist.items()}


@pytest.fixture(scope="module")
def run_and_reference(xy):
    """The reference trainer (the executable specification every kernel is pinned to) against the
    Python loop; the kernels against the reference: tests/test_conformance.py."""
    cfg = SMALL.replace(lam=0.1)  # strong enough that edges cross ε during the run
    key = jax.random.key(3)
    return cfg, train(cfg, *xy, key, kernel="reference"), reference_loop(cfg, *xy, key)


def test_history_shapes_and_dtypes(run_and_reference):
    cfg, res, _ = run_and_reference
    for name in ("loss", "task_loss", "penalty"):
        a = getattr(res.history, name)
        assert a.shape == (cfg.epochs,) and a.dtype == jnp.float32
    assert res.history.active_edges.shape == (cfg.epochs,) and res.history.active_edges.dtype == jnp.int32
    assert [w.shape for w in res.edges] == [(3, 2), (1, 3)]
    assert res.diverged_at.dtype == jnp.int32


def test_train_equals_python_loop(run_and_reference):
    cfg, res, (edges, hist) = run_and_reference
    for a, b in zip(res.edges, edges):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    h = res.history
    np.testing.assert_allclose(h.task_loss, hist["task_loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.penalty, hist["penalty"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.loss, hist["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(h.active_edges, hist["active_edges"])
    # the run must exercise pruning for the active-edge comparison to mean something
    assert hist["active_edges"][0] > hist["active_edges"][-1]
    assert int(res.diverged_at) == -1


def test_history_every_k_thins_the_k1_history(run_and_reference, xy):
    cfg, res, _ = run_and_reference
    k = 7  # 60 epochs: 8 records, then 4 epochs without a record
    thin = train(cfg.replace(history_every=k), *xy, jax.random.key(3))
    n = cfg.epochs // k
    assert thin.history.loss.shape == (n,)
    # record t describes the state at the start of epoch (t+1)·k − 1
    idx = np.arange(1, n + 1) * k - 1
    for name in ("loss", "task_loss", "penalty"):
        np.testing.assert_allclose(getattr(thin.history, name), getattr(res.history, name)[idx], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(thin.history.active_edges, res.history.active_edges[idx])
    # epochs not divisible by k (60 % 7 = 4) still runs every epoch
    for a, b in zip(thin.edges, res.edges):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_history_every_zero_gives_empty_history(run_and_reference, xy):
    cfg, res, _ = run_and_reference
    bare = train(cfg.replace(history_every=0), *xy, jax.random.key(3))
    for a in bare.history:
        assert a.shape == (0,)
    for a, b in zip(bare.edges, res.edges):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(bare.diverged_at) == -1
