"""Model choice on a λ path (`sbp_jax.path` rules): each rule on hand-made path records picks
the documented step; the retrain-verified rules on hand-set XOR nets."""

from __future__ import annotations

import numpy as np
import pytest

from sbp_jax import tasks
from sbp_jax.config import TrainConfig
from sbp_jax.path import (Choice, Condition, Path, PathRecords, best_of_k, best_validation, one_se, polish,
                          sparsest_meeting)

from conftest import XOR7


def records(val, *, metric="accuracy", lam=None, effective=None, diverged=None, edges=(), n_in=2, train=None) -> PathRecords:
    """Path records with the given validation metric `(S, C)` and whatever else a rule reads."""
    val = np.asarray(val, np.float32)
    S, C = val.shape
    eff = np.zeros((S, C), np.int32) if effective is None else np.asarray(effective, np.int32)
    return PathRecords(lam=np.geomspace(1e-3, 1e-1, S).astype(np.float32) if lam is None else np.asarray(lam, np.float32),
                       train={} if train is None else {metric: np.asarray(train, np.float32)}, val={metric: val},
                       test={}, active=eff, effective=eff,
                       live=np.zeros((S, C, 3), np.int32), features=np.zeros((S, C, n_in), bool), edges=edges,
                       diverged=np.zeros((S, C), bool) if diverged is None else np.asarray(diverged, bool),
                       estimate=np.zeros((S, C), np.float32))


# step 1 is best: mean 0.90, std 0.0327 over 4 runs, SE 0.01633; step 2 (0.885) is within one SE, step 3 is not
VAL = [[0.80, 0.80, 0.80, 0.80],
       [0.86, 0.94, 0.90, 0.90],
       [0.885, 0.885, 0.885, 0.885],
       [0.70, 0.70, 0.70, 0.70]]


def test_one_se_picks_the_largest_lam_within_one_standard_error_of_the_best():
    rec = records(VAL)
    se = np.std(VAL[1], ddof=1) / 2
    assert se == pytest.approx(0.016330, abs=1e-6)
    c = one_se(rec, "accuracy")
    assert (c.rule, c.step, c.lam) == ("1se", 2, pytest.approx(float(rec.lam[2])))
    assert c.metric == pytest.approx(0.885) and "within one SE" in c.reason
    assert best_validation(rec, "accuracy").step == 1
    tighter = records([VAL[0], VAL[1], [0.88] * 4, VAL[3]])  # 0.88 < 0.90 − 0.0163: outside
    assert one_se(tighter, "accuracy").step == 1


def test_one_se_adds_the_sampling_error_of_the_validation_split():
    rec = records(VAL)
    # SE = √(0.01633² + 0.2²) = 0.2007: 0.70 >= 0.90 − 0.2007, so the largest λ qualifies
    assert one_se(rec, "accuracy", sample_se=0.2).step == 3
    assert one_se(rec, "accuracy", sample_se=0.19).step == 2  # 0.90 − 0.1907 > 0.70
    assert one_se(rec, "accuracy", runs_se=False).step == 1  # no SE at all: the best step
    assert "over samples 0.2" in one_se(rec, "accuracy", sample_se=0.2).reason


def test_ties_go_to_the_larger_lam():
    rec = records([[0.5, 0.5], [0.9, 0.9], [0.9, 0.9], [0.6, 0.6]])
    assert best_validation(rec, "accuracy").step == 2
    assert one_se(rec, "accuracy").step == 2  # SE 0 at the best step: only the tie qualifies


def test_mse_is_lower_is_better_and_diverged_runs_are_left_out():
    rec = records([[0.30, 0.30], [0.10, 0.12], [0.11, 0.115], [0.5, 0.5]], metric="mse",
                  diverged=[[0, 0], [0, 0], [0, 0], [0, 0]])
    assert best_validation(rec, "mse").step == 1
    assert one_se(rec, "mse").step == 2  # 0.1125 <= 0.11 + 0.01
    bad = records([[0.5, 0.5], [0.9, 1.0], [0.95, 0.2]], diverged=[[0, 0], [0, 0], [0, 1]])
    assert best_validation(bad, "accuracy").step == 2  # run 1 diverged at step 2: the mean there is 0.95


def test_rules_name_a_missing_metric_or_split():
    with pytest.raises(ValueError, match="metric='r2' is invalid for split 'val': allowed one of 'accuracy'"):
        one_se(records(VAL), "r2")
    with pytest.raises(ValueError, match="split='test' is invalid: the path has no test metrics"):
        best_validation(records(VAL), "accuracy", split="test")


# Hand-set XOR nets, [2,2,1] with bias edges. XOR7 classifies every noisy training point with 7 edges
# (the minimum, README "Beyond the paper"); NINE adds two small hidden bias edges (still right everywhere);
# SIX drops x1 -> h2, which no retrain can repair (6 edges cannot solve noisy XOR).
CFG = TrainConfig(layers=(2, 2, 1), bias=True, lr=1e-2)
XOR7_NP = tuple(np.asarray(w) for w in XOR7)
NINE = (XOR7_NP[0] + np.array([[0, 0, 0.05], [0, 0, 0.05]], np.float32), XOR7_NP[1])
SIX = (XOR7_NP[0] * np.array([[1, 1, 1], [0, 1, 1]], np.float32), XOR7_NP[1])
ZERO = tuple(np.zeros_like(w) for w in XOR7_NP)
TRAIN_ALL = Condition("accuracy", 1.0)


