"""Runs into results (`sbp_jax.results`): records equal the stacked outputs,
summaries group by (λ, lr, ε), exclude diverged runs and keep intervals in
range, phases, and the atomic writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import adam_promotion
from sbp_jax import TrainConfig, chunks, results, sweep, tasks


def _rec(lam, seed, acc, edges, div, feats=("x0",)):
    return {"lam": lam, "lr": 1e-3, "eps": 1e-2, "seed": seed, "metrics": {"test_accuracy": acc},
            "structure": {"active_edges": edges, "effective_edges": edges, "active_per_layer": [edges, 0],
                          "compact_layers": [2, 2, 1]},
            "selected_features": list(feats), "diverged_at_epoch": 3 if div else None}


def test_summary_excludes_and_counts_diverged_runs():
    recs = [_rec(0.0, 0, 1.0, 12, False), _rec(0.0, 1, 0.5, 10, False, ("x0", "x1")),
            _rec(0.0, 2, float("nan"), 0, True), _rec(0.1, 0, 0.75, 6, False)]
    s = results.summarise(recs)
    assert [g["lam"] for g in s] == [0.0, 0.1]
    assert s[0]["n_runs"] == 3 and s[0]["n_diverged"] == 1
    assert s[0]["metrics"]["test_accuracy"]["mean"] == 0.75 and s[0]["metrics"]["test_accuracy"]["n"] == 2
    assert s[0]["active_edges"]["mean"] == 11.0 and s[0]["active_per_layer_mean"] == [11.0, 0.0]
    assert s[0]["compact_layers_counts"] == [{"layers": [2, 2, 1], "count": 2}]
    assert s[0]["selected_features_counts"] == {"x0": 2, "x1": 1}
    assert s[1]["n_diverged"] == 0 and s[1]["active_edges"]["ci95"] == [6.0, 6.0]


def test_intervals_stay_in_their_range():
    recs = [_rec(0.0, i, 1.0 if i % 5 else 0.96, 1 if i % 3 else 0, False) for i in range(20)]
    g = results.summarise(recs)[0]
    assert g["metrics"]["test_accuracy"]["ci95"][1] <= 1.0
    assert g["active_edges"]["ci95"][0] >= 0.0


def test_phases_of_a_hand_made_history():
    task = np.array([[1.0, 0.6, 0.2, 0.1, 0.0]])  # drop 1.0: 50 % at record 2, 90 % at record 3
    active = np.array([[12, 12, 10, 8, 8]])
    ph = results.phases(task, active, every=2)  # records at epochs 1, 3, 5, 7, 9
    assert ph == {"loss_50pct_drop_epoch": 5.0, "loss_90pct_drop_epoch": 7.0, "first_prune_epoch": 5.0,
                  "last_structure_change_epoch": 7.0}
    assert results.phases(task, active, every=0) == {}


@pytest.fixture(scope="module")
def small_sweep():
    cfg = TrainConfig(epochs=40, history_every=10)
    ds = tasks.xor(val_copies=5)
    grid = sweep.make_grid(cfg, lams=[0.0, 0.1], seeds=2)
    with adam_promotion():
        out = sweep.run_grid(cfg, ds, grid, mesh=None)
    return cfg, ds, grid, out


def test_records_are_the_stacked_outputs(small_sweep):
    cfg, ds, grid, out = small_sweep
    recs = results.records(out, grid, cfg, ds)
    assert [(r["lam"], r["seed"]) for r in recs] == [(0.0, 0), (0.0, 1), (np.float32(0.1).item(), 0),
                                                    (np.float32(0.1).item(), 1)]
    for i, r in enumerate(recs):
        for split in chunks.SPLITS:
            assert r["metrics"][f"{split}_accuracy"] == float(getattr(out, split)["accuracy"][i])
        assert r["structure"]["active_edges"] == int(np.asarray(out.structure.active_per_layer)[i].sum())
        assert r["final_task_loss"] == float(np.asarray(out.result.history.task_loss)[i, -1])
    groups = results.summarise(recs, out.result.history, cfg.history_every)
    assert len(groups) == 2 and all("phases" in g for g in groups)


def test_document_and_atomic_write(small_sweep, tmp_path):
    cfg, ds, grid, out = small_sweep
    recs = results.records(out, grid, cfg, ds)
    doc = results.document("xor", cfg, ds, {"val_copies": 5}, recs, results.summarise(recs))
    assert doc["config"]["lam"] is None and doc["config"]["lr"] == cfg.lr  # swept vs shared
    assert doc["data"]["params"] == {"val_copies": 5} and doc["data"]["n_val"] == 20
    results.write(tmp_path / "o", doc, out, grid)
    assert json.loads((tmp_path / "o" / "results.json").read_text())["records"] == json.loads(json.dumps(recs))
    e = np.load(tmp_path / "o" / "edges.npz")
    np.testing.assert_array_equal(e["seed"], grid.seed)
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]  # no temp files left


def test_an_output_folder_that_cannot_be_made_names_the_flag():
    with pytest.raises(OSError, match="--out='/proc/nope/x' is invalid"):
        results.ensure_folder("/proc/nope/x")
