"""The variants table: the paper's method and its variants on XOR and
a + b, many seeds per row, each row one vmapped sweep (`sweep.run_grid`):

    python -m experiments.compare_variants --seeds 100 [--out docs/beyond] [--tasks xor,addition]

Rows: faithful (the paper) / +bias / +skip (every layer fed by all earlier
layers) / proximal L1 / adaptive λ (warm-up then
ramp, the schedule the README (section "Beyond the paper") found best) / structural
dropout / magnitude baseline (dense λ = 0 training, prune each run to the
edge count of the faithful run of the same seed, fine-tune) / faithful +
retrain from the mask / faithful + rewind (lottery ticket) / +bias + retrain /
the `--path` rows: λ paths, the sparsest net meeting the task's condition after
a retrain, the verified polish (XOR with bias, also best of 4 paths per trial,
and with bias and skip; a + b), beside the fixed-λ rows.

Columns (all on the net as it would be deployed: inactive edges zeroed):
test metric (mean, 95 % interval within the metric's range, `stats.describe`), active edges, effective
edges, how often the minimal structure was found, and robustness: the mean
test metric after additionally removing one surviving edge (averaged over
every surviving edge of a run, then over runs).

Minimal structures (proofs and definitions in the README (section "Beyond the paper")):
  * XOR without bias: 6 edges, relu(x1−x2) and relu(x2−x1) summed; "found"
    = 6 effective edges and the four bare corners classified right (a
    bias-free net is positively homogeneous, so this is the best it can do).
  * XOR with bias: 7 edges (the same plus an output bias); "found" = 7
    effective edges and 100 % accuracy on the noisy training set.
  * XOR with skip edges (no bias): 5 edges, −2·x1 + x2 + 3·relu(x1 − x2) (or
    its mirror); "found" = 5 effective edges and the four bare corners right.
  * XOR with skip and bias edges: 6 edges (numerical check:
    `docs/beyond/check_xor_minimum.py --skip`); "found" = 6 effective edges and
    100 % accuracy on the noisy training set.
  * a + b: 3 edges, relu(a + b) (with or without bias); with skip edges 2,
    the direct edges a → y and b → y; "found" = that many effective edges
    and test R² >= 0.99.
Writes `<out>/variants.json` (atomically, `io.write_json`) and `<out>/variants.md`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sbp_jax import finetune, io, stats, sweep, tasks
from sbp_jax.config import TrainConfig
from sbp_jax.metrics import evaluate
from sbp_jax.structure import analyse, masked
from sbp_jax.train import check_data

from sbp_jax.path import parse_condition, search_sparsest
from sbp_jax.path.search import LR
from sbp_jax.sources import SOURCES, default_config

DROPOUT = 0.1


def _rows(base: TrainConfig, task: str) -> list[tuple[str, dict]]:
    """(name, config changes) of the rows trained by the method itself."""
    warm, ramp = base.epochs // 5, 3 * base.epochs // 10  # XOR: 200 + 300 steps, as in the README
    extra = [("+bias, lr=1e-2 (DESIGN.md probe's lr)", {"bias": True, "lr": 1e-2})] if task == "xor" else []
    return [
        ("faithful (paper)", {}),
        ("+bias", {"bias": True}),
        *extra,
        ("+skip", {"skip": True}),
        ("+bias +skip", {"bias": True, "skip": True}),
        ("proximal L1", {"penalty": "proximal"}),
        (f"adaptive λ (warmup {warm} + ramp {ramp})", {"lam_schedule": "warmup_ramp", "lam_warmup": warm, "lam_ramp": ramp}),
        (f"structural dropout p={DROPOUT:g}", {"dropout": DROPOUT}),
    ]


def _task(name: str):
    d = tasks.xor(0) if name == "xor" else tasks.addition(0)
    return default_config(name, d), d, "accuracy" if name == "xor" else "r2"


def assess(edges, cfg: TrainConfig, data, metric: str) -> dict:
    """Per-run numbers of deployed nets `edges` (leading run axis; inactive
    edges already zeroed): test metric, active/effective edges, minimal
    structure found, mean metric after removing one surviving edge."""
    x, y = check_data(cfg, data.x_train, data.y_train)
    xt, yt = check_data(cfg, data.x_test, data.y_test, name="x_test")
    kw = dict(loss=cfg.loss, hidden_activation=cfg.hidden_activation)
    edges = tuple(jnp.asarray(w) for w in edges)
    eps = jnp.float32(cfg.eps)

    def one(e):
        s = analyse(e, eps, cfg.bias)
        test = evaluate(e, xt, yt, **kw)[metric]
        train = evaluate(e, x, y, **kw)[metric]
        corners = evaluate(e, jnp.asarray(tasks.XOR_CORNERS, jnp.float32),
                           jnp.array([[0.0], [1.0], [1.0], [0.0]], jnp.float32), **kw)[metric] if cfg.loss == "bce" else test
        # robustness: remove each surviving edge in turn (one-hot masks over all positions)
        flat = jnp.concatenate([w.ravel() for w in e])
        sizes = [w.size for w in e]
        cuts = np.cumsum([0] + sizes)

        def without(p):
            keep = jnp.arange(flat.size) != p
            f = jnp.where(keep, flat, 0.0)
            ee = tuple(f[cuts[l]:cuts[l + 1]].reshape(w.shape) for l, w in enumerate(e))
            return evaluate(ee, xt, yt, **kw)[metric]

        drop = jax.vmap(without)(jnp.arange(flat.size))
        alive = jnp.abs(flat) >= eps
        n_alive = jnp.sum(alive, dtype=jnp.float32)
        robust = jnp.where(n_alive > 0, jnp.sum(jnp.where(alive, drop, 0.0)) / jnp.maximum(n_alive, 1.0), test)
        return dict(test=test, train=train, corners=corners, robust=robust,
                    active=jnp.sum(s.active_per_layer), effective=jnp.sum(s.effective_per_layer))

    out = {k: np.asarray(v) for k, v in jax.jit(jax.vmap(one))(edges).items()}
    minimum, ok = minimal_structure(cfg, out)
    out["found"] = (out["effective"] == minimum) & ok
    out["near"] = (out["effective"] <= minimum + 1) & ok
    out["ok"] = ok
    return out


def minimal_applies(source: str, cfg: TrainConfig) -> bool:
    """Whether `minimal_structure` knows the minimum of `cfg` on `source`: the paper's XOR
    (bce) or a + b (mse) on a [2, H, 1] ReLU net wide enough for the minimal graph."""
    loss = {"xor": "bce", "addition": "mse"}.get(source)
    return (loss == cfg.loss and len(cfg.layers) == 3 and cfg.layers[0] == 2 and cfg.layers[2] == 1
            and cfg.hidden_activation == "relu" and cfg.layers[1] >= (2 if source == "xor" else 1))


def minimal_structure(cfg: TrainConfig, per_run: dict) -> tuple[int, np.ndarray]:
    """(fewest effective edges that can solve the task, per-run accuracy condition) for `cfg`'s net
    family (see the module docstring)."""
    if cfg.loss == "bce":
        if cfg.bias:
            return (6 if cfg.skip else 7), per_run["train"] == 1.0
        return (5 if cfg.skip else 6), per_run["corners"] == 1.0
    return (2 if cfg.skip else 3), per_run["test"] >= 0.99


def _row(name: str, per_run: dict, metric: str, seconds: float, note: str = "") -> dict:
    return {
        "variant": name,
        "metric": metric,
        "test": stats.describe(per_run["test"], **stats.bounds_of(metric)),
        "active_edges": stats.describe(per_run["active"], **stats.bounds_of("edges")),
        "effective_edges": stats.describe(per_run["effective"], **stats.bounds_of("edges")),
        "minimal_found": int(np.sum(per_run["found"])),
        "near_minimal": int(np.sum(per_run["near"])),  # <= minimum + 1 effective edges, same accuracy condition
        "accuracy_condition_met": int(np.sum(per_run["ok"])),
        "n_runs": int(len(per_run["found"])),
        "robust_test": stats.describe(per_run["robust"], **stats.bounds_of(metric)),
        "seconds": round(seconds, 2),
        "note": note,
    }


def run_task(task: str, n_seeds: int, log=print, paths: bool = True) -> dict:
    base, data, metric = _task(task)
    seeds = list(range(n_seeds))
    retrain_epochs = base.epochs // 2
    rows, finals = [], {}
    for name, kw in _rows(base, task):
        cfg = base.replace(**kw)
        t0 = time.perf_counter()
        r = sweep.run_grid(cfg, data, sweep.make_grid(cfg, seeds=seeds))
        finals[name] = (cfg, r)
        deployed = jax.vmap(lambda e: masked(e, jnp.float32(cfg.eps)))(tuple(r.result.edges))
        rows.append(_row(name, assess(deployed, cfg, data, metric), metric, time.perf_counter() - t0))
        log(_line(rows[-1]))

    x, y = check_data(base, data.x_train, data.y_train)
    ft = dict(epochs=retrain_epochs, loss=base.loss, hidden_activation=base.hidden_activation)

    # magnitude baseline at the faithful run's edge count (same seed)
    cfg_f, r_f = finals["faithful (paper)"]
    ks = np.asarray(r_f.structure.active_per_layer).sum(1)
    t0 = time.perf_counter()
    dense_cfg = base.replace(lam=0.0)
    dense = sweep.run_grid(dense_cfg, data, sweep.make_grid(dense_cfg, seeds=seeds))
    mag, _ = finetune.magnitude_baseline(tuple(dense.result.edges), ks, x, y, base.lr, **ft)
    per = assess(mag, base, data, metric)
    assert np.all(per["active"] <= ks)
    rows.append(_row("magnitude baseline (λ=0, prune to faithful's count, fine-tune)", per, metric,
                     time.perf_counter() - t0, f"fine-tune {retrain_epochs} epochs"))
    log(_line(rows[-1]))

    for label, (cfg, r) in (("faithful", (cfg_f, r_f)), ("+bias", finals["+bias"])):
        t0 = time.perf_counter()
        re = finetune.retrain_from_mask(tuple(r.result.edges), cfg.eps, x, y, cfg.lr, **ft)
        rows.append(_row(f"{label} + retrain from mask", assess(re, cfg, data, metric), metric,
                         time.perf_counter() - t0, f"{retrain_epochs} epochs, no penalty"))
        log(_line(rows[-1]))
        if label == "faithful":
            t0 = time.perf_counter()
            init = finetune.initial_edges(cfg, seeds)
            rw = finetune.rewind_and_retrain(tuple(r.result.edges), init, cfg.eps, x, y, cfg.lr, **ft)
            rows.append(_row(f"{label} + rewind (lottery ticket)", assess(rw, cfg, data, metric), metric,
                             time.perf_counter() - t0, f"{retrain_epochs} epochs from initial values"))
            log(_line(rows[-1]))
    if paths:
        cond = parse_condition(SOURCES[task].condition)
        for label, kw, k in _path_rows(task):
            cfg = base.replace(lr=LR, **kw)
            s = search_sparsest(cfg, data, cond, range(n_seeds * k), restarts=k)
            rows.append(_row(label, assess(s.chosen.weights, cfg, data, metric), metric, s.seconds["total"],
                             f"condition {cond}; budget per trial {s.budget}"))
            log(_line(rows[-1]))
    return {"task": task, "config": base.to_dict(), "n_seeds": n_seeds, "retrain_epochs": retrain_epochs,
            "dropout": DROPOUT, "rows": rows}


def _path_rows(task: str) -> list[tuple[str, dict, int]]:
    """(name, config changes, restarts) of the `--path` rows: the λ path, the sparsest net meeting the task's
    condition after a retrain, the verified polish (`sbp_jax.path.search_sparsest`, lr 1e-2)."""
    if task == "xor":
        return [("+bias, --path (λ path + condition + polish)", {"bias": True}, 1),
                ("+bias, --path --restarts 4 (best of 4 paths)", {"bias": True}, 4),
                ("+bias +skip, --path", {"bias": True, "skip": True}, 1)]
    return [("--path (λ path + condition + polish)", {}, 1)]


def _ci(d: dict, digits: int = 3) -> str:
    return f"{d['mean']:.{digits}f} [{d['ci95'][0]:.{digits}f}, {d['ci95'][1]:.{digits}f}]"


def _line(r: dict) -> str:
    a = r["active_edges"]
    return (f"{r['variant']:<62}{_ci(r['test']):>26}{a['mean']:>8.2f} ({a['min']:.0f}–{a['max']:.0f})"
            f"{r['effective_edges']['mean']:>8.2f}{r['minimal_found']:>5}/{r['near_minimal']}/{r['accuracy_condition_met']}"
            f"/{r['n_runs']:<4}{_ci(r['robust_test']):>26}")


def markdown(results: list[dict], command: str) -> str:
    out = ["# Variants of structure-aware backprop on XOR and a + b", "", f"Command: `{command}`", "",
           "Minimal structure: XOR without bias 6 effective edges with the four bare corners right; XOR with "
           "bias 7 effective edges with 100 % on the noisy training set; XOR with skip edges 5 effective edges "
           "with the four bare corners right, with skip and bias edges 6 with 100 % on the noisy training set; "
           "a + b 3 effective edges (2 with skip edges) with test "
           "R² ≥ 0.99. 'condition met' counts runs meeting the accuracy condition at any size.", ""]
    for t in results:
        c = t["config"]
        out += [f"## {t['task']} {c['layers']}, λ={c['lam']:g}, lr={c['lr']:g}, {c['epochs']} epochs, "
                f"{t['n_seeds']} seeds per row", "",
                f"| variant | test {t['rows'][0]['metric']} (mean [95 % CI]) | active edges mean (min–max) | "
                f"effective edges | minimal / ≤ minimal+1 / condition met (of runs) | "
                f"test {t['rows'][0]['metric']} after removing one surviving edge |",
                "| --- | --- | --- | --- | --- | --- |"]
        for r in t["rows"]:
            a = r["active_edges"]
            out.append(f"| {r['variant']} | {_ci(r['test'])} | {a['mean']:.2f} ({a['min']:.0f}–{a['max']:.0f}) | "
                       f"{r['effective_edges']['mean']:.2f} | {r['minimal_found']} / {r['near_minimal']} / "
                       f"{r['accuracy_condition_met']} (of {r['n_runs']}) | {_ci(r['robust_test'])} |")
        out.append("")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m experiments.compare_variants", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seeds", type=int, default=100, help="seeds per row")
    p.add_argument("--tasks", default="xor,addition", help="comma-separated: xor, addition")
    p.add_argument("--out", type=Path, default=Path("docs/beyond"), help="folder for variants.json / variants.md")
    p.add_argument("--no-paths", action="store_true", help="skip the --path rows (λ paths: about a minute per task)")
    a = p.parse_args(argv)
    if a.seeds < 2:
        p.error(f"--seeds={a.seeds} is invalid: allowed an integer >= 2")
    names = [t for t in a.tasks.split(",") if t]
    bad = [t for t in names if t not in ("xor", "addition")]
    if bad or not names:
        p.error(f"--tasks={a.tasks!r} is invalid: allowed a comma-separated subset of xor, addition")
    results = []
    for t in names:
        print(f"\n{t}: {a.seeds} seeds per row", flush=True)
        results.append(run_task(t, a.seeds, log=lambda s: print(s, flush=True), paths=not a.no_paths))
    argv = sys.argv[1:] if argv is None else argv
    command = "python -m experiments.compare_variants " + " ".join(argv)
    io.write_json(a.out / "variants.json", {"results": results, "provenance": io.provenance(argv)})
    with io.atomic_path(a.out / "variants.md") as tmp:
        tmp.write_text(markdown(results, command.strip()))
    print(f"wrote {a.out}/variants.json, variants.md")
    return results


if __name__ == "__main__":
    main()
