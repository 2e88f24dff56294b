"""How often the chosen net is the minimal graph: the λ path + condition + polish vs a fixed λ.

    python -m experiments.minimal_graphs [--trials 100] [--data-seeds 0,1] [--restarts 3] [--out docs/path]

Tasks (minima and conditions as in `experiments.compare_variants`, proofs in
the README, "Beyond the paper"):

* xor_bias: XOR [2,4,1] + bias edges, 7 effective edges, 100 % accuracy on the
  noisy training set;
* xor_skip_bias: XOR [2,4,1] + bias + skip edges, 6 effective edges, same condition;
* addition: a + b [2,8,1], 3 effective edges, test R² >= 0.99.

Path method (`sbp_jax.path`): a λ path per seed (100 steps ×1.08, 100 epochs
each, warm-started, Adam reset, lr 1e-2), the sparsest net on the path meeting
the task's condition after a 100-epoch retrain of its survivors (judged on
the training split: accuracy 1.0, or R² >= 0.99 for a + b), then the verified
polish. On xor_bias each trial keeps the sparsest of `--restarts` independent
paths (best of k); the per-seed rate (every path on its own) is reported
beside it. The fixed-λ rows are single runs at the paper's λ = 1e-2
(`sweep.run_grid`, as in compare_variants), at the paper's lr 1e-3 and at the
path's lr 1e-2. Every net is judged by the same function
(`compare_variants.assess`) on the deployed net. Seeds are fresh (100,000 +
10,000 × data seed onwards), not the ones the settings were tuned on.

Writes `<out>/minimal_graphs.json` and `<out>/minimal_graphs.md` (atomically) and prints the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.compare_variants import assess
from sbp_jax import io, stats, sweep, tasks
from sbp_jax.config import TrainConfig
from sbp_jax.path import Condition
from sbp_jax.path.run import DEFAULTS as PATH
from sbp_jax.path.search import CANDIDATES, LR, RETRAIN, search_sparsest
from sbp_jax.sources import default_config
from sbp_jax.structure import masked

TASKS = {  # name: (source, config changes, minimum, condition used to choose, metric judged by assess)
    "xor_bias": ("xor", {"bias": True}, 7, Condition("accuracy", 1.0), "accuracy"),
    "xor_skip_bias": ("xor", {"bias": True, "skip": True}, 6, Condition("accuracy", 1.0), "accuracy"),
    "addition": ("addition", {}, 3, Condition("r2", 0.99), "r2"),
}
FIXED_LAM = 1e-2


def _data(source: str, data_seed: int):
    return tasks.xor(data_seed) if source == "xor" else tasks.addition(data_seed)


def _judge(edges, cfg: TrainConfig, data, metric: str, minimum: int) -> dict:
    per = assess(edges, cfg, data, metric)
    assert np.all(per["found"] == ((per["effective"] == minimum) & per["ok"]))
    return {"minimal": stats.rate(per["found"]), "near_minimal": stats.rate(per["near"]), "condition_met": stats.rate(per["ok"]),
            "effective_edges": stats.describe(per["effective"], **stats.bounds_of("edges")),
            "test": stats.describe(per["test"], **stats.bounds_of(metric))}


def run_path_method(name: str, data_seed: int, trials: int, restarts: int, log=print) -> dict:
    source, changes, minimum, cond, metric = TASKS[name]
    data = _data(source, data_seed)
    cfg = default_config(source, data).replace(lr=LR, **changes)
    k = restarts if name == "xor_bias" else 1
    s = search_sparsest(cfg, data, cond, 100_000 + 10_000 * data_seed + np.arange(trials * k), restarts=k,
               retrain_epochs=RETRAIN, candidates=CANDIDATES)
    per_seed = _judge(s.per_run.weights, cfg, data, metric, minimum)
    out = _judge(s.chosen.weights, cfg, data, metric, minimum)
    sec = s.seconds
    S = len(s.path.records.lam)
    log(f"  {name} data {data_seed}: path {S} steps, {sec['total']:.1f} s "
        f"(path {sec['path']:.1f}, choose {sec['choose']:.1f}, polish {sec['polish']:.1f})")
    return {"method": "path + condition + polish" + (f", best of {k}" if k > 1 else ""), "restarts": k, **out,
            "per_seed": per_seed["minimal"], "seconds": sec, "seconds_per_100_trials": sec["total"] * 100 / trials,
            "budget_per_trial": s.budget, "steps": S, "lam_max_median": float(np.median(s.path.lam_max)),
            "config": cfg.to_dict()}


def run_fixed(name: str, data_seed: int, trials: int, lr: float | None) -> dict:
    source, changes, minimum, _, metric = TASKS[name]
    data = _data(source, data_seed)
    cfg = default_config(source, data).replace(lam=FIXED_LAM, history_every=0, **changes)
    cfg = cfg if lr is None else cfg.replace(lr=lr)
    seeds = list(100_000 + 10_000 * data_seed + np.arange(trials))
    t0 = time.perf_counter()
    out = sweep.run_grid(cfg, data, sweep.make_grid(cfg, seeds=seeds))
    deployed = jax.vmap(lambda e: masked(e, jnp.float32(cfg.eps)))(tuple(out.result.edges))
    s = time.perf_counter() - t0
    return {"method": f"fixed λ={FIXED_LAM:g}, lr={cfg.lr:g}, {cfg.epochs} epochs", "restarts": 1,
            **_judge(deployed, cfg, data, metric, minimum), "seconds": {"total": s},
            "seconds_per_100_trials": s * 100 / trials, "budget_per_trial": {"epochs": cfg.epochs},
            "config": cfg.to_dict()}


def _pct(r: dict) -> str:
    lo, hi = r["wilson95"]
    return f"{100 * r['rate']:.0f} % [{100 * lo:.0f}, {100 * hi:.0f}]"


def table(rows: list[dict]) -> list[str]:
    out = ["| task | data seed | method | minimal (95 % Wilson) | per seed (no restarts) | ≤ min + 1 | condition met "
           "| effective edges mean | s / 100 trials |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        per = _pct(r["per_seed"]) if "per_seed" in r else "—"
        out.append(f"| {r['task']} (min {TASKS[r['task']][2]}) | {r['data_seed']} | {r['method']} | {_pct(r['minimal'])} | "
                   f"{per} | {_pct(r['near_minimal'])} | {_pct(r['condition_met'])} | "
                   f"{r['effective_edges']['mean']:.2f} | {r['seconds_per_100_trials']:.1f} |")
    return out


def markdown(rows: list[dict], command: str) -> str:
    lines = ["# Minimal graphs: the λ path + condition + polish vs a fixed λ", "", f"Command: `{command}`", "",
             "Minimal = exactly the minimal number of effective edges and the task's condition on the deployed net "
             "(XOR: 100 % on the noisy training set; a + b: test R² ≥ 0.99), judged by "
             "`experiments.compare_variants.assess`. Path settings: " + ", ".join(f"{k}={v}" for k, v in PATH.items())
             + f", lr={LR:g}, retrain {RETRAIN} epochs, {CANDIDATES} candidates per run. Seconds on the 2-core "
             "CPU shared with other jobs; the first data seed includes compilation, the second does not.", ""]
    return "\n".join(lines + table(rows)) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m experiments.minimal_graphs", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--trials", type=int, default=100, help="trials per task and data seed")
    p.add_argument("--data-seeds", default="0,1", help="comma-separated data seeds")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    p.add_argument("--restarts", type=int, default=4, help="independent paths per trial on xor_bias (best of k)")
    p.add_argument("--no-fixed", action="store_true", help="skip the fixed-λ rows")
    p.add_argument("--out", type=Path, default=Path("docs/path"), help="folder for minimal_graphs.json / .md")
    a = p.parse_args(argv)
    names = [t for t in a.tasks.split(",") if t]
    if not names or any(t not in TASKS for t in names):
        p.error(f"--tasks={a.tasks!r} is invalid: allowed a comma-separated subset of {', '.join(TASKS)}")
    try:
        data_seeds = [int(s) for s in a.data_seeds.split(",") if s]
    except ValueError:
        data_seeds = []
    if not data_seeds or min(data_seeds) < 0:
        p.error(f"--data-seeds={a.data_seeds!r} is invalid: allowed comma-separated integers >= 0")
    if a.trials < 1 or a.restarts < 1:
        p.error(f"--trials={a.trials} / --restarts={a.restarts} is invalid: allowed integers >= 1")
    rows = []
    for name in names:
        for ds in data_seeds:
            rows.append({"task": name, "data_seed": ds, **run_path_method(name, ds, a.trials, a.restarts)})
            print(table(rows[-1:])[-1], flush=True)
            if not a.no_fixed:
                for lr in (None, LR):
                    rows.append({"task": name, "data_seed": ds, **run_fixed(name, ds, a.trials, lr)})
                    print(table(rows[-1:])[-1], flush=True)
    argv = sys.argv[1:] if argv is None else argv
    command = ("python -m experiments.minimal_graphs " + " ".join(argv)).strip()
    io.write_json(a.out / "minimal_graphs.json", {"rows": rows, "path": PATH, "path_lr": LR, "retrain": RETRAIN,
                                                  "candidates": CANDIDATES, "provenance": io.provenance(argv)})
    with io.atomic_path(a.out / "minimal_graphs.md") as tmp:
        tmp.write_text(markdown(rows, command))
    print("\n".join(table(rows)))
    print(f"wrote {a.out}/minimal_graphs.json, minimal_graphs.md")
    return rows


if __name__ == "__main__":
    main()