def hand_path(steps, train, runs=2) -> Path:
    """A path whose step k holds the net `steps[k]` in every run (λ rising with k), with training
    accuracy `train[k]` (what picks the copy of an edge set to retrain)."""
    edges = tuple(np.stack([np.stack([s[l]] * runs) for s in steps]) for l in range(2))
    rec = records(np.zeros((len(steps), runs)), edges=edges, train=np.repeat(np.asarray(train)[:, None], runs, 1))
    return Path(CFG, np.arange(runs), rec, np.zeros(runs), np.full(runs, np.inf), None, {}, {})


@pytest.fixture(scope="module")
def chosen():
    """Steps: NINE, XOR7, XOR7 × 1.5 (same 7 edges, larger λ), SIX, empty."""
    big = tuple(w * 1.5 for w in XOR7_NP)
    path = hand_path([NINE, XOR7_NP, big, SIX, ZERO], [1.0, 1.0, 1.0, 0.75, 0.5])
    return path, sparsest_meeting(path, tasks.xor(0), TRAIN_ALL, retrain_epochs=30)


def test_sparsest_meeting_picks_the_sparsest_step_that_meets_the_condition_after_retrain(chosen):
    _, c = chosen
    assert c.rule == "sparsest_meeting"
    assert np.all(c.met) and np.all(c.n_edges == 7) and np.all(c.metric == 1.0)
    assert np.all(c.step == 2)  # steps 1 and 2: the same 7 edges, equally accurate: the tie goes to the larger λ
    assert "2 of 2 runs" in c.reason
    assert all(w.shape == (2,) + v.shape for w, v in zip(c.weights, XOR7_NP))


def test_an_edge_set_is_retrained_from_its_best_scoring_copy():
    """The same 7 edges at two steps: the less accurate copy (shrunk) at the larger λ loses."""
    shrunk = tuple(w * 0.01 for w in XOR7_NP)  # recorded as less accurate below (0.9)
    c = sparsest_meeting(hand_path([XOR7_NP, shrunk], [1.0, 0.9]), tasks.xor(0), TRAIN_ALL, retrain_epochs=30)
    assert np.all(c.step == 0) and np.all(c.met)


def test_sparsest_meeting_reports_runs_that_never_meet_it():
    c = sparsest_meeting(hand_path([SIX, ZERO], [0.75, 0.5]), tasks.xor(0), TRAIN_ALL, retrain_epochs=30)
    assert not c.met.any() and "0 of 2 runs" in c.reason


def test_polish_removes_what_it_can_and_never_breaks_the_condition(chosen):
    path, _ = chosen
    nine = Choice("sparsest_meeting", np.zeros(3, int), np.zeros(3), np.array([9, 7, 0]), np.array([1.0, 1.0, 0.5]), "",
                  tuple(np.stack([a, b, c]) for a, b, c in zip(NINE, XOR7_NP, ZERO)), np.array([True, True, False]))
    p = polish(nine, path._replace(seeds=np.arange(3)), tasks.xor(0), TRAIN_ALL, retrain_epochs=30)
    assert p.rule == "polish"
    np.testing.assert_array_equal(p.n_edges, [7, 7, 0])  # the two small bias edges go; XOR7 is already minimal
    assert np.all(p.n_edges <= nine.n_edges) and np.all(p.met == nine.met)
    assert np.all(p.metric[:2] == 1.0) and p.metric[2] == 0.5  # the run that did not meet it is left alone
    np.testing.assert_array_equal(p.weights[0][2], 0.0)
    for w, v in zip(p.weights, NINE):  # the bias edges of run 0 are exactly zero now
        assert w.shape[1:] == v.shape
    assert np.all(p.weights[0][0][:, 2] == 0)


def test_a_condition_names_a_metric_of_the_loss():
    with pytest.raises(ValueError, match="condition metric='r2' is invalid: allowed one of 'accuracy'"):
        sparsest_meeting(hand_path([XOR7_NP], [1.0]), tasks.xor(0), Condition("r2", 0.99))


def test_polish_needs_a_per_run_choice_with_weights():
    with pytest.raises(ValueError, match="choice rule='1se' is invalid for polish"):
        polish(one_se(records(VAL), "accuracy"), hand_path([XOR7_NP], [1.0]), tasks.xor(0), TRAIN_ALL)


def test_best_of_k_keeps_each_trials_sparsest_run_that_meets_the_condition():
    n = np.array([9, 7, 5, 8, 6, 6, 7, 7])
    met = np.array([True, True, False, True, False, False, True, True])
    metric = np.array([1.0, 1.0, 0.9, 1.0, 0.5, 0.6, 0.995, 0.999])
    c = Choice("polish", np.arange(8), np.zeros(8), n, metric, "", None, met)
    b = best_of_k(c, 2, Condition("r2", 0.99))
    np.testing.assert_array_equal(b.run, [1, 3, 5, 7])  # sparsest met; unmet 5 edges loses; none: best score; tie: better
    np.testing.assert_array_equal(b.n_edges, [7, 8, 6, 7])
    np.testing.assert_array_equal(b.met, [True, True, False, True])
    assert best_of_k(c, 2, Condition("mse", 0.1)).run[3] == 6  # lower is better for MSE: 0.995 beats 0.999
    with pytest.raises(ValueError, match="k=3 is invalid for 8 runs"):
        best_of_k(c, 3, TRAIN_ALL)
