"""Structure: masks at ε, active / effective edges, live nodes, pruning."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbp_jax import analyse, forward, live_nodes, masked, masks, prune
from sbp_jax.layout import Layout
from sbp_jax.structure import effective_masks, structure_dict

EPS = 0.1
# Layers (3, 3, 2). Inputs x0..x2, hidden h0..h2, outputs o0, o1; ε = 0.1.
#   x0 -> h0 (0.5), x1 -> h0 (-0.1: |w| == ε is active), x1 -> h1, x2 -> h1,
#   h2's inputs are all below ε; h0 -> o0, h2 -> o1 (0.4), h1 -> o1 below ε.
# So: h1 has active inputs but no active output (not live); h2 has an active
# output but no active input (not live); x2 feeds only the dead h1 (not live);
# o1 is reached only through h2 (not live).
W1 = np.array([[0.5, -0.1, 0.0], [0.0, -0.7, 0.3], [0.09, 0.0, -0.02]], np.float32)
W2 = np.array([[-1.2, 0.0, 0.0], [0.0, 0.08, 0.4]], np.float32)
EDGES = (jnp.asarray(W1), jnp.asarray(W2))

MASK1 = [[1, 1, 0], [0, 1, 1], [0, 0, 0]]
MASK2 = [[1, 0, 0], [0, 0, 1]]
LIVE = ([1, 1, 0], [1, 0, 0], [1, 0])
EFFECTIVE1 = [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
EFFECTIVE2 = [[1, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("eps", [EPS, jnp.float32(EPS)], ids=["float", "array"])
def test_masks_at_eps(eps):
    m = masks(EDGES, eps)
    np.testing.assert_array_equal(m[0], np.array(MASK1, bool))
    np.testing.assert_array_equal(m[1], np.array(MASK2, bool))


def test_live_nodes_hand_made():
    live = live_nodes(masks(EDGES, EPS))
    for got, want in zip(live, LIVE):
        np.testing.assert_array_equal(got, np.array(want, bool))


def test_effective_masks_hand_made():
    eff = effective_masks(masks(EDGES, EPS))
    np.testing.assert_array_equal(eff[0], np.array(EFFECTIVE1, bool))
    np.testing.assert_array_equal(eff[1], np.array(EFFECTIVE2, bool))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_analyse_hand_made(jit):
    f = jax.jit(analyse) if jit else analyse
    s = f(EDGES, jnp.float32(EPS))
    np.testing.assert_array_equal(s.active_per_layer, [4, 2])
    np.testing.assert_array_equal(s.effective_per_layer, [2, 1])
    np.testing.assert_array_equal(s.live_per_layer, [2, 1, 1])
    assert s.active_per_layer.dtype == jnp.int32


def test_analyse_eps_zero_and_large():
    s0 = analyse(EDGES, 0.0)  # every edge is active at ε = 0, zeros included
    np.testing.assert_array_equal(s0.active_per_layer, [9, 6])
    np.testing.assert_array_equal(s0.live_per_layer, [3, 3, 2])
    s_big = analyse(EDGES, 10.0)  # nothing survives
    np.testing.assert_array_equal(s_big.active_per_layer, [0, 0])
    np.testing.assert_array_equal(s_big.effective_per_layer, [0, 0])
    np.testing.assert_array_equal(s_big.live_per_layer, [0, 0, 0])


def test_analyse_vmaps_over_runs():
    other = (EDGES[0] * 10.0, EDGES[1] * 0.0)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), EDGES, other)
    s = jax.jit(jax.vmap(analyse))(stacked, jnp.array([EPS, 0.5], jnp.float32))
    np.testing.assert_array_equal(s.active_per_layer, [[4, 2], [5, 0]])  # 10·W1 >= 0.5: 5 edges
    np.testing.assert_array_equal(s.live_per_layer, [[2, 1, 1], [0, 0, 0]])


def test_structure_dict():
    d = structure_dict(analyse(EDGES, EPS), Layout((3, 3, 2)))
    assert d == {
        "active_edges": 6,
        "total_edges": 15,
        "active_per_layer": [4, 2],
        "effective_edges": 3,
        "live_nodes": [2, 1, 1],
        "compact_layers": [2, 1, 1],
    }
    assert all(type(v) is int for v in d["active_per_layer"] + d["live_nodes"])


def test_masked_zeroes_exactly_the_inactive_edges():
    m = masked(EDGES, EPS)
    np.testing.assert_array_equal(m[0], np.where(np.array(MASK1, bool), W1, 0.0))
    np.testing.assert_array_equal(m[1], np.where(np.array(MASK2, bool), W2, 0.0))


def test_prune_hand_made_compact_architecture():
    p = prune(EDGES, EPS)
    assert [w.shape for w in p] == [(1, 2), (1, 1)]  # layers (2, 1, 1)
    np.testing.assert_array_equal(p[0], np.float32([[0.5, -0.1]]))
    np.testing.assert_array_equal(p[1], np.float32([[-1.2]]))
    assert all(w.dtype == jnp.float32 for w in p)


@pytest.mark.parametrize("act", ["relu", "tanh", "identity"])
def test_pruned_net_equals_masked_net_hand_made(key, act):
    x = jax.random.normal(key, (8, 3), jnp.float32)
    full = forward(masked(EDGES, EPS), x, act)
    small = forward(prune(EDGES, EPS), x[:, :2], act)  # live inputs x0, x1
    np.testing.assert_allclose(small, full[:, :1], rtol=1e-6, atol=1e-7)  # live output o0
    np.testing.assert_array_equal(full[:, 1], 0.0)  # o1 has no live path: constant 0


# --- property tests against a brute-force path enumeration -------------------


def _brute_force_live(ms):
    """Enumerate every input→output path; a node is live when some path of
    active edges passes through it; an edge is effective when one uses it."""
    widths = [ms[0].shape[1]] + [m.shape[0] for m in ms]
    live = [np.zeros(n, bool) for n in widths]
    eff = [np.zeros(m.shape, bool) for m in ms]
    for path in itertools.product(*(range(n) for n in widths)):
        if all(ms[l][path[l + 1], path[l]] for l in range(len(ms))):
            for l, i in enumerate(path):
                live[l][i] = True
            for l in range(len(ms)):
                eff[l][path[l + 1], path[l]] = True
    return live, eff


ARCHITECTURES = [(1, 1), (2, 3, 2), (1, 3, 3, 1), (3, 2, 2, 2)]
_live = jax.jit(lambda e, eps: live_nodes(masks(e, eps)))
_effective = jax.jit(lambda e, eps: effective_masks(masks(e, eps)))
_analyse = jax.jit(analyse)
_masked = jax.jit(masked)


def _numpy_relu_net(edges, x):
    h = x.astype(np.float64)
    for l, w in enumerate(edges):
        h = h @ np.asarray(w, np.float64).T
        h = np.maximum(h, 0.0) if l < len(edges) - 1 else h
    return h


@st.composite
def _sparse_nets(draw):
    layers = draw(st.sampled_from(ARCHITECTURES))
    edges = []
    for n_in, n_out in zip(layers[:-1], layers[1:]):
        vals = draw(st.lists(st.sampled_from([0.0, 0.05, -0.05, 0.3, -0.8, 1.5]), min_size=n_in * n_out, max_size=n_in * n_out))
        edges.append(np.array(vals, np.float32).reshape(n_out, n_in))
    return tuple(edges)


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(_sparse_nets())
def test_structure_matches_brute_force(edges):
    eps = jnp.float32(0.1)
    ms = [np.abs(w) >= 0.1 for w in edges]
    live, eff = _brute_force_live(ms)
    jedges = tuple(jnp.asarray(w) for w in edges)
    for got, want in zip(_live(jedges, eps), live):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(_effective(jedges, eps), eff):
        np.testing.assert_array_equal(got, want)
    s = _analyse(jedges, eps)
    np.testing.assert_array_equal(s.active_per_layer, [m.sum() for m in ms])
    np.testing.assert_array_equal(s.effective_per_layer, [e.sum() for e in eff])
    np.testing.assert_array_equal(s.live_per_layer, [v.sum() for v in live])
    # the pruned net has the compact shape and computes the masked net's live outputs
    p = prune(jedges, 0.1)
    assert [w.shape for w in p] == [(int(b.sum()), int(a.sum())) for a, b in zip(live[:-1], live[1:])]
    x = np.linspace(-1.0, 2.0, 5 * len(live[0]), dtype=np.float32).reshape(5, len(live[0]))
    full = _numpy_relu_net(_masked(jedges, eps), x)
    small = _numpy_relu_net(p, x[:, live[0]])
    np.testing.assert_allclose(small, full[:, live[-1]], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(full[:, ~live[-1]], 0.0)


def test_fully_pruned_net_is_empty_and_still_runs():
    """Everything below ε: prune gives the width-0 architecture (0, 0, 0), and
    that net maps n samples to an (n, 0) output like any other compact net."""
    edges = (jnp.full((3, 2), 0.01, jnp.float32), jnp.full((1, 3), -0.01, jnp.float32))
    p = prune(edges, 0.1)
    assert [w.shape for w in p] == [(0, 0), (0, 0)]
    z = forward(p, jnp.zeros((4, 0), jnp.float32), "relu")
    assert z.shape == (4, 0)
