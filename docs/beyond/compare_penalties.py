"""Compare the L1 penalty variants on noisy XOR over many seeds (one sweep per row):

    python docs/beyond/compare_penalties.py [--seeds 50] [--task xor|addition]

Columns: pruned-net test metric (mean, 95 % CI), active edges (mean, min–max),
exact zeros per net, and stability of the active set in the last 10 % of
epochs: Σ|Δ active count| between consecutive epochs (a lower bound on the
number of edges flipping active/inactive; they coincide unless two flips in
opposite directions fall in the same epoch), and the fraction of runs with no
change at all.
"""

from __future__ import annotations

import argparse

import numpy as np

from experiments.addition import DEFAULTS as ADD
from experiments.xor import DEFAULTS as XOR
from sbp_jax import stats, sweep, tasks

ROWS = [
    ("subgradient (paper)", {}),
    ("proximal (Adam metric)", {"penalty": "proximal"}),
    ("proximal_plain (lr·λ)", {"penalty": "proximal_plain"}),
    ("subgradient, warmup_ramp 200+300", {"lam_schedule": "warmup_ramp", "lam_warmup": 200, "lam_ramp": 300}),
    ("subgradient, layer_lams 1,0.1", {"layer_lams": (1.0, 0.1)}),
    ("subgradient, target_active 0.5", {"target_active": 0.5}),
    ("proximal, target_active 0.5", {"penalty": "proximal", "target_active": 0.5}),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--task", default="xor", choices=("xor", "addition"))
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lam", type=float, default=None)
    a = p.parse_args()
    base = XOR if a.task == "xor" else ADD
    base = base.replace(**{k: v for k, v in (("lr", a.lr), ("lam", a.lam)) if v is not None})
    data = tasks.xor(0) if a.task == "xor" else tasks.addition(0)
    metric = "accuracy" if a.task == "xor" else "r2"
    print(f"{a.task} {list(base.layers)}, λ={base.lam:g}, lr={base.lr:g}, {base.epochs} epochs, {a.seeds} seeds")
    print(f"{'variant':<36}{'pruned test ' + metric:>26}{'active edges':>20}{'exact 0':>9}{'Δ last 10%':>12}{'stable':>8}")
    for name, kw in ROWS:
        cfg = base.replace(**kw)
        r = sweep.run_grid(cfg, data, sweep.make_grid(cfg, seeds=a.seeds))
        m = stats.describe(np.asarray(r.pruned_test[metric]))
        act = np.asarray(r.structure.active_per_layer).sum(1)
        h = np.asarray(r.result.history.active_edges)
        tail = h[:, int(0.9 * h.shape[1]):]
        flips = np.abs(np.diff(tail, axis=1)).sum(1)
        zeros = sum((np.asarray(w) == 0).sum((1, 2)) for w in r.result.edges)
        print(f"{name:<36}{m['mean']:>10.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
              f"{act.mean():>10.2f} ({act.min()}–{act.max()}){zeros.mean():>9.2f}{flips.mean():>12.2f}"
              f"{np.mean(flips == 0):>8.2f}", flush=True)


if __name__ == "__main__":
    main()
