"""Features through the experiment command lines: skip and bias nets, dropout, retraining and rewind
(experiments.xor, experiments.topology, experiments.sweep), and experiments.compare_variants' checks
of the minimal XOR graphs. Moved unchanged from the feature test files."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import adam_promotion
from test_structure import XOR7

from sbp_jax import TrainConfig, tasks


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


def test_topology_cli_end_to_end(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "topo"
    r = subprocess.run([sys.executable, "-m", "experiments.topology", "--task", "xor", "--seeds", "3", "--epochs", "20",
                        "--penalty", "proximal", "--no-plots", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads((out / "results.json").read_text())
    assert d["summary"]["n_runs"] == 3 and d["config"]["penalty"] == "proximal"
    assert d["export"]["verification"]["train"]["max_abs_deviation"] <= 1e-6
    t = d["threshold_sensitivity"]["at_training_eps"]
    assert t["active_edges"] == t["direct_count"]
    assert (out / "graph.json").exists() and (out / "graph.dot").exists()


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


def test_minimal_structure_sizes_per_net_family():
    from experiments.compare_variants import minimal_structure

    ok = {"train": np.array([1.0]), "corners": np.array([1.0]), "test": np.array([0.995])}
    sizes = {(b, s): minimal_structure(TrainConfig(bias=b, skip=s), ok)[0] for b in (False, True) for s in (False, True)}
    assert sizes == {(False, False): 6, (True, False): 7, (False, True): 5, (True, True): 6}
    add = TrainConfig(layers=(2, 8, 1), loss="mse")
    assert [minimal_structure(add.replace(skip=s), ok)[0] for s in (False, True)] == [3, 2]
