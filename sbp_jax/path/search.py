"""The sparsest net that meets a condition: λ path → `sparsest_meeting` → `polish` → best of k.

    s = search_sparsest(cfg, tasks.xor(0), Condition("accuracy", 1.0), seeds=range(400), restarts=4)
    s.chosen.n_edges, s.chosen.met          # per trial (100 trials of 4 paths each)
    s.per_run                                # every path on its own (the per-seed rate)

The settings are the ones measured in docs/path/minimal_graphs.md (XOR + bias
7 edges in 98 % of trials with 4 restarts, a + b 3 edges in 100 %, on two data
draws and fresh seeds): `run_path`'s defaults (100 steps ×1.08, 100 epochs
each, Adam reset per step, 200 warm-up epochs), 24 candidate edge sets per run each
retrained for 100 epochs, and the verified polish. `LR` is the path's learning
rate there: at the paper's 1e-3 a 100-epoch step moves the weights too little
for the last redundant edge to fade inside its λ window.
"""

from __future__ import annotations

import time
from typing import NamedTuple, Sequence

import numpy as np

from ..config import TrainConfig, check_int
from ..metrics import metric_names
from .rules import Choice, higher_is_better
from .run import Path, as_seeds, run_path
from .verify import SPLITS, Condition, best_of_k, polish, sparsest_meeting

LR = 1e-2
RETRAIN = 100
CANDIDATES = 24


class Search(NamedTuple):
    """The outcome of `search_sparsest`: T trials of k restarts (C = T·k path runs)."""

    path: Path  # the C paths
    per_run: Choice  # every run's net (after the polish when it ran): (C,) fields
    chosen: Choice  # per trial, the sparsest of its k runs meeting the condition: (T,) fields; `run` indexes per_run
    restarts: int  # k
    condition: Condition
    seconds: dict  # path, choose, polish, total
    budget: dict  # epochs per trial: path, candidate retrains, polish retrains (at most)


def search_sparsest(config: TrainConfig, data, cond: Condition, seeds: Sequence[int] | int, *, restarts: int = 1,
           do_polish: bool = True, retrain_epochs: int = RETRAIN, candidates: int = CANDIDATES,
           **path_kw) -> Search:
    """Per trial, the sparsest net meeting `cond`, from `restarts` independent λ paths.

    Args:
      config: the method's settings (λ and epochs unused: the path sets them; lr applies).
      data: a `Dataset` (`cond.split` must be one it has).
      cond: what the chosen net must do, judged on the deployed net after a retrain.
      seeds: the path runs' seeds (a list, or a count n: 0..n−1); trial t is runs
        t·k … t·k + k − 1, so their number must be a multiple of `restarts`.
      restarts: k, independent paths per trial (best of k).
      do_polish: run the verified greedy edge removal on every run's net.
      retrain_epochs, candidates: `verify.sparsest_meeting`'s and `polish`'s.
      **path_kw: `run.run_path`'s options (its defaults are the measured settings above).
    Returns:
      a `Search`.
    """
    k = check_int("restarts", restarts, 1)
    names = metric_names(config.loss)
    if cond.metric not in names:
        raise ValueError(f"condition={str(cond)!r} is invalid for loss {config.loss!r}: allowed a condition on "
                         + ", ".join(names))
    if cond.split not in SPLITS or data.split(cond.split)[0].shape[0] == 0:
        raise ValueError(f"condition={str(cond)!r} is invalid: the data has no {cond.split!r} samples: allowed a "
                         "split it has (train; val or test where the data has them)")
    seeds = as_seeds(seeds)
    if len(seeds) % k:
        raise ValueError(f"restarts={k} is invalid for {len(seeds)} seeds: allowed a divisor of the number of seeds")
    t0 = time.perf_counter()
    path = run_path(config, data, seeds, **path_kw)
    t1 = time.perf_counter()
    per_run = sparsest_meeting(path, data, cond, retrain_epochs=retrain_epochs, candidates=candidates)
    t2 = time.perf_counter()
    if do_polish:
        per_run = polish(per_run, path, data, cond, retrain_epochs=retrain_epochs)
    t3 = time.perf_counter()
    chosen = best_of_k(per_run, k, cond) if k > 1 else per_run._replace(run=np.arange(len(path.seeds)))
    steps = len(path.records.lam)
    budget = {"path_epochs": k * steps * path.settings["epochs_per_step"],
              "retrain_epochs": k * candidates * retrain_epochs,
              "polish_epochs_max": k * config.total_edges * retrain_epochs if do_polish else 0}
    seconds = {"path": t1 - t0, "choose": t2 - t1, "polish": t3 - t2, "total": t3 - t0}
    return Search(path, per_run, chosen, k, cond, seconds, budget)


def parse_condition(text: str, split: str = "train") -> Condition:
    """'accuracy>=1', 'r2>=0.99', 'mse<=0.01' (optionally '@val' / '@test' for the split) as a `Condition`.

    The direction must be the metric's (>= for accuracy and R², <= for MSE and MAE)."""
    body, _, at = text.replace(" ", "").partition("@")
    split = at or split
    op = ">=" if ">=" in body else "<=" if "<=" in body else None
    metric, _, value = body.partition(op) if op else (body, "", "")
    allowed = "allowed METRIC>=X (accuracy, r2) or METRIC<=X (mse, mae), optionally @train, @val or @test"
    try:
        threshold = float(value)
    except ValueError:
        threshold = None
    if (op is None or threshold is None or not np.isfinite(threshold) or metric not in ("accuracy", "r2", "mse", "mae")
            or (op == ">=") != higher_is_better(metric) or split not in SPLITS):
        raise ValueError(f"condition={text!r} is invalid: {allowed}")
    return Condition(metric, threshold, split)
