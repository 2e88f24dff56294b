"""baselines: the selection rule, the IMP schedule, iterative magnitude pruning with rewinding and
one-shot magnitude pruning on tiny stacked nets, and the scikit-learn / LassoNet candidates."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sbp_jax import baselines, init_edges, tasks
from sbp_jax.bundled import breast_cancer, diabetes
from sbp_jax.finetune import finetune_masked, magnitude_masks_per_layer

KW = dict(loss="bce", hidden_activation="relu")


@pytest.mark.parametrize("val, kept, tol, want", [
    ([0.90, 0.95, 0.94, 0.80], [100, 50, 10, 1], 0.02, 2),  # 0.94 is within 0.02 of 0.95 and sparser
    ([0.90, 0.95, 0.94, 0.80], [100, 50, 10, 1], 0.0, 1),  # no tolerance: the best
    ([0.95, 0.95, 0.90], [30, 30, 5], 0.0, 0),  # ties in both: the first
    ([np.nan, 0.5, 0.6], [1, 2, 3], 0.2, 1),  # non-finite never chosen
])
def test_choose_takes_the_sparsest_within_tolerance_of_the_best(val, kept, tol, want):
    assert baselines.choose(np.array(val), np.array(kept), tol) == want


def test_imp_schedule_shrinks_geometrically_to_the_target():
    sched = baselines.imp_schedule([100, 10], np.array([[1, 10], [25, 4]]), rounds=2)
    # run 0: layer 0 100 -> 10 -> 1 (sqrt(1/100) = 0.1), layer 1 stays 10; run 1: 100 -> 50 -> 25, 10 -> 6 -> 4
    np.testing.assert_array_equal(sched, [[[10, 10], [50, 6]], [[1, 10], [25, 4]]])
    assert np.all(np.diff(sched, axis=0) <= 0)


@pytest.fixture(scope="module")
def stacked():
    """Two 'dense' XOR nets [2, 6, 1] (random, standing in for trained ones), their inits and the data."""
    data = tasks.xor(0)
    dense = jax.vmap(lambda k: init_edges(k, (2, 6, 1)))(jax.random.split(jax.random.key(1), 2))
    initial = jax.vmap(lambda k: init_edges(k, (2, 6, 1)))(jax.random.split(jax.random.key(2), 2))
    return dense, initial, jnp.asarray(data.x_train), jnp.asarray(data.y_train)


def test_imp_rewind_reaches_the_per_layer_counts_with_nested_masks(stacked):
    dense, initial, x, y = stacked
    ks = np.array([[5, 3], [8, 2]])
    edges, masks = baselines.imp_rewind(dense, initial, ks, x, y, 1e-2, rounds=3, rewind_epochs=20, epochs=20, **KW)
    counts = np.stack([np.asarray(m).reshape(2, -1).sum(1) for m in masks], axis=1)
    np.testing.assert_array_equal(counts, ks)
    for w, m in zip(edges, masks):  # pruned edges are exactly zero
        assert np.all(np.asarray(w)[~np.asarray(m)] == 0)
    # the first round prunes the dense net by magnitude; every later mask lies inside it
    first = baselines.imp_schedule([12, 6], ks, 3)[0]
    first_masks = jax.vmap(magnitude_masks_per_layer)(dense, jnp.asarray(first, jnp.int32))
    for m, f in zip(masks, first_masks):
        assert not np.any(np.asarray(m) & ~np.asarray(f))


def test_one_round_from_the_init_is_the_lottery_ticket(stacked):
    """rounds=1, rewind to epoch 0: prune the dense net by magnitude, restart the survivors from their
    initial values, retrain: exactly `finetune_masked` from the masked init."""
    dense, initial, x, y = stacked
    ks = np.array([[6, 4], [6, 4]])
    edges, masks = baselines.imp_rewind(dense, initial, ks, x, y, 1e-2, rounds=1, rewind_epochs=0, epochs=20, **KW)
    want_masks = jax.vmap(magnitude_masks_per_layer)(dense, jnp.asarray(ks, jnp.int32))
    with jax.numpy_dtype_promotion("standard"):
        want = jax.vmap(lambda e, m: finetune_masked(e, m, x, y, 1e-2, epochs=20, **KW))(initial, want_masks)
    for a, b in zip(masks, want_masks):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(edges, want):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_one_shot_magnitude_keeps_the_counts(stacked):
    dense, _, x, y = stacked
    ks = np.array([[4, 2], [7, 5]])
    edges, masks = baselines.one_shot_magnitude(dense, ks, x, y, 1e-2, epochs=20, **KW)
    counts = np.stack([np.asarray(m).reshape(2, -1).sum(1) for m in masks], axis=1)
    np.testing.assert_array_equal(counts, ks)
    assert all(np.all(np.asarray(w)[~np.asarray(m)] == 0) for w, m in zip(edges, masks))


@pytest.fixture(scope="module")
def small_sets():
    return breast_cancer(seed=0), diabetes(seed=0)


def test_l1_linear_counts_non_zero_coefficients_and_sparsifies_with_the_penalty(small_sets):
    for ds, grid in zip(small_sets, ([1e-2, 1.0], [0.3, 1e-3])):  # strong penalty first
        c = baselines.l1_linear(ds, grid)
        assert c.param.tolist() == grid and c.kept[0] < c.kept[1] <= ds.n_in * max(ds.n_out, 1)
        assert np.all(c.features <= ds.n_in) and np.all(c.test > 0.2)


def test_gradient_boosting_counts_tree_nodes(small_sets):
    ds = small_sets[0]
    with threadpool_limits(1):  # OpenMP on a shared machine: one thread is faster
        c = baselines.gradient_boosting(ds, [2, 4], max_iter=5)
    assert c.kept.tolist() == [5 * 3, 5 * 7]  # 5 trees of 1 split + 2 leaves, of 3 splits + 4 leaves
    assert np.all(c.features >= 1) and np.all(c.val > 0.8)


def test_lassonet_path_when_installed(small_sets):
    pytest.importorskip("lassonet")
    ds = small_sets[1]
    ds = dataclasses.replace(ds, x_train=ds.x_train[:120], y_train=ds.y_train[:120])
    c = baselines.lassonet(ds, hidden=(4,), epochs=20, path_multiplier=2.0, threads=1)
    assert len(c.param) >= 2 and np.all(np.diff(c.param) > 0)
    assert c.features[0] == ds.n_in and c.features[-1] < ds.n_in  # the path drops inputs
