"""Canonical forms of learned graphs (plain, with bias edges, skip nets) and topology statistics
across runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_structure import XOR7

from sbp_jax import topology
from sbp_jax.layout import Layout
from sbp_jax.network import forward, init_edges
from sbp_jax.topology import canonical_form, canonical_forms, topology_stats

EPS = 0.01


def _net(rng, layers, p_zero=0.3):
    return tuple(rng.normal(size=(b, a)).astype(np.float32) * (rng.random((b, a)) > p_zero)
                 for a, b in zip(layers[:-1], layers[1:]))


def _permute(edges, perms):
    """Permute hidden units: perms[l] for hidden layer l+1."""
    out = list(edges)
    for l, p in enumerate(perms, start=1):
        out[l - 1] = out[l - 1][p, :]
        out[l] = out[l][:, p]
    return tuple(out)


@pytest.mark.parametrize("layers", [(2, 4, 1), (2, 8, 1), (3, 5, 4, 2)])
@pytest.mark.parametrize("seed", range(5))
def test_permuted_copies_have_equal_forms(layers, seed):
    rng = np.random.default_rng(seed)
    e = _net(rng, layers)
    perms = [rng.permutation(n) for n in layers[1:-1]]
    for signed in (False, True):
        a, b = canonical_form(e, EPS, signed=signed), canonical_form(_permute(e, perms), EPS, signed=signed)
        assert a == b and a.key == b.key and a.exact


def test_different_graphs_differ():
    w1 = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    w2 = np.array([[1.0, 1.0, 1.0]], np.float32)
    base = canonical_form((w1, w2), EPS)
    moved = w1.copy()
    moved[1] = [0.0, 1.0]  # unit 1 now reads x1 instead of x0: a different graph
    assert canonical_form((moved, w2), EPS) != base
    # swapping the inputs is not a symmetry (inputs are labelled)
    asym = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    assert canonical_form((asym, w2), EPS) != canonical_form((asym[:, ::-1], w2), EPS)
    # sign matters only when asked
    neg = (w1, -w2)
    assert canonical_form(neg, EPS) == base
    assert canonical_form(neg, EPS, signed=True) != canonical_form((w1, w2), EPS, signed=True)


def test_dead_nodes_and_subthreshold_edges_are_removed():
    w1 = np.array([[1.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32)
    w2 = np.array([[1.0, 1.0, 0.001]], np.float32)  # unit 2 has no active out-edge: dead
    f = canonical_form((w1, w2), EPS)
    assert f.widths == (2, 2, 1) and f.n_edges == 5
    assert f == canonical_form((w1[:2], w2[:, :2]), EPS)


def test_two_non_isomorphic_graphs_with_equal_degrees():
    """Refinement alone cannot split these (all hidden units look alike);
    the exact tie search must still tell them apart and match permutations."""
    # layers (2, 4, 4, 1): two different bipartite wirings between hidden layers
    w1 = np.ones((4, 2), np.float32)
    w3 = np.ones((1, 4), np.float32)
    cycle = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], np.float32)  # an 8-cycle
    two = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)  # two 4-cycles
    a, b = canonical_form((w1, cycle, w3), EPS), canonical_form((w1, two, w3), EPS)
    assert a != b
    rng = np.random.default_rng(0)
    p, q = rng.permutation(4), rng.permutation(4)
    assert canonical_form((w1[p], cycle[q][:, p], w3[:, q]), EPS) == a


def test_stats_counts_survival_consensus():
    rng = np.random.default_rng(1)
    w1 = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
    w2 = np.array([[1.0, 1.0, 1.0, 0.0]], np.float32)
    runs = [_permute((w1, w2), [rng.permutation(4)]) for _ in range(3)]
    other = (np.array([[1.0, 1.0], [0, 0], [0, 0], [0, 0]], np.float32), np.array([[1.0, 0, 0, 0]], np.float32))
    runs.append(other)
    stacked = [np.stack([r[l] for r in runs]) for l in range(2)]
    st = topology_stats(stacked, EPS, (2, 4, 1))
    assert st.n_distinct == 2
    assert [c for _, c in st.counts] == [3, 1]
    assert st.counts[0][0] == canonical_form((w1, w2), EPS)
    np.testing.assert_allclose(sum(s.sum() for s in st.survival), (7 * 3 + 3) / 4)
    assert int(sum(c.sum() for c in st.consensus)) == 7  # the 3-of-4 graph
    assert len(canonical_forms(stacked, EPS)) == 4


def test_canonical_form_with_bias_is_permutation_invariant_and_sees_bias_edges():
    perm = (XOR7[0][::-1], XOR7[1][:, jnp.array([1, 0, 2])])  # hidden units swapped
    a, b = canonical_form(XOR7, 1e-2), canonical_form(perm, 1e-2)
    assert a == b and a.bias and a.n_edges == 7 and a.widths == (2, 2, 1)
    assert [x.shape for x in a.arrays()] == [(2, 3), (1, 3)]
    no_out_bias = (XOR7[0], XOR7[1].at[0, 2].set(0.0))
    c = canonical_form(no_out_bias, 1e-2)
    assert c != a and c.n_edges == 6
    hidden_bias = (XOR7[0].at[0, 2].set(0.3), XOR7[1])
    assert canonical_form(hidden_bias, 1e-2).n_edges == 8


def test_canonical_form_is_invariant_to_hidden_permutations_of_a_skip_net():
    e = init_edges(jax.random.key(10), (2, 3, 3, 1), skip=True)
    e = tuple(jnp.where(jax.random.uniform(jax.random.key(11 + l), w.shape) < 0.4, 0.0, w) for l, w in enumerate(e))
    p1, p2 = np.array([2, 0, 1]), np.array([1, 2, 0])
    lay = Layout((2, 3, 3, 1), False, True)

    def permute(w, l):  # rows of layer l+1, column blocks of every source layer
        w = np.asarray(w)
        rows = {0: p1, 1: p2}.get(l, np.arange(w.shape[0]))
        cols = np.concatenate([s + {1: p1, 2: p2}.get(k, np.arange(n)) for k, s, n in lay.blocks(l)])
        return jnp.asarray(w[np.ix_(rows, cols)])

    ep = tuple(permute(w, l) for l, w in enumerate(e))
    x = jax.random.uniform(jax.random.key(12), (5, 2))
    np.testing.assert_allclose(np.asarray(forward(ep, x)), np.asarray(forward(e, x)), rtol=1e-5)
    f1, f2 = topology.canonical_form(e, 1e-2, bias=False), topology.canonical_form(ep, 1e-2, bias=False)
    assert f1 == f2 and f1.skip
    other = tuple(w.at[0, 0].set(0.0) if l == 2 else w for l, w in enumerate(e))  # drop the direct x0→y edge
    assert topology.canonical_form(other, 1e-2, bias=False) != f1
    st = topology.topology_stats([jnp.stack([a, b]) for a, b in zip(e, ep)], 1e-2, (2, 3, 3, 1), bias=False)
    assert st.n_distinct == 1 and [s.shape for s in st.aligned_survival] == [lay.shape(l) for l in range(3)]
