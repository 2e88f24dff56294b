"""Real data: minibatch training, feature selection, the masked fine-tune
baseline, and `python -m experiments.tabular` end to end per input kind."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sbp_jax import TrainConfig, datasets, sweep, train
from sbp_jax.finetune import finetune_masked, magnitude_masks, magnitude_masks_per_layer
from sbp_jax.network import init_edges
from sbp_jax.objective import task_loss_from_logits
from sbp_jax.network import forward
from sbp_jax.penalty import make_optimizer
from sbp_jax.structure import selected_features
from sbp_jax.loop import SHUFFLE_STREAM, minibatch_plan
from sbp_jax.train import check_data



def adam_promotion():
    """Standard dtype promotion for code that runs optax's Adam (its bias
    correction mixes a Python float and an int32 array, which the suite's
    strict promotion, if set in conftest, rejects)."""
    return jax.numpy_dtype_promotion("standard")


def assert_tree_bitwise_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()
MB = TrainConfig(layers=(3, 4, 2), loss="cross_entropy", lam=1e-2, lr=1e-2, epochs=6, eps=1e-2)


@pytest.fixture(scope="module")
def mb_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 3)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    return x, y


@pytest.mark.parametrize("b", [23, 24, 1000])
def test_minibatch_of_the_whole_data_is_exactly_full_batch(mb_data, b):
    x, y = mb_data
    with adam_promotion():
        full = train(MB, x, y, jax.random.key(1))
        mini = train(MB.replace(batch_size=b), x, y, jax.random.key(1))
    assert_tree_bitwise_equal(full, mini)


def test_minibatch_plan():
    assert minibatch_plan(23, 0) == (1, 23)
    assert minibatch_plan(23, 23) == (1, 23)
    assert minibatch_plan(23, 5) == (5, 5)
    assert minibatch_plan(20, 5) == (4, 5)


@pytest.mark.parametrize("b", [5, pytest.param(8, marks=pytest.mark.slow)])  # 23 = 4·5 + 3 = 2·8 + 7
def test_minibatch_matches_a_python_loop_over_shuffled_batches(mb_data, b):
    """Reference: per epoch, the permutation from fold_in(fold_in(key, SHUFFLE_STREAM), epoch),
    consecutive slices of b (the last one short), one Adam step per slice on its mean loss."""
    x, y = mb_data
    cfg = MB.replace(batch_size=b)
    key = jax.random.key(3)
    with adam_promotion():
        got = train(cfg, x, y, key)
        xj, yj = check_data(cfg, x, y)
        edges = init_edges(key, cfg.layers, cfg.init)
        opt = make_optimizer(jnp.float32(cfg.lam), jnp.float32(cfg.lr))
        state = opt.init(edges)
        loss = lambda e, xb, yb: task_loss_from_logits(forward(e, xb, cfg.hidden_activation), yb, cfg.loss)
        epoch_losses = []
        for epoch in range(cfg.epochs):
            perm = np.asarray(jax.random.permutation(
                jax.random.fold_in(jax.random.fold_in(key, SHUFFLE_STREAM), epoch), len(x)))
            losses = []
            for s in range(0, len(x), b):
                idx = perm[s:s + b]
                l, g = jax.value_and_grad(loss)(edges, xj[idx], yj[idx])
                u, state = opt.update(g, state, edges)
                edges = optax.apply_updates(edges, u)
                losses.append(float(l) * len(idx))
            epoch_losses.append(sum(losses) / len(x))
        full = train(MB, x, y, key)
    for a, r in zip(got.edges, edges):
        np.testing.assert_allclose(np.asarray(a), np.asarray(r), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got.history.task_loss), epoch_losses, rtol=1e-5)
    assert not np.array_equal(np.asarray(got.edges[0]), np.asarray(full.edges[0]))


def test_minibatch_sweep_equals_single_runs_seed_by_seed(mb_data):
    x, y = mb_data
    cfg = MB.replace(batch_size=8)
    with adam_promotion():
        out = sweep.run_grid(cfg, datasets.plain(x, y), sweep.make_grid(cfg, lams=[0.0, 1e-2], seeds=[0, 5]))
        for i, (lam, seed) in enumerate(zip(out_grid := sweep.make_grid(cfg, lams=[0.0, 1e-2], seeds=[0, 5]).lam,
                                            sweep.make_grid(cfg, lams=[0.0, 1e-2], seeds=[0, 5]).seed)):
            single = train(cfg.replace(lam=float(lam)), x, y, jax.random.key(int(seed)))
            for a, b in zip(single.edges, out.result.edges):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b)[i], rtol=1e-5, atol=1e-6)
    assert len(out_grid) == 4


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
