"""Real data: minibatch training, feature selection, the masked fine-tune
baseline, and `python -m experiments.tabular` end to end per input kind."""

from __future__ import annotations

import json

from conftest import adam_promotion

import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax import TrainConfig, datasets, sweep
from sbp_jax.finetune import finetune_masked, magnitude_masks, magnitude_masks_per_layer
from sbp_jax.structure import selected_features





def test_selected_features_on_hand_made_edges():
    w1 = np.array([[1.0, 0.0, 0.5, 0.0],   # hidden 0 <- inputs a, c
                   [0.0, 0.0, 0.0, 0.9],   # hidden 1 <- input d, but hidden 1 has no output: d is dead
                   [0.0, 2.0, 0.0, 0.0]])  # hidden 2 <- input b
    w2 = np.array([[0.3, 0.0, 0.0]])       # output <- hidden 0 only
    assert selected_features((w1, w2), 0.1, ["a", "b", "c", "d"]) == ["a", "c"]
    assert selected_features((w1, w2), 0.6, ["a", "b", "c", "d"]) == []  # output edge pruned
    with pytest.raises(ValueError, match="len\\(names\\)=2"):
        selected_features((w1, w2), 0.1, ["a", "b"])


def test_planted_irrelevant_inputs_lose_all_their_edges():
    ds = datasets.planted(n_samples=3000)
    cfg = TrainConfig(layers=(ds.n_in, 8, 1), loss=ds.loss, lam=2e-2, lr=3e-3, epochs=600, history_every=0)
    with adam_promotion():
        out = sweep.run_grid(cfg, ds, sweep.make_grid(cfg, seeds=2))
    first = np.asarray(out.result.edges[0])  # (runs, hidden, inputs)
    noise = [i for i, n in enumerate(ds.feature_names) if n.startswith("noise")]
    assert len(noise) == 16
    assert np.all(np.abs(first[:, :, noise]) < cfg.eps)  # every edge out of a noise input is pruned
    for i in range(2):
        edges = tuple(np.asarray(w)[i] for w in out.result.edges)
        assert selected_features(edges, cfg.eps, ds.feature_names) == [f"relevant_{j}" for j in range(4)]
    assert np.all(np.asarray(out.pruned_test["accuracy"]) > 0.75)


def test_magnitude_masks_and_masked_finetune():
    w = (jnp.array([[0.5, -0.1], [0.05, -2.0]]), jnp.array([[0.3, -0.01]]))
    m = magnitude_masks(w, 3)
    assert [np.asarray(a).tolist() for a in m] == [[[True, False], [False, True]], [[True, False]]]
    assert sum(int(np.asarray(a).sum()) for a in magnitude_masks(w, 0)) == 0
    ml = magnitude_masks_per_layer(w, jnp.array([1, 1]))
    assert [np.asarray(a).tolist() for a in ml] == [[[False, False], [False, True]], [[True, False]]]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(40, 2)), jnp.float32)
    y = jnp.asarray((np.asarray(x)[:, :1] > 0).astype(np.float32))
    with adam_promotion():
        ft = finetune_masked(w, m, x, y, 1e-2, epochs=50, loss="bce", hidden_activation="relu")
    for a, mk, w0 in zip(ft, m, w):
        a, mk = np.asarray(a), np.asarray(mk)
        assert np.all(a[~mk] == 0)  # pruned edges stay exactly zero
        assert np.any(a[mk] != np.asarray(w0)[mk])  # kept edges were trained


# ----------------------------------------------------------------- CLI end to end
def _cli(tmp_path, capsys, *args):
    from experiments import tabular

    out = tmp_path / "out"
    with adam_promotion():
        res = tabular.main([*args, "--epochs", "5", "--seeds", "2", "--hidden", "4", "--history-every", "0",
                            "--no-plots", "--out", str(out)])
    assert json.loads((out / "results.json").read_text())["records"] == json.loads(json.dumps(res["records"]))
    assert len(res["records"]) == 2 and res["provenance"]["argv"]
    for r in res["records"]:
        assert set(r["selected_features"]) <= set(res["data"]["feature_names"])
        assert r["structure"]["total_edges"] == res["config"]["layers"][0] * 4 + 4 * res["config"]["layers"][-1]
    (group,) = res["summary"]
    return res, group["metrics"], capsys.readouterr().out


def test_cli_bundled_dataset(tmp_path, capsys):
    res, m, stdout = _cli(tmp_path, capsys, "--dataset", "wine", "--batch-size", "32")
    for k in ("train_accuracy", "val_accuracy", "test_accuracy", "pruned_test_accuracy", "pruned_val_accuracy"):
        assert 0 <= m[k]["ci95"][0] <= m[k]["mean"] <= m[k]["ci95"][1] <= 1
    assert res["config"]["batch_size"] == 32 and res["config"]["layers"] == [13, 4, 3]
    assert "selected features" in stdout and "test_accuracy" in stdout


def test_cli_csv_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    lines = ["alpha,beta,gamma,price"] + [f"{a:.4f},{b:.4f},{c:.4f},{2 * a - b + 0.1 * c:.4f}" for a, b, c in x]
    (tmp_path / "houses.csv").write_text("\n".join(lines) + "\n")
    res, m, _ = _cli(tmp_path, capsys, "--csv", str(tmp_path / "houses.csv"), "--target", "price")
    assert res["data"]["kind"] == "regression" and res["data"]["feature_names"] == ["alpha", "beta", "gamma"]
    assert {"test_r2", "val_r2", "train_mse"} <= set(m)
    assert m["train_mse"]["ci95"][0] >= 0  # a non-negative quantity keeps a non-negative interval


def test_cli_npz_binary(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 5))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(int))
    res, m, _ = _cli(tmp_path, capsys, "--npz", str(tmp_path / "d.npz"))
    assert res["data"]["kind"] == "binary" and res["config"]["loss"] == "bce"
    assert "test_accuracy" in m
