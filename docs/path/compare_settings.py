"""Path settings compared: Adam reset vs carried, the ratio, the epochs per step; and the λ_max rule.

For XOR [2,4,1] + bias (minimum 7 effective edges, 100 % training accuracy)
and a + b [2,8,1] (minimum 3, test R² >= 0.99), data seeds 0 and 1, seeds 0..N−1:
per setting, the per-seed rate of the minimal graph for the sparsest net on
the path meeting the condition after a 100-epoch retrain, before and after the
verified polish (`sbp_jax.path`), and the path's seconds (warm: the program is
compiled on the first data seed). The λ_max table compares glmnet's estimate
at the initial edges (what `run_path` uses) and after the warm-up with the λ
at which every edge is gone on the path.

    python docs/path/compare_settings.py [--seeds 100] [--out docs/path]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sbp_jax import io, tasks
from sbp_jax.config import TrainConfig
from sbp_jax.path import Condition, polish, run_path, sparsest_meeting
from experiments.compare_variants import assess

TASKS = {"xor_bias": (TrainConfig(layers=(2, 4, 1), bias=True, lr=1e-2), tasks.xor, Condition("accuracy", 1.0), 7,
                      "accuracy"),
         "addition": (TrainConfig(layers=(2, 8, 1), loss="mse", lr=1e-2), tasks.addition, Condition("r2", 0.99), 3,
                      "r2")}
DEFAULT = dict(n_steps=100, ratio=1.08, epochs_per_step=100, adam="reset")
SETTINGS = [("default: ×1.08, 100 steps, 100 epochs, Adam reset", {}),
            ("Adam carried", {"adam": "carry"}),
            ("60 epochs per step", {"epochs_per_step": 60}),
            ("40 epochs per step", {"epochs_per_step": 40}),
            ("25 epochs per step", {"epochs_per_step": 25}),
            ("×1.05, 150 steps", {"ratio": 1.05, "n_steps": 150}),
            ("×1.15, 50 steps", {"ratio": 1.15, "n_steps": 50}),
            ("coarse: ×1.4, 25 steps", {"ratio": 1.4, "n_steps": 25})]


def one(task: str, data_seed: int, kw: dict, seeds: int) -> dict:
    cfg, make, cond, minimum, metric = TASKS[task]
    data = make(data_seed)
    t0 = time.perf_counter()
    path = run_path(cfg, data, seeds, **(DEFAULT | kw))
    s = time.perf_counter() - t0
    chosen = sparsest_meeting(path, data, cond, retrain_epochs=100)
    polished = polish(chosen, path, data, cond, retrain_epochs=100)
    rate = lambda w: int(np.sum(assess(w, cfg, data, metric)["found"]))
    rec = path.records
    w = path.settings["warmup_steps"]
    return {"task": task, "data_seed": data_seed, "settings": DEFAULT | kw, "steps": len(rec.lam),
            "extensions": path.settings["extensions"], "path_s": s, "n": seeds,
            "minimal_before_polish": rate(chosen.weights), "minimal": rate(polished.weights),
            "lam_max_median": float(np.median(path.lam_max)),
            "estimate_init_median": float(np.median(rec.estimate[0])),
            "estimate_after_warmup_median": float(np.median(rec.estimate[w])),
            "estimate_after_warmup_max": float(np.max(rec.estimate[w]))}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--out", type=Path, default=Path("docs/path"))
    a = p.parse_args(argv)
    rows = []
    head = "| task | data seed | setting | steps | minimal before polish | minimal after polish | path s |"
    print(head)
    for name, kw in SETTINGS:
        for task in TASKS:
            for ds in (0, 1):
                r = one(task, ds, kw, a.seeds) | {"setting": name}
                rows.append(r)
                print(f"| {task} | {ds} | {name} | {r['steps']} | {r['minimal_before_polish']} / {r['n']} | "
                      f"{r['minimal']} / {r['n']} | {r['path_s']:.1f} |", flush=True)
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- |"] + [
        f"| {r['task']} | {r['data_seed']} | {r['setting']} | {r['steps']} | {r['minimal_before_polish']} / {r['n']} | "
        f"{r['minimal']} / {r['n']} | {r['path_s']:.1f} |" for r in rows]
    lam = ["| task | data seed | λ_max on the path (median) | glmnet estimate at init (median) | ratio | "
           "estimate after the warm-up (median / max) |", "| --- | --- | --- | --- | --- | --- |"] + [
        f"| {r['task']} | {r['data_seed']} | {r['lam_max_median']:.4g} | {r['estimate_init_median']:.4g} | "
        f"{r['lam_max_median'] / r['estimate_init_median']:.2f} | {r['estimate_after_warmup_median']:.3g} / "
        f"{r['estimate_after_warmup_max']:.3g} |" for r in rows if r["setting"].startswith("default")]
    command = ("python docs/path/compare_settings.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    io.write_json(a.out / "settings.json", {"rows": rows, "provenance": io.provenance(argv)})
    with io.atomic_path(a.out / "settings.md") as tmp:
        tmp.write_text(f"# Path settings\n\nCommand: `{command}` (2-core CPU shared with other jobs; seconds are "
                       "noisy; a new epochs-per-step value compiles a new program on data seed 0)\n\n"
                       + "\n".join(lines) + "\n\n## λ_max\n\n" + "\n".join(lam) + "\n")
    print("\n".join(lam))
    return rows


if __name__ == "__main__":
    main()
