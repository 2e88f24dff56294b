"""Feature importances from a λ path: how long each input survives, and how stably it is chosen.

For input i and run c, the *exit λ* is the λ of the first step after the last
step at which i is still selected (on an active path to an output): the λ at
which its last edge leaves the path for good (0 when it is never selected;
the path's last λ when it is selected to the end, which `run_path` avoids by
running until every edge is pruned). Inputs that matter survive to larger λ,
like the order in which variables enter a lasso path, read backwards.
*Stability* is the fraction of runs that select i at a given step (the
chosen one), as in stability selection.
"""

from __future__ import annotations

import numpy as np

from .program import PathRecords


def exit_lams(records: PathRecords) -> np.ndarray:
    """`(C, n_in)` float: per run and input, the λ at which it leaves the path for good."""
    sel = np.asarray(records.features, bool)  # (S, C, n_in)
    S = sel.shape[0]
    lam = np.asarray(records.lam, np.float64)
    ever = sel.any(axis=0)
    last = S - 1 - np.argmax(sel[::-1], axis=0)  # last selected step
    after = np.minimum(last + 1, S - 1)
    return np.where(ever, lam[after], 0.0)


def importances(records: PathRecords, names, step: int | None = None) -> list[dict]:
    """Inputs ranked by importance: median exit λ over runs (ties: stability, then mean exit λ).

    Args:
      records: a path's records.
      names: the `n_in` input names (`Dataset.feature_names`).
      step: the chosen step, for the stability column (default: none, stability None).
    Returns:
      one dict per input, most important first: `rank` (1-based), `feature`,
      `exit_lam_median`, `exit_lam_mean`, `exit_lam_min`, `exit_lam_max`,
      `exit_lam_per_run` (list over runs), `stability` (fraction of runs selecting it
      at `step`) and `selected_at_end` (runs that never dropped it).
    """
    ex = exit_lams(records)
    names = list(names)
    if len(names) != ex.shape[1]:
        raise ValueError(f"len(names)={len(names)} is invalid: allowed {ex.shape[1]} (the input width)")
    sel = np.asarray(records.features, bool)
    stab = None if step is None else sel[step].mean(axis=0)
    med, mean = np.median(ex, axis=0), ex.mean(axis=0)
    order = np.lexsort((-mean, -(stab if stab is not None else np.zeros_like(med)), -med))
    out = []
    for rank, i in enumerate(order, 1):
        out.append({"rank": rank, "feature": names[i], "exit_lam_median": float(med[i]), "exit_lam_mean": float(mean[i]),
                    "exit_lam_min": float(ex[:, i].min()), "exit_lam_max": float(ex[:, i].max()),
                    "exit_lam_per_run": [float(v) for v in ex[:, i]],
                    "stability": None if stab is None else float(stab[i]),
                    "selected_at_end": int(sel[-1, :, i].sum())})
    return out
