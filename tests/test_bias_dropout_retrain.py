"""Bias as an edge, structural dropout, retraining from the mask (and the
lottery-ticket rewind), the magnitude baseline at equal edge counts, and
their CLI flags (issue 6, items 1, 5, 6, 7)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SMALL, adam_promotion, assert_tree_bitwise_equal
from sbp_jax import TrainConfig, analyse, forward, init_edges, masked, prune, tasks, train
from sbp_jax import finetune, sweep
from sbp_jax.metrics import evaluate
from sbp_jax.objective import task_loss
from sbp_jax.layout import Layout, layout_of
from sbp_jax.structure import live_nodes, masks, structure_dict

# The 7-edge XOR net with bias edges: h1 = relu(x1 − x2), h2 = relu(x2 − x1)
# (4 edges, no hidden bias), logit = 4·h1 + 4·h2 − 2 (3 edges, one of them the
# output's bias). Columns: x1, x2, bias.
XOR7 = (
    jnp.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]], jnp.float32),
    jnp.array([[4.0, 4.0, -2.0]], jnp.float32),
)


# ---- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize("kw, needle", [
    (dict(bias=1), "bias=1 is invalid: allowed True or False"),
    (dict(bias_init="ones"), "bias_init='ones' is invalid: allowed one of 'same', 'zeros'"),
    (dict(dropout=1.0), "dropout=1.0 is invalid: allowed a probability in [0, 1)"),
    (dict(dropout=-0.1), "dropout=-0.1 is invalid"),
    (dict(dropout=float("nan")), "dropout=nan is invalid"),
])
def test_config_rejects_bad_bias_and_dropout(kw, needle):
    with pytest.raises((ValueError, TypeError), match=needle.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**kw)


def test_total_edges_counts_bias_edges():
    assert TrainConfig(layers=(2, 4, 1)).total_edges == 12
    assert TrainConfig(layers=(2, 4, 1), bias=True).total_edges == 17


# ---- bias as an edge ------------------------------------------------------------------------


def test_init_with_bias_keeps_the_bias_free_weights(key):
    plain = init_edges(key, (2, 4, 1))
    for bias_init in ("zeros", "same"):
        e = init_edges(key, (2, 4, 1), bias=True, bias_init=bias_init)
        assert [w.shape for w in e] == [(4, 3), (1, 5)]
        for w, p in zip(e, plain):
            np.testing.assert_array_equal(np.asarray(w[:, :-1]), np.asarray(p))
        if bias_init == "zeros":
            assert all(float(jnp.abs(w[:, -1]).max()) == 0.0 for w in e)
        else:
            assert all(float(jnp.abs(w[:, -1]).max()) > 0.0 for w in e)


@pytest.mark.parametrize("layers", [(2, 4, 1), (3, 40, 5)])  # small (column) and large (matmul) paths
def test_forward_with_bias_is_the_affine_map(key, layers):
    e = init_edges(key, layers, bias=True, bias_init="same")
    x = jax.random.normal(jax.random.key(1), (7, layers[0]))
    h = x
    for l, w in enumerate(e):
        h = h @ w[:, :-1].T + w[:, -1][None, :]
        if l < len(e) - 1:
            h = jax.nn.relu(h)
    np.testing.assert_allclose(np.asarray(forward(e, x)), np.asarray(h), rtol=1e-5, atol=1e-5)


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


def test_bias_edges_are_penalised_by_training(xor_data):
    cfg = SMALL.replace(bias=True, bias_init="same", lam=0.5, epochs=60)
    with adam_promotion():
        r = train(cfg, xor_data.x_train, xor_data.y_train, jax.random.key(0))
        r0 = train(cfg.replace(lam=0.0), xor_data.x_train, xor_data.y_train, jax.random.key(0))
    # a large λ shrinks the bias edges too: fewer active ones, smaller total |b| than with λ = 0
    bias_l1 = lambda e: sum(float(jnp.abs(w[:, -1]).sum()) for w in e)
    assert bias_l1(r.edges) < bias_l1(r0.edges)
    assert sum(int((jnp.abs(w[:, -1]) < cfg.eps).sum()) for w in r.edges) >= 1
    assert int(r.history.active_edges[-1]) < cfg.total_edges == 13


@pytest.mark.slow
def test_xor_with_bias_reaches_full_training_accuracy(xor_data):
    cfg = TrainConfig(layers=(2, 4, 1), bias=True, lr=1e-2, epochs=1000)
    from sbp_jax import make_grid, run_grid
    with adam_promotion():
        out = run_grid(cfg, (xor_data.x_train, xor_data.y_train, xor_data.x_test, xor_data.y_test),
                       make_grid(cfg, seeds=8))
    assert np.asarray(out.train["accuracy"]).max() == 1.0


# ---- structural dropout ---------------------------------------------------------------------


def _run(cfg, data, key):
    with adam_promotion():
        return train(cfg, data.x_train, data.y_train, key)


def test_dropout_zero_is_bitwise_the_baseline(xor_data, key):
    base = _run(SMALL, xor_data, key)
    same = _run(SMALL.replace(dropout=0.0), xor_data, key)
    assert_tree_bitwise_equal(base, same)


def test_dropout_changes_the_result_and_is_deterministic_per_key(xor_data, key):
    cfg = SMALL.replace(dropout=0.3)
    a, b = _run(cfg, xor_data, key), _run(cfg, xor_data, key)
    assert_tree_bitwise_equal(a, b)
    base = _run(SMALL, xor_data, key)
    assert any(not np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(a.edges, base.edges))
    c = _run(cfg, xor_data, jax.random.key(1))
    assert any(not np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(a.edges, c.edges))


def test_dropout_masks_stream_and_scaling(key):
    from sbp_jax.loop import dropout_key, dropout_masks

    e = init_edges(key, (20, 30, 10))
    m0, m1 = (dropout_masks(dropout_key(key), t, e, 0.25) for t in (0, 1))
    vals = np.unique(np.concatenate([np.asarray(m).ravel() for m in m0]))
    np.testing.assert_allclose(vals, [0.0, 1 / 0.75], rtol=1e-6)
    kept = np.mean(np.concatenate([np.asarray(m).ravel() for m in m0]) > 0)
    assert 0.68 < kept < 0.82
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(m0, m1))


# ---- retraining, rewind, magnitude baseline (stacked over runs) ------------------------------


@pytest.fixture(scope="module")
def stacked_runs():
    """Three trained SMALL nets (with bias), stacked on a run axis, and their data."""
    from sbp_jax import make_grid, run_grid

    data = tasks.xor(0)
    cfg = SMALL.replace(bias=True, epochs=150)
    with adam_promotion():
        out = run_grid(cfg, (data.x_train, data.y_train, data.x_test, data.y_test), make_grid(cfg, seeds=3))
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


# ---- CLI ------------------------------------------------------------------------------------


def test_cli_bias_dropout_retrain_rewind_end_to_end(tmp_path):
    from experiments import xor

    with adam_promotion():
        r = xor.main(["--epochs", "40", "--seeds", "2", "--bias", "--dropout", "0.1", "--retrain", "20",
                      "--rewind", "--out", str(tmp_path), "--no-plots"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["bias"] is True and saved["config"]["dropout"] == 0.1
    for run in saved["runs"]:
        assert {"retrained_test_accuracy", "rewound_test_accuracy", "retrained_train_accuracy"} <= set(run["metrics"])
        assert run["structure"]["total_edges"] == 17 and len(run["structure"]["live_bias_nodes"]) == 2
    assert "retrained_test_accuracy" in r["summary"]


def test_cli_rewind_without_retrain_is_an_error(tmp_path):
    from experiments import xor

    with pytest.raises(ValueError, match="--rewind needs --retrain"):
        xor.main(["--epochs", "5", "--rewind", "--out", str(tmp_path), "--no-plots"])


# ---- topology, export and the graph plot with bias nodes ------------------------------------


def test_canonical_form_with_bias_is_permutation_invariant_and_sees_bias_edges():
    from sbp_jax.topology import canonical_form

    perm = (XOR7[0][::-1], XOR7[1][:, jnp.array([1, 0, 2])])  # hidden units swapped
    a, b = canonical_form(XOR7, 1e-2), canonical_form(perm, 1e-2)
    assert a == b and a.bias and a.n_edges == 7 and a.widths == (2, 2, 1)
    assert [x.shape for x in a.arrays()] == [(2, 3), (1, 3)]
    no_out_bias = (XOR7[0], XOR7[1].at[0, 2].set(0.0))
    c = canonical_form(no_out_bias, 1e-2)
    assert c != a and c.n_edges == 6
    hidden_bias = (XOR7[0].at[0, 2].set(0.3), XOR7[1])
    assert canonical_form(hidden_bias, 1e-2).n_edges == 8


def test_export_round_trip_with_bias(tmp_path):
    from sbp_jax import export

    e = (jnp.concatenate([XOR7[0], jnp.zeros((1, 3), jnp.float32)], axis=0),  # a dead third hidden unit
         jnp.concatenate([XOR7[1][:, :2], jnp.array([[0.0, -2.0]], jnp.float32)], axis=1))
    g = export.compact(e, 1e-2, "relu", "sigmoid")
    assert g.bias and g.layers == (2, 2, 1) and [w.shape for w in g.edges] == [(2, 3), (1, 3)]
    back = export.from_json(json.loads(json.dumps(export.to_json(g))))
    assert back.layers == g.layers and back.bias
    for u, v in zip(back.edges, g.edges):
        np.testing.assert_array_equal(u, v)
    x = tasks.xor(0).x_train
    assert export.verify(back, e, 1e-2, x).max_abs_deviation == 0.0
    dot = export.to_dot(g)
    assert '"b1" [shape=box, label="1"]' in dot and '"b1" -> "y0"' in dot


def test_graph_plot_draws_bias_nodes():
    from sbp_jax import plots

    fig = plots.graph(XOR7, 1e-2, "xor7")
    assert "live bias nodes 1" in fig.axes[0].get_title()
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_compare_variants_assess_recognises_the_minimal_xor_graph():
    from experiments.compare_variants import assess

    data = tasks.xor(0)
    cfg = TrainConfig(layers=(2, 2, 1), bias=True)
    # the second net has one edge more: a small bias on hidden unit 0 (still computes XOR)
    stacked = (jnp.stack([XOR7[0], XOR7[0].at[0, 2].set(0.05)]), jnp.stack([XOR7[1], XOR7[1]]))
    out = assess(stacked, cfg, data, "accuracy")
    assert out["effective"].tolist() == [7, 8] and out["found"].tolist() == [True, False]
    assert out["near"].tolist() == [True, True]
    assert np.all(out["robust"] < out["test"])  # removing any edge of the minimal net hurts


def test_one_layer_net_with_bias_counts_its_bias_node_separately_in_sweeps(xor_data):
    # shapes alone cannot tell (2 inputs + bias) from 3 inputs: the sweep passes the config's flag
    cfg = TrainConfig(layers=(2, 1), bias=True, bias_init="same", epochs=5, history_every=0)
    with adam_promotion():
        out = sweep.run_grid(cfg, (xor_data.x_train, xor_data.y_train, xor_data.x_test, xor_data.y_test),
                             sweep.make_grid(cfg, seeds=2), mesh=None)
    live = np.asarray(out.structure.live_per_layer)
    assert live.shape == (2, 2) and np.all(live[:, 0] <= 2)
    np.testing.assert_array_equal(np.asarray(out.structure.live_bias_per_layer), [[1], [1]])
