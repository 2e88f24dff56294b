"""Structure: masks at ε, active / effective edges, live nodes, pruning; of plain nets, nets with
bias edges and skip nets (layered DAGs)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import XOR7
from hypothesis import given, settings
from hypothesis import strategies as st

from sbp_jax import analyse, forward, live_nodes, masked, masks, prune, tasks
from sbp_jax.layout import Layout, layout_of
from sbp_jax.metrics import evaluate
from sbp_jax.structure import effective_masks, selected_features, structure_dict

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


def _numpy_relu_net(edges, x, skip=False):
    """float64 numpy forward of a relu net; with skip, layer l+1 reads [h_0, ..., h_l]."""
    hs = [x.astype(np.float64)]
    for l, w in enumerate(edges):
        h = (np.concatenate(hs, axis=1) if skip else hs[-1]) @ np.asarray(w, np.float64).T
        hs.append(np.maximum(h, 0.0) if l < len(edges) - 1 else h)
    return hs[-1]


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


# ---- bias edges -------------------------------------------------------------------------------

# The 7-edge XOR net with bias edges: h1 = relu(x1 − x2), h2 = relu(x2 − x1)
# (4 edges, no hidden bias), logit = 4·h1 + 4·h2 − 2 (3 edges, one of them the
# output's bias). Columns: x1, x2, bias. (Also used by test_topology, test_export, test_plots.)
def test_hand_set_seven_edge_net_computes_noisy_xor():
    data = tasks.xor(0)
    for x, y in ((tasks.XOR_CORNERS, np.array([[0.0], [1.0], [1.0], [0.0]])), (data.x_train, data.y_train),
                 (data.x_test, data.y_test)):
        acc = evaluate(XOR7, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), loss="bce",
                       hidden_activation="relu")["accuracy"]
        assert float(acc) == 1.0
    s = analyse(XOR7, 1e-2)
    assert s.active_per_layer.tolist() == [4, 3] and s.effective_per_layer.tolist() == [4, 3]
    assert s.live_per_layer.tolist() == [2, 2, 1] and s.live_bias_per_layer.tolist() == [0, 1]
    d = structure_dict(s, Layout((2, 2, 1), bias=True))
    assert d["active_edges"] == 7 and d["total_edges"] == 9 and d["live_bias_nodes"] == [0, 1]


def test_bias_edges_are_counted_thresholded_and_pruned_like_others():
    # layer 0: unit 0 reads x1 and the bias (0.5); unit 1 reads only a tiny bias (pruned);
    # unit 2 reads only the bias (live: bias nodes are sources). Output reads units 0 and 2.
    e = (jnp.array([[1.0, 0.0, 0.5], [0.0, 0.0, 0.001], [0.0, 0.0, 2.0]], jnp.float32),
         jnp.array([[1.0, 0.0, 3.0, 0.002]], jnp.float32))
    assert layout_of(e) == Layout((2, 3, 1), bias=True)
    s = analyse(e, 1e-2)
    assert s.active_per_layer.tolist() == [3, 2]
    assert s.effective_per_layer.tolist() == [3, 2]
    assert s.live_per_layer.tolist() == [1, 2, 1]  # x2 unused; hidden unit 1 dead
    assert s.live_bias_per_layer.tolist() == [1, 0]  # the output's bias edge (0.002) is pruned
    mk = masks(e, 1e-2)
    assert not bool(mk[0][1, 2]) and not bool(mk[1][0, 3])
    m = masked(e, 1e-2)
    assert float(m[0][1, 2]) == 0.0 and float(m[1][0, 3]) == 0.0
    live = live_nodes(mk)
    assert [v.tolist() for v in live] == [[True, False, True], [True, False, True, False], [True]]
    p = prune(e, 1e-2)  # compact (live nodes + bias columns): (2 hidden, 1 + bias) and (1, 2 + bias)
    assert [w.shape for w in p] == [(2, 2), (1, 3)]
    x = jax.random.uniform(jax.random.key(0), (9, 2))
    np.testing.assert_allclose(np.asarray(forward(p, x[:, :1])), np.asarray(forward(m, x)), rtol=1e-6)


# ---- skip nets (layered DAGs) -----------------------------------------------------------------

# [2, 2, 2, 1] skip, no bias. Active: x0→h1_0 (dead end: h1_0 feeds nothing), x1→h2_1 → y,
# and the direct edge x0→y. h1 is therefore dead, h2_1 live, both inputs live.
E = (jnp.array([[1.0, 0.0], [0.0, 0.0]]),                       # into layer 1: from x0, x1
     jnp.array([[0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]]),   # into layer 2: from x0, x1, h1_0, h1_1
     jnp.array([[0.5, 0.0, 0.0, 0.0, 0.0, -1.0]]))              # into y: from x0, x1, h1_0, h1_1, h2_0, h2_1


def test_structure_follows_paths_across_layers():
    s = analyse(E, 0.1, bias=False)
    assert s.active_per_layer.tolist() == [1, 1, 2]
    assert s.effective_per_layer.tolist() == [0, 1, 2]  # x0→h1_0 leads nowhere
    assert s.live_per_layer.tolist() == [2, 0, 1, 1]
    live = live_nodes(masks(E, 0.1), bias=False)
    assert [v.tolist() for v in live] == [[True, True], [False, False], [False, True], [True]]
    d = structure_dict(s, Layout((2, 2, 2, 1), skip=True))
    assert d["total_edges"] == 4 + 8 + 6 and d["compact_layers"] == [2, 0, 1, 1]


def test_prune_keeps_the_dag_and_reproduces_the_masked_net():
    p = prune(E, 0.1, bias=False)
    assert [w.shape for w in p] == [(0, 2), (1, 2), (1, 3)]  # h1 removed, h2 keeps one unit
    x = jax.random.uniform(jax.random.key(5), (11, 2))
    np.testing.assert_allclose(np.asarray(forward(p, x)), np.asarray(forward(masked(E, 0.1), x)), rtol=1e-6)


DAG_LAYERS = [(2, 3, 1), (1, 2, 2, 1), (3, 2, 2, 2), (2, 1, 3, 1, 2)]


def _brute_force_dag(ms, lay: Layout):
    """Enumerate every input→output path of the DAG (any layer jumps the layout allows); a node is
    live when some path of active edges passes through it, an edge effective when one uses it."""
    L = lay.n_layers
    live = [np.zeros(n, bool) for n in lay.widths]
    eff = [np.zeros(m.shape, bool) for m in ms]

    def walk(path):  # path: [(layer, node), ...] ending at an output
        layer, node = path[-1]
        if layer == L:
            for k, j in path:
                live[k][j] = True
            for (k, j), (t, i) in zip(path, path[1:]):
                start = dict((kk, s) for kk, s, _ in lay.blocks(t - 1))[k]
                eff[t - 1][i, start + j] = True
            return
        for t in range(layer, L):  # edges[t] feeds layer t+1; it reads layer `layer` when skip or t == layer
            blocks = dict((kk, s) for kk, s, _ in lay.blocks(t))
            if layer not in blocks:
                continue
            for i in np.flatnonzero(ms[t][:, blocks[layer] + node]):
                walk(path + [(t + 1, int(i))])

    for j in range(lay.widths[0]):
        walk([(0, j)])
    return live, eff


@st.composite
def _sparse_dags(draw):
    layers = draw(st.sampled_from(DAG_LAYERS))
    lay = Layout(layers, False, True)
    vals = [0.0, 0.05, -0.05, 0.3, -0.8]
    edges = tuple(np.array(draw(st.lists(st.sampled_from(vals), min_size=r * c, max_size=r * c)), np.float32).reshape(r, c)
                  for r, c in map(lay.shape, range(lay.n_layers)))
    return edges, lay


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(_sparse_dags())
def test_dag_structure_matches_path_enumeration(net):
    edges, lay = net
    ms = [np.abs(w) >= 0.1 for w in edges]
    live, eff = _brute_force_dag(ms, lay)
    jm = tuple(jnp.asarray(m) for m in ms)
    for got, want in zip(live_nodes(jm, bias=False), live):
        np.testing.assert_array_equal(np.asarray(got), want)
    for got, want in zip(effective_masks(jm, bias=False), eff):
        np.testing.assert_array_equal(np.asarray(got), want)
    x = np.random.default_rng(0).uniform(size=(5, lay.widths[0])).astype(np.float32)
    p = prune(tuple(jnp.asarray(w) for w in edges), 0.1, bias=False)
    np.testing.assert_allclose(np.asarray(forward(p, jnp.asarray(x[:, live[0]]))),
                               _numpy_relu_net(masked(tuple(jnp.asarray(w) for w in edges), 0.1), x, skip=True)[:, live[-1]],
                               rtol=1e-5, atol=1e-6)


def test_selected_features_on_hand_made_edges():
    w1 = np.array([[1.0, 0.0, 0.5, 0.0],   # hidden 0 <- inputs a, c
                   [0.0, 0.0, 0.0, 0.9],   # hidden 1 <- input d, but hidden 1 has no output: d is dead
                   [0.0, 2.0, 0.0, 0.0]])  # hidden 2 <- input b
    w2 = np.array([[0.3, 0.0, 0.0]])       # output <- hidden 0 only
    assert selected_features((w1, w2), 0.1, ["a", "b", "c", "d"]) == ["a", "c"]
    assert selected_features((w1, w2), 0.6, ["a", "b", "c", "d"]) == []  # output edge pruned
    with pytest.raises(ValueError, match="len\\(names\\)=2"):
        selected_features((w1, w2), 0.1, ["a", "b"])


@pytest.mark.parametrize("bias, skip", [(False, False), (True, False), (True, True)])
def test_live_inputs_of_many_runs_equal_each_run_s_selected_features(bias, skip):
    """`live_inputs` (one compiled call over a run axis) names the same inputs as `selected_features` per run."""
    from sbp_jax.config import TrainConfig
    from sbp_jax.structure import live_inputs, selected_features

    cfg = TrainConfig(layers=(5, 4, 3, 1), bias=bias, skip=skip)
    rng = np.random.default_rng(3)
    C = 12
    edges = tuple(rng.normal(size=(C, *cfg.layout.shape(l))).astype(np.float32)
                  * (rng.uniform(size=(C, *cfg.layout.shape(l))) < 0.35) for l in range(cfg.layout.n_layers))
    eps = np.full(C, 0.5, np.float32)
    live = live_inputs(edges, eps, bias)
    names = list("abcde")
    assert live.shape == (C, 5)
    for i in range(C):
        assert [n for n, k in zip(names, live[i]) if k] == selected_features(tuple(w[i] for w in edges), 0.5, names, bias)
    assert 0 < live.sum() < live.size  # some inputs cut off, some kept: the check can fail
