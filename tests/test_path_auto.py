"""`--lam auto` (`sbp_jax.path.auto_lam`): 1-SE on a validation split of a planted regression
(y = 1.5·p − 2·q + noise, six noise inputs), importances, results records and the path plot.
One small path, compiled once for the module."""

from __future__ import annotations

import numpy as np
import pytest

from sbp_jax import datasets, io, results, tasks
from sbp_jax.config import TrainConfig
from sbp_jax.network import forward
from sbp_jax.path import (auto_lam, exit_lams, importances, npz_arrays, outputs_of, plot_data, plot_path,
                          run_outputs, sample_se, step_table)
from sbp_jax.structure import masked

NAMES = ("p", "q", "a", "b", "c", "d", "e", "f")


def planted(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    y = 1.5 * x[:, 0] - 2.0 * x[:, 1] + 0.1 * rng.normal(size=n)
    return datasets.from_arrays(x, y, feature_names=NAMES, task="regression", seed=0)


CFG = TrainConfig(layers=(8, 2, 1), loss="mse", lr=1e-2)


@pytest.fixture(scope="module")
def auto():
    ds = planted()
    return auto_lam(CFG, ds, 3, n_steps=30, ratio=1.3, epochs_per_step=25, warmup=100), ds


def test_importances_rank_the_planted_inputs_first(auto):
    a, _ = auto
    assert [r["feature"] for r in a.importances[:2]] in (["p", "q"], ["q", "p"])
    ex = exit_lams(a.path.records)
    assert ex.shape == (3, 8) and np.all(ex[:, :2].min(axis=1) > ex[:, 2:].max(axis=1))  # every run
    assert a.importances[0]["rank"] == 1 and len(a.importances[0]["exit_lam_per_run"]) == 3
    assert all(r["stability"] == 1.0 for r in a.importances[:2])
    assert importances(a.path.records, NAMES)[0]["stability"] is None
    with pytest.raises(ValueError, match="len\\(names\\)=2 is invalid: allowed 8"):
        importances(a.path.records, NAMES[:2])


def test_one_se_keeps_only_the_planted_inputs_at_high_r2(auto):
    a, ds = auto
    assert a.choice.rule == "1se" and a.metric == "r2" and a.lam == a.choice.lam
    assert a.lam >= a.best.lam
    rec = a.path.records
    assert np.all(rec.features[a.choice.step][:, :2]) and not rec.features[a.choice.step][:, 2:].any()
    assert a.choice.metric >= 0.99
    assert all(w.shape[0] == 3 for w in a.edges)


def test_sample_se_is_the_standard_error_over_validation_samples(auto):
    a, ds = auto
    se = sample_se(CFG, ds, a.edges, "r2")
    x, y = ds.x_val, ds.y_val
    by_hand = []
    for c in range(3):
        z = np.asarray(forward(masked(tuple(w[c] for w in a.edges), CFG.eps), x, "relu"))
        sq = np.square(z - y)[:, 0]
        by_hand.append(np.std(sq, ddof=1) / np.sqrt(len(sq)) / np.mean(np.square(y - y.mean())))
    assert se == pytest.approx(np.sqrt(np.mean(np.square(by_hand))), rel=1e-4) and se > 0
    assert "over samples" in a.choice.reason  # auto_lam's default SE: runs and samples together


def test_run_outputs_build_ordinary_results_records(auto):
    a, ds = auto
    out, grid = run_outputs(a, ds)
    recs = results.records(out, grid, CFG, ds)
    assert [r["selected_features"] for r in recs] == [["p", "q"]] * 3
    assert all(r["lam"] == pytest.approx(a.lam) and r["metrics"]["pruned_val_r2"] >= 0.99 for r in recs)
    np.testing.assert_allclose([r["metrics"]["pruned_val_r2"] for r in recs],
                               a.path.records.val["r2"][a.choice.step], rtol=1e-5)
    assert results.summarise(recs)[0]["selected_features_counts"] == {"p": 3, "q": 3}
    two, g2 = outputs_of(a.path, ds, tuple(w[[2, 0]] for w in a.edges), a.lam, runs=[2, 0])  # e.g. best_of_k's
    np.testing.assert_array_equal(g2.seed, a.path.seeds[[2, 0]])
    np.testing.assert_array_equal(two.pruned_test["r2"], out.pruned_test["r2"][[2, 0]])


def test_plot_shows_the_metric_band_the_edges_and_the_chosen_lam(auto):
    a, _ = auto
    d = plot_data(a.path.records, a.metric, a.choice, a.best, a.se)
    assert np.all(d["lam"] > 0) and np.all(d["lo"] <= d["mean"]) and np.all(d["mean"] <= d["hi"])
    assert d["chosen_lam"] == pytest.approx(a.lam)
    assert d["threshold"] == pytest.approx(a.best.metric - a.se) and a.choice.metric >= d["threshold"] - 1e-6
    fig = plot_path(a)
    top, bottom = fig.axes
    assert bottom.get_xscale() == "log"
    assert any(np.allclose(line.get_xdata(), a.lam) for line in top.lines)  # the chosen λ's vertical line
    assert any(np.allclose(line.get_ydata(), d["threshold"]) for line in top.lines)  # the 1-SE line
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_step_table_and_path_npz_cover_every_step(auto, tmp_path):
    a, _ = auto
    S = len(a.path.records.lam)
    rows = step_table(a.path.records, "r2")
    assert len(rows) == S and rows[a.choice.step]["val_r2_mean"] == pytest.approx(a.choice.metric)
    assert rows[a.choice.step]["inputs_selected_by"] == [3, 3, 0, 0, 0, 0, 0, 0]
    io.write_json(tmp_path / "steps.json", rows)
    io.write_npz(tmp_path / "path.npz", **npz_arrays(a.path, "r2"))
    z = np.load(tmp_path / "path.npz")
    assert z["layer0"].shape == (S, 3, 2, 8) and z["layer1"].shape == (S, 3, 1, 2)
    assert z["val_r2"].shape == (S, 3) and z["features"].dtype == bool
    np.testing.assert_array_equal(z["lam"], a.path.records.lam)


def test_auto_needs_a_validation_split():
    with pytest.raises(ValueError, match="val_frac=0 is invalid for λ auto"):
        auto_lam(TrainConfig(layers=(2, 4, 1), bias=True), tasks.xor(0), 2)
