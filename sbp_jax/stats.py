"""Summary statistics whose intervals respect the range of what they describe.

A t-interval of the mean is right for an unbounded quantity, but for an
accuracy of 1.0 in most runs it reaches past 1 (`1 [0.9976, 1.001]`), and for
a small MSE below 0. `describe` therefore takes the quantity's range: with a
bound it reports a bootstrap percentile interval of the mean, which is made of
means of the data and so never leaves the range. `wilson` is the interval of a
proportion ("the exact graph in 37 of 100 runs"); `bounds_of` knows the ranges
of this package's metric names.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import stdtrit  # scipy: a dependency of scikit-learn; scipy.stats would add 0.5 s of imports

N_RESAMPLES = 2000  # bootstrap resamples of the mean
BOOTSTRAP_SEED = 0  # the bootstrap's fixed seed: the same values give the same interval, bit for bit

T_INTERVAL = "t: mean ± t(0.975, n−1)·s/√n"
BOOTSTRAP_INTERVAL = f"bootstrap percentile of the mean ({N_RESAMPLES} resamples, seed {BOOTSTRAP_SEED})"
NO_INTERVAL = "none: fewer than 2 values"

# Range of each metric, by the last `_`-separated part of its name
# ("pruned_test_accuracy" -> "accuracy", "active_edges" -> "edges").
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "accuracy": (0.0, 1.0),
    "mse": (0.0, None),
    "mae": (0.0, None),
    "r2": (None, 1.0),
    "edges": (0.0, None),
}


def bounds_of(name: str) -> dict[str, float | None]:
    """The range of the metric `name` as `describe`'s keywords: `{"lo": ..., "hi": ...}`.

    `name` may carry a split prefix (`train_accuracy`, `pruned_test_r2`,
    `retrained_test_mae`, `active_edges`); an unknown name is unbounded.

    Example:
      >>> bounds_of("val_accuracy"), bounds_of("pruned_test_r2")
      ({'lo': 0.0, 'hi': 1.0}, {'lo': None, 'hi': 1.0})
      >>> describe([0.5, 1.0, 1.0], **bounds_of("test_accuracy"))["ci95"][1] <= 1.0
      True
    """
    lo, hi = BOUNDS.get(name.rsplit("_", 1)[-1], (None, None))
    return {"lo": lo, "hi": hi}


def t_quantile_975(dof: int) -> float:
    """The 0.975 quantile of Student's t with `dof` >= 1 degrees of freedom."""
    return float(stdtrit(dof, 0.975))  # what scipy.stats.t.ppf(0.975, dof) computes


def _bootstrap_ci(finite: np.ndarray) -> list[float]:
    """2.5 and 97.5 percentiles of `N_RESAMPLES` resampled means of `finite` `(n,)`, n >= 2.

    The values are sorted first, so the interval depends on the multiset of
    values only, not on their order. Memory: `N_RESAMPLES × n` indices."""
    x = np.sort(finite)
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(x), size=(N_RESAMPLES, len(x)))
    lo, hi = np.percentile(x[idx].mean(axis=1), [2.5, 97.5])
    return [float(lo), float(hi)]


def describe(values, *, lo: float | None = None, hi: float | None = None) -> dict:
    """Mean, 95 % interval of the mean, std, min, max and n of the finite entries of `values`.

    Args:
      values: any array-like (flattened); NaN and ±inf (e.g. diverged runs)
        are left out and counted in `n_nonfinite`.
      lo, hi: the range of the quantity (see `bounds_of`), or None. With
        neither, the interval is the t-interval of the mean; with either, the
        bootstrap percentile interval, clipped to [lo, hi] against rounding
        (a mean of values in the range is in the range).
    Returns:
      a dict: `mean`, `ci95` ([low, high]), `std` (sample std, ddof=1),
      `min`, `max` (floats; None without finite values, `std` None below 2),
      `n`, `n_nonfinite` (ints) and `interval` (the method, a string).
      One value v gives `ci95 = [v, v]`.

    Example:
      >>> d = describe([1.0, 1.0, 1.0, 0.75], lo=0.0, hi=1.0)
      >>> d["ci95"][1] <= 1.0, d["interval"] == BOOTSTRAP_INTERVAL
      (True, True)
    """
    v = np.asarray(values, np.float64).ravel()
    finite = v[np.isfinite(v)]
    n = len(finite)
    out = {"mean": None, "ci95": [None, None], "std": None, "min": None, "max": None, "n": n,
           "n_nonfinite": int(len(v) - n), "interval": NO_INTERVAL}
    if n == 0:
        return out
    mean = float(finite.mean())
    out.update(mean=mean, ci95=[mean, mean], min=float(finite.min()), max=float(finite.max()))
    if n == 1:
        return out
    std = float(finite.std(ddof=1))
    if lo is None and hi is None:
        half = t_quantile_975(n - 1) * std / math.sqrt(n)
        ci, interval = [mean - half, mean + half], T_INTERVAL
    else:
        ci = [float(np.clip(c, lo, hi)) for c in _bootstrap_ci(finite)]
        interval = BOOTSTRAP_INTERVAL
    out.update(ci95=ci, std=std, interval=interval)
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (default: 95 %).

    Unlike k/n ± z·√(p(1−p)/n) it stays in [0, 1] and is not empty at k = 0
    or k = n. Wilson, "Probable inference, the law of succession, and
    statistical inference", JASA 22 (1927).

    Args:
      k: successes, 0 <= k <= n; n: trials, n >= 1; z: the normal quantile.
    Returns:
      (low, high), floats in [0, 1]; low = 0 exactly at k = 0, high = 1 at k = n.

    Example:
      >>> tuple(round(b, 4) for b in wilson(5, 10))
      (0.2366, 0.7634)
    """
    if n < 1:
        raise ValueError(f"n={n!r} is invalid: allowed an integer >= 1 (trials)")
    if not 0 <= k <= n:
        raise ValueError(f"k={k!r} is invalid: allowed an integer in [0, n={n}] (successes)")
    z2 = z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z / (n + z2) * math.sqrt(k * (n - k) / n + z2 / 4)
    low = 0.0 if k == 0 else max(centre - half, 0.0)
    high = 1.0 if k == n else min(centre + half, 1.0)
    return low, high


def rate(flags) -> dict:
    """How many of `flags` (bool, one per trial, at least one) are true: `{"k", "n", "rate", "wilson95"}`."""
    flags = np.asarray(flags, bool).ravel()
    k, n = int(flags.sum()), int(flags.size)
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n, "wilson95": [lo, hi]}
