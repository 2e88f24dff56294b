"""Model choice on a path's records (numpy only): best validation and the 1-SE rule.

Both look at one metric of the pruned nets on one split, averaged over the
runs (seeds) at each step, and pick one step for every run; `Choice` says
what was chosen and why. The rules that retrain candidates per run are in
`verify.py`. Conventions:

* higher is better for accuracy and R², lower for MSE and MAE (`higher_is_better`);
* a run whose loss went non-finite at or before a step is left out of that
  step's mean (a step with no finite value is never chosen);
* ties go to the larger λ (the sparser net).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .program import PathRecords

LOWER_IS_BETTER = ("mse", "mae")


class Choice(NamedTuple):
    """What a rule chose and why. A shared step (best validation, 1-SE) has scalar
    fields; a per-run rule (`verify.sparsest_meeting`, `polish`, `best_of_k`) has
    one entry per run (step −1 where no candidate qualified)."""

    rule: str  # 'best_validation', '1se', 'sparsest_meeting', 'polish', 'best_of_k'
    step: int | np.ndarray  # the chosen step of the path (per run: (C,) int)
    lam: float | np.ndarray  # λ at that step
    n_edges: float | np.ndarray  # effective edges: mean over runs at a shared step, or per run
    metric: float | np.ndarray  # the metric the rule judged (mean over runs, or per run)
    reason: str  # one sentence: the numbers behind the choice
    weights: tuple | None = None  # per-run rules: the chosen nets, per layer (C, n_out, n_in), pruned edges 0
    met: np.ndarray | None = None  # per-run rules: (C,) bool, the chosen net meets the rule's condition
    run: np.ndarray | None = None  # best_of_k: (T,) the run chosen for each trial


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def step_stats(records: PathRecords, metric: str, split: str = "val") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step: mean `(S,)`, standard error `(S,)` (std with ddof 1 over √n; 0 for n = 1)
    and n `(S,)` of `metric` on `split` over the runs that have not diverged."""
    table = getattr(records, split)
    if not table:
        raise ValueError(f"split={split!r} is invalid: the path has no {split} metrics (allowed a split the data "
                         "has; is the validation split empty?)")
    if metric not in table:
        raise ValueError(f"metric={metric!r} is invalid for split {split!r}: allowed one of " + ", ".join(map(repr, table)))
    v = np.where(records.diverged, np.nan, np.asarray(table[metric], np.float64))
    v = np.where(np.isfinite(v), v, np.nan)
    n = np.sum(np.isfinite(v), axis=1)
    safe = lambda f: np.where(n > 0, f, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe(np.nansum(v, axis=1) / np.maximum(n, 1))
        dev = np.nansum(np.square(v - mean[:, None]), axis=1)
        se = np.where(n > 1, np.sqrt(dev / np.maximum(n - 1, 1)) / np.sqrt(np.maximum(n, 1)), 0.0)
    return mean, safe(se), n


def _best(mean: np.ndarray, higher: bool) -> int:
    """The step of the best mean; ties to the largest λ (the last such step)."""
    score = np.where(np.isnan(mean), -np.inf, mean if higher else -mean)
    if not np.isfinite(score).any():
        raise ValueError("no step has a finite metric (every run diverged?)")
    return int(len(score) - 1 - np.argmax(score[::-1]))


def _shared(rule: str, records: PathRecords, k: int, value: float, reason: str) -> Choice:
    return Choice(rule, k, float(records.lam[k]), float(np.mean(records.effective[k])), float(value), reason)


def best_validation(records: PathRecords, metric: str, split: str = "val") -> Choice:
    """The step with the best mean `metric` on `split` over the runs (ties: the larger λ)."""
    mean, _, n = step_stats(records, metric, split)
    k = _best(mean, higher_is_better(metric))
    return _shared("best_validation", records, k, mean[k],
                   f"best mean {split} {metric} {mean[k]:.4g} over {n[k]} runs at step {k} (λ={records.lam[k]:.4g}, "
                   f"{np.mean(records.effective[k]):.2f} effective edges)")


def one_se(records: PathRecords, metric: str, split: str = "val", sample_se: float = 0.0,
           runs_se: bool = True) -> Choice:
    """glmnet's 1-SE rule: the largest λ whose mean `metric` on `split` is within one
    standard error of the best mean.

    The standard error at the best step is the one over runs (seeds), combined with
    `sample_se`, the standard error of the metric over the split's samples (runs share
    one validation split, so seeds do not average its sampling noise out; see
    `auto.sample_se`): SE = √(SE_runs² + sample_se²). With `sample_se` 0 it is the
    seeds' alone, which is 0 when every run scores the same; `runs_se=False` leaves
    the runs' part out (only `sample_se`)."""
    mean, se, n = step_stats(records, metric, split)
    se = se if runs_se else np.zeros_like(se)
    higher = higher_is_better(metric)
    b = _best(mean, higher)
    total = float(np.sqrt(se[b] ** 2 + float(sample_se) ** 2))
    bound = mean[b] - total if higher else mean[b] + total
    ok = np.where(np.isnan(mean), False, mean >= bound if higher else mean <= bound)
    k = int(len(ok) - 1 - np.argmax(ok[::-1]))
    return _shared("1se", records, k, mean[k],
                   f"largest λ={records.lam[k]:.4g} (step {k}) with mean {split} {metric} {mean[k]:.4g} within one "
                   f"SE of the best, {mean[b]:.4g} ± {total:.2g} (SE over {n[b]} runs {se[b]:.2g}, over samples "
                   f"{float(sample_se):.2g}; step {b}, λ={records.lam[b]:.4g}); "
                   f"{np.mean(records.effective[k]):.2f} effective edges vs {np.mean(records.effective[b]):.2f}")
