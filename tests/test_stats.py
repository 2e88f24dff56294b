"""stats: intervals that stay in their range, against hand-computed and textbook values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sbp_jax import stats


def test_t_interval_by_hand():
    # values 1..5: mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445 (printed tables)
    d = stats.describe([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert d["interval"] == stats.T_INTERVAL
    assert d["mean"] == 3.0 and d["std"] == pytest.approx(math.sqrt(2.5))
    np.testing.assert_allclose(d["ci95"], [3 - half, 3 + half], rtol=1e-6)
    assert (d["min"], d["max"], d["n"], d["n_nonfinite"]) == (1.0, 5.0, 5, 0)


@pytest.mark.parametrize("dof, expected", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (10, 2.228),
                                           (30, 2.042), (100, 1.984)])
def test_t_quantile_matches_the_table(dof, expected):
    assert stats.t_quantile_975(dof) == pytest.approx(expected, abs=1e-3)


def test_unbounded_is_the_t_interval_and_skips_nonfinite():
    v = [0.3, 1.7, -2.0, 4.5, float("nan"), 0.0]
    d = stats.describe(v)
    f = np.array([0.3, 1.7, -2.0, 4.5, 0.0])
    half = stats.t_quantile_975(4) * f.std(ddof=1) / math.sqrt(5)
    assert (d["mean"], d["min"], d["max"], d["n"], d["n_nonfinite"]) == (pytest.approx(f.mean()), -2.0, 4.5, 5, 1)
    np.testing.assert_allclose(d["ci95"], [f.mean() - half, f.mean() + half], rtol=1e-9)


def test_accuracy_all_ones_stays_in_range():
    # the t-interval of these is [0.9976, 1.001]-like; the bootstrap is [1, 1]
    d = stats.describe([1.0] * 9 + [0.99], **stats.bounds_of("test_accuracy"))
    assert d["interval"] == stats.BOOTSTRAP_INTERVAL
    assert 0.0 <= d["ci95"][0] <= d["mean"] <= d["ci95"][1] <= 1.0
    assert stats.describe([1.0] * 10, lo=0.0, hi=1.0)["ci95"] == [1.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_tiny_positive_mse_stays_nonnegative(seed):
    # one large value among tiny ones: mean ± t·s/√n goes below 0
    rng = np.random.default_rng(seed)
    v = np.concatenate([rng.uniform(1e-9, 1e-6, 7), [0.05]])
    assert stats.describe(v)["ci95"][0] < 0  # the t-interval
    d = stats.describe(v, **stats.bounds_of("pruned_test_mse"))
    assert 0.0 <= d["ci95"][0] <= d["ci95"][1]


def test_upper_bound_only_r2():
    v = [1.0, 1.0, 1.0, 0.2, 1.0, 1.0]
    d = stats.describe(v, **stats.bounds_of("retrained_test_r2"))
    assert d["ci95"][1] <= 1.0 and d["ci95"][0] < 1.0
    assert stats.describe(v)["ci95"][1] > 1.0  # what the t-interval would say


@pytest.mark.parametrize("c", [0.0, 0.3, 1.0, 17.0])
def test_bootstrap_of_constant_is_that_constant(c):
    d = stats.describe([c] * 6, lo=0.0)
    assert d["ci95"] == [c, c] and d["std"] == 0.0


def test_bootstrap_deterministic_and_order_free():
    v = np.random.default_rng(1).uniform(0, 1, 37)
    np.random.seed(123)  # the global state does not matter
    a = stats.describe(v, lo=0.0, hi=1.0)
    np.random.seed(456)
    b = stats.describe(v, lo=0.0, hi=1.0)
    c = stats.describe(v[::-1], lo=0.0, hi=1.0)
    assert np.array(a["ci95"]).tobytes() == np.array(b["ci95"]).tobytes() == np.array(c["ci95"]).tobytes()


def test_bootstrap_close_to_t_for_a_symmetric_sample():
    v = np.random.default_rng(2).normal(0.5, 0.05, 200)
    boot, t = stats.describe(v, lo=0.0, hi=1.0)["ci95"], stats.describe(v)["ci95"]
    np.testing.assert_allclose(boot, t, atol=0.15 * (t[1] - t[0]))


def test_one_value_and_none():
    d = stats.describe([0.7, float("inf")], lo=0.0, hi=1.0)
    assert d["ci95"] == [0.7, 0.7] and d["std"] is None and (d["n"], d["n_nonfinite"]) == (1, 1)
    e = stats.describe([float("nan")])
    assert {"mean", "ci95", "min", "max", "n", "n_nonfinite"} <= set(e)
    assert e["mean"] is None and e["ci95"] == [None, None] and e["n"] == 0 and e["n_nonfinite"] == 1
    assert stats.describe([])["n"] == 0


def test_bounds_of():
    assert stats.bounds_of("train_accuracy") == {"lo": 0.0, "hi": 1.0}
    assert stats.bounds_of("val_accuracy") == {"lo": 0.0, "hi": 1.0}
    assert stats.bounds_of("test_mse") == stats.bounds_of("retrained_test_mae") == {"lo": 0.0, "hi": None}
    assert stats.bounds_of("pruned_test_r2") == {"lo": None, "hi": 1.0}
    for k in ("edges", "active_edges", "effective_edges"):
        assert stats.bounds_of(k) == {"lo": 0.0, "hi": None}
    assert stats.bounds_of("loss") == {"lo": None, "hi": None}


# Newcombe, "Two-sided confidence intervals for the single proportion", Stat. Med. 17 (1998),
# Table I, method 3 (the last four); 0/10 and 5/10 from the same formula by hand.
@pytest.mark.parametrize("k, n, expected", [(0, 10, (0.0, 0.2775)), (5, 10, (0.2366, 0.7634)),
                                             (81, 263, (0.2553, 0.3662)), (15, 148, (0.0624, 0.1605)),
                                             (0, 20, (0.0, 0.1611)), (1, 29, (0.0061, 0.1718))])
def test_wilson_textbook(k, n, expected):
    np.testing.assert_allclose(stats.wilson(k, n), expected, atol=5e-5)


def test_wilson_bounds_and_errors():
    assert stats.wilson(0, 3)[0] == 0.0 and stats.wilson(3, 3)[1] == 1.0
    lo, hi = stats.wilson(1, 1000, z=2.576)
    assert 0.0 < lo < 0.001 < hi < 1.0
    with pytest.raises(ValueError, match="n=0 is invalid"):
        stats.wilson(0, 0)
    with pytest.raises(ValueError, match="k=4 is invalid"):
        stats.wilson(4, 3)
