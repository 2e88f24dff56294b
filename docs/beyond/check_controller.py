"""How close the target-sparsity controller (`--target-active`) lands, on noisy XOR:

    python docs/beyond/check_controller.py [--seeds 20]

For `[2,4,1]` (12 edges) and `[2,8,1]` (24 edges), lr 1e-3 (the paper's) and 1e-2, 1000 epochs,
targets 30 / 50 / 75 % of the edges, subgradient penalty, `target_gain` 0.01: active edges of the
trained nets (mean, min–max over seeds) against the target count, and the pruned nets' test
accuracy. One vmapped sweep (`sweep.run_grid`) per row.
"""

from __future__ import annotations

import argparse

import numpy as np

from sbp_jax import TrainConfig, stats, sweep, tasks


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=20)
    a = p.parse_args()
    d = tasks.xor(0)
    data = d
    print(f"noisy XOR, 1000 epochs, subgradient, target_gain 0.01, {a.seeds} seeds per row")
    print(f"{'layers':<10}{'lr':>7}{'target':>8}{'target edges':>14}{'active edges mean (min–max)':>30}"
          f"{'pruned test accuracy':>28}")
    for layers in ((2, 4, 1), (2, 8, 1)):
        for lr in (1e-3, 1e-2):
            for target in (0.3, 0.5, 0.75):
                cfg = TrainConfig(layers=layers, lr=lr, target_active=target, history_every=0)
                r = sweep.run_grid(cfg, data, sweep.make_grid(cfg, seeds=a.seeds))
                act = np.asarray(r.structure.active_per_layer).sum(1)
                acc = stats.describe(np.asarray(r.pruned_test["accuracy"]))
                edges = f"{act.mean():.2f} ({act.min()}–{act.max()})"
                ci = f"{acc['mean']:.3f} [{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}]"
                print(f"{str(list(layers)):<10}{lr:>7g}{target:>8g}{target * cfg.total_edges:>14.1f}{edges:>30}"
                      f"{ci:>28}", flush=True)


if __name__ == "__main__":
    main()
