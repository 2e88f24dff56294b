"""Skip connections (`TrainConfig.skip`): layout, forward, structure, export,
topology and training of layered-DAG nets."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax import export, sweep, tasks, topology
from sbp_jax.config import TrainConfig
from sbp_jax.kernels import select
from sbp_jax.layout import Layout, layout_of
from sbp_jax.network import SMALL_LAYER_EDGES, SparseMLP, forward, init_edges
from sbp_jax.structure import analyse, effective_masks, live_nodes, masked, masks, prune, structure_dict
from sbp_jax.train import train

from conftest import adam_promotion

relu = lambda z: np.maximum(z, 0.0)


def _reference(edges, x, bias: bool):
    """Plain numpy forward of a skip net: layer l+1 reads [h_0, ..., h_l (, 1)]."""
    hs = [np.asarray(x, np.float64)]
    for l, w in enumerate(edges):
        inp = np.concatenate(hs + ([np.ones((len(x), 1))] if bias else []), axis=1)
        z = inp @ np.asarray(w, np.float64).T
        hs.append(relu(z) if l < len(edges) - 1 else z)
    return hs[-1]


# --- layout --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [(2, 4, 1), (3, 5, 2, 2), (1, 1, 1), (4, 3, 3, 3, 1)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("skip", [False, True])
def test_layout_shapes_round_trip(layers, bias, skip):
    lay = Layout(layers, bias, skip)
    e = init_edges(jax.random.key(0), layers, bias=bias, skip=skip)
    assert tuple(w.shape for w in e) == tuple(lay.shape(l) for l in range(len(layers) - 1))
    assert sum(w.size for w in e) == lay.total_edges == TrainConfig(layers=layers, bias=bias, skip=skip).total_edges
    assert layout_of(e, n_in=layers[0]) == lay  # the input width always resolves the layout
    assert layout_of(e, bias=bias) == lay
    if not skip:
        assert layout_of(e) == lay  # a plain net's bias flag is in its shapes


def test_layout_of_refuses_the_ambiguous_skip_bias_case_and_bad_shapes():
    e = init_edges(jax.random.key(0), (2, 4, 1), bias=True, skip=True)  # same shapes as [3,4,1] with skip
    with pytest.raises(ValueError, match="bias=None is ambiguous"):
        layout_of(e)
    assert layout_of(e, bias=False) == Layout((3, 4, 1), False, True)
    with pytest.raises(ValueError, match=r"n_in=5 is invalid"):
        layout_of(e, n_in=5)
    with pytest.raises(ValueError, match="fit no layout"):
        layout_of((jnp.zeros((4, 2)), jnp.zeros((1, 9))))
    assert Layout((2, 4, 1), skip=True).blocks(1) == ((0, 0, 2), (1, 2, 4))


def test_config_validates_skip():
    with pytest.raises(TypeError, match="skip=1 is invalid"):
        TrainConfig(skip=1)
    with pytest.raises(ValueError, match=r"skip=True is invalid.*hidden layer"):
        TrainConfig(layers=(2, 1), skip=True)
    cfg = TrainConfig(skip=True)
    assert cfg.total_edges == 4 * 2 + 1 * 6
    assert select(cfg.static_part(), single=True) == ("two_layer", "not single: skip=True: the single-run kernel runs the paper's plain setting")


# --- forward -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [(2, 4, 1), (3, 30, 2), (2, 3, 3, 2)])  # (3,30,2): matmul layers
@pytest.mark.parametrize("bias", [False, True])
def test_forward_matches_numpy_reference(layers, bias):
    e = init_edges(jax.random.key(1), layers, bias=bias, bias_init="same", skip=True)
    assert any(w.size > SMALL_LAYER_EDGES for w in e) == (layers == (3, 30, 2))
    x = jax.random.normal(jax.random.key(2), (7, layers[0]))
    np.testing.assert_allclose(np.asarray(forward(e, x)), _reference(e, x, bias), rtol=1e-5, atol=1e-5)


def test_skip_net_with_zero_skip_edges_is_the_plain_net():
    plain = init_edges(jax.random.key(3), (2, 3, 3, 1), bias=True, bias_init="same")
    lay = Layout((2, 3, 3, 1), True, True)
    skip = []
    for l, w in enumerate(plain):
        full = jnp.zeros(lay.shape(l))
        k, start, n = lay.blocks(l)[-1]  # the block of layer l itself, then the bias column
        full = full.at[:, start:start + n].set(w[:, :n]).at[:, -1].set(w[:, -1])
        skip.append(full)
    x = jax.random.uniform(jax.random.key(4), (9, 2))
    np.testing.assert_array_equal(np.asarray(forward(tuple(skip), x)), np.asarray(forward(plain, x)))


# --- structure -----------------------------------------------------------------------------------

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


def test_export_round_trip_with_skip_and_bias_edges():
    e = init_edges(jax.random.key(6), (2, 4, 3, 1), bias=True, bias_init="same", skip=True)
    e = tuple(jnp.where(jax.random.uniform(jax.random.key(7 + l), w.shape) < 0.5, 0.0, w) for l, w in enumerate(e))
    x = jax.random.uniform(jax.random.key(9), (20, 2))
    g = export.compact(e, 1e-2, "relu", "sigmoid", bias=True)
    assert g.skip and g.bias
    assert export.verify(g, e, 1e-2, x).max_abs_deviation < 1e-5
    doc = export.to_json(g)
    assert doc["skip"] and {ed["from_layer"] for ed in doc["edges"]} - {ed["layer"] for ed in doc["edges"]}
    back = export.from_json(json.dumps(doc))
    for a, b in zip(back.edges, g.edges):
        np.testing.assert_array_equal(a, b)
    assert export.verify(back, e, 1e-2, x).max_abs_deviation < 1e-5
    dot = export.to_dot(g)
    n_skip = sum(1 for ed in doc["edges"] if ed["from_layer"] < ed["layer"])
    assert n_skip and dot.count("->") == doc["n_edges"]
    assert g.module().layers == g.layers


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


# --- training ------------------------------------------------------------------------------------

CFG = TrainConfig(layers=(2, 3, 1), skip=True, epochs=60, history_every=20)


@pytest.fixture(scope="module")
def xor_data():
    d = tasks.xor(0)
    return d.x_train, d.y_train, d.x_test, d.y_test


def test_skip_training_matches_autodiff_of_the_objective(xor_data):
    x, y = (jnp.asarray(v, jnp.float32) for v in xor_data[:2])
    with adam_promotion():
        one = train(CFG.replace(epochs=1, lam=0.0), x, y, jax.random.key(0))
    e0 = init_edges(jax.random.key(0), CFG.layers, skip=True)
    g = jax.grad(lambda e: jnp.mean(jax.nn.softplus(z := forward(e, x)[:, 0]) - y[:, 0] * z))(e0)
    # one Adam step from zero moments moves every weight by lr·sign(g) (up to Adam's ε)
    for w1, w0, gl in zip(one.edges, e0, g):
        np.testing.assert_allclose(np.asarray(w1 - w0), -1e-3 * np.sign(np.asarray(gl)), atol=1e-6)


def test_sweep_matches_single_runs(xor_data):
    with adam_promotion():
        res = sweep.run_grid(CFG, xor_data, sweep.make_grid(CFG, seeds=[0, 1, 2]))
        for i in range(3):
            single = train(CFG, jnp.asarray(xor_data[0]), jnp.asarray(xor_data[1]), jax.random.key(i))
            for a, b in zip(res.result.edges, single.edges):
                np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), atol=1e-6)
            s = analyse(single.edges, CFG.eps, False)
            np.testing.assert_array_equal(np.asarray(res.structure.active_per_layer[i]), s.active_per_layer)
    assert [w.shape[1:] for w in res.result.edges] == [(3, 2), (1, 5)]


def test_sparse_mlp_module_runs_a_skip_net():
    e = init_edges(jax.random.key(13), (2, 4, 1), skip=True)
    m = SparseMLP(e, "relu", "sigmoid", bias=False)
    x = jnp.array([0.3, 0.9])
    assert m.layers == (2, 4, 1)
    np.testing.assert_allclose(np.asarray(m(x)), 1 / (1 + np.exp(-_reference(e, x[None], False)[0])), rtol=1e-5)


# --- the command lines ---------------------------------------------------------------------------


def test_cli_xor_and_topology_with_skip_edges(tmp_path):
    from test_cli import run_cli

    run_cli("experiments.xor", "--skip", "--bias", "--epochs", "30", "--seeds", "2", "--out", str(tmp_path / "x"))
    r = json.loads((tmp_path / "x" / "results.json").read_text())
    assert r["config"]["skip"] and r["config"]["bias"]
    for run in r["runs"]:
        s = run["structure"]
        assert s["total_edges"] == 4 * 3 + 1 * 7 and len(s["live_bias_nodes"]) == 2
    assert (tmp_path / "x" / "graph.png").stat().st_size > 0
    run_cli("experiments.topology", "--skip", "--epochs", "30", "--seeds", "3", "--out", str(tmp_path / "t"))
    t = json.loads((tmp_path / "t" / "results.json").read_text())
    exp = t["export"]
    assert exp["verification"]["train"]["max_abs_deviation"] < 1e-5
    assert exp["verification"]["reloaded_train"]["max_abs_deviation"] < 1e-5
    assert exp["n_edges"] <= 14 and all(g.get("skip") for g in t["summary"]["top_graphs"])
    run_cli("experiments.sweep", "--task", "xor", "--lams", "0.001,0.01", "--seeds", "2", "--epochs", "20", "--skip",
            "--bias", "--no-progress", "--no-plots", "--out", str(tmp_path / "s"))
    s = json.loads((tmp_path / "s" / "results.json").read_text())
    assert s["config"]["skip"] and len(s["records"]) == 4
    assert all(r["total_edges"] == 19 and sum(r["active_per_layer"]) == r["active_edges"] for r in s["records"])


def test_compare_variants_recognises_the_five_edge_skip_xor_net():
    from experiments.compare_variants import assess

    # −2·x1 + x2 + 3·relu(x1 − x2): corners (1,0) → 1, (0,1) → 1, (1,1) → −1, (0,0) → 0 (class 0)
    net = (jnp.array([[1.0, -1.0]]), jnp.array([[-2.0, 1.0, 3.0]]))
    mirror = (jnp.array([[-1.0, 1.0]]), jnp.array([[1.0, -2.0, 3.0]]))
    stacked = tuple(jnp.stack(ws) for ws in zip(net, mirror))
    cfg = TrainConfig(layers=(2, 1, 1), skip=True)
    out = assess(stacked, cfg, tasks.xor(0), "accuracy")
    assert out["effective"].tolist() == [5, 5] and out["corners"].tolist() == [1.0, 1.0]
    assert out["found"].all()
    # without the hidden unit the net is linear: z(1,1) = z(1,0) + z(0,1) > 0, so the corners fail
    linear = (jnp.zeros((1, 2)), jnp.array([[1.0, 1.0, 0.0]]))
    out = assess(tuple(w[None] for w in linear), cfg, tasks.xor(0), "accuracy")
    assert out["corners"].tolist() == [0.75] and not out["found"].any()


# --- structure of random sparse DAGs against path enumeration -----------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

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
                               _reference(masked(tuple(jnp.asarray(w) for w in edges), 0.1), x, False)[:, live[-1]],
                               rtol=1e-5, atol=1e-6)


def test_minimal_structure_sizes_per_net_family():
    from experiments.compare_variants import minimal_structure

    ok = {"train": np.array([1.0]), "corners": np.array([1.0]), "test": np.array([0.995])}
    sizes = {(b, s): minimal_structure(TrainConfig(bias=b, skip=s), ok)[0] for b in (False, True) for s in (False, True)}
    assert sizes == {(False, False): 6, (True, False): 7, (False, True): 5, (True, True): 6}
    add = TrainConfig(layers=(2, 8, 1), loss="mse")
    assert [minimal_structure(add.replace(skip=s), ok)[0] for s in (False, True)] == [3, 2]
