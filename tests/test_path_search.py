"""`sbp_jax.path.search`: conditions read from text, and the sparsest net meeting one (best of k paths)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import adam_promotion

from sbp_jax import tasks
from sbp_jax.metrics import evaluate
from sbp_jax.path import Condition, parse_condition, search_sparsest
from sbp_jax.sources import default_config
from sbp_jax.structure import analyse

SMALL = dict(n_steps=30, ratio=1.3, epochs_per_step=30, warmup=60, retrain_epochs=30, candidates=4)


@pytest.mark.parametrize("text, cond", [
    ("accuracy>=1", Condition("accuracy", 1.0, "train")),
    ("r2 >= 0.99", Condition("r2", 0.99, "train")),
    ("mse<=0.01@val", Condition("mse", 0.01, "val")),
    ("mae<=1e-2@test", Condition("mae", 0.01, "test")),
])
def test_conditions_parse(text, cond):
    assert parse_condition(text) == cond


@pytest.mark.parametrize("text", ["accuracy<=1", "mse>=0.1", "loss>=1", "r2>=x", "r2>=nan", "r2", "r2>=0.9@dev", ""])
def test_bad_conditions_name_the_text_and_the_forms(text):
    with pytest.raises(ValueError, match=r"condition=.* is invalid: allowed METRIC>=X"):
        parse_condition(text)


@pytest.fixture(scope="module")
def found():
    data = tasks.addition(0, n_test=200)
    cfg = default_config("addition", data).replace(lr=1e-2)
    cond = Condition("r2", 0.99)
    with adam_promotion():
        return cfg, data, cond, search_sparsest(cfg, data, cond, range(4), restarts=2, **SMALL)


def test_each_trial_keeps_its_sparsest_run_meeting_the_condition(found):
    cfg, data, cond, s = found
    per, chosen = s.per_run, s.chosen
    assert len(per.n_edges) == 4 and len(chosen.n_edges) == 2 and s.restarts == 2
    for t in range(2):
        pair = [2 * t, 2 * t + 1]
        assert chosen.run[t] in pair
        ok = [i for i in pair if per.met[i]]
        if ok:
            assert chosen.met[t] and chosen.n_edges[t] == min(per.n_edges[i] for i in ok)
        for layer, w in enumerate(chosen.weights):
            np.testing.assert_array_equal(w[t], per.weights[layer][chosen.run[t]])


def test_the_chosen_nets_meet_the_condition_as_deployed(found):
    cfg, data, cond, s = found
    for i in range(4):
        e = tuple(w[i] for w in s.per_run.weights)
        r2 = float(evaluate(e, data.x_train, data.y_train, loss="mse", hidden_activation="relu")["r2"])
        assert (r2 >= 0.99) == bool(s.per_run.met[i])
        assert int(np.sum(analyse(e, cfg.eps).effective_per_layer)) == s.per_run.n_edges[i]
    assert s.per_run.met.all() and set(s.chosen.n_edges) == {3}  # a + b: relu(a + b), the proven minimum
    assert s.budget["path_epochs"] == 2 * len(s.path.records.lam) * 30
    assert s.budget["retrain_epochs"] == 2 * 4 * 30 and set(s.seconds) == {"path", "choose", "polish", "total"}


@pytest.mark.parametrize("cond, seeds, restarts, match", [
    (Condition("accuracy", 1.0), 4, 1, "condition='train accuracy >= 1' is invalid for loss 'mse'"),
    (Condition("r2", 0.9, "val"), 4, 1, "the data has no 'val' samples"),
    (Condition("r2", 0.9), 3, 2, "restarts=2 is invalid for 3 seeds"),
])
def test_bad_searches_fail_before_any_training(cond, seeds, restarts, match, monkeypatch):
    import sbp_jax.path.search as search

    data = tasks.addition(0, n_test=20)
    cfg = default_config("addition", data)
    calls = []
    monkeypatch.setattr(search, "run_path", lambda *a, **k: calls.append(1))  # every one is refused before the path runs
    with pytest.raises(ValueError, match=match):
        search_sparsest(cfg, data, cond, seeds, restarts=restarts, n_steps=2, epochs_per_step=1, warmup=0)
    assert not calls
