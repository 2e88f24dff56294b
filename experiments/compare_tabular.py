"""Dense vs structure-aware backprop vs magnitude pruning on the bundled data sets.

`python -m experiments.compare_tabular [--seeds 10] [--out docs/tabular]`

Per data set (one fixed stratified split, `--data-seed`; the seeds vary the
initialisation):
  * one vmapped sweep (`sweep.run_grid`) over λ ∈ `--lams` (0 included) × seeds;
  * dense = the λ = 0 runs (all edges);
  * ours = the runs at the λ the validation split picks: the largest λ > 0
    whose mean validation metric is within `--tol` of the best mean over all
    λ (the sparsest near-best model); its test metric is that of the pruned
    net (|w| < ε set to zero) and its edge count the active edges;
  * magnitude = each seed's dense net pruned to the same edge count as ours
    for that seed, layer by layer (the smallest |w| of each layer go until it
    has as many edges as our net's layer; global pruning, tried first,
    disconnects the output layer), then fine-tuned with the mask fixed
    (`finetune.finetune_masked`, Adam, `--finetune-epochs`).
Writes `<out>/results.md` (table) and `<out>/results.json`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

from sbp_jax import io, stats, sweep
from sbp_jax.results import evaluate_stacked
from sbp_jax.sources import NAMED, load_source
from sbp_jax.config import TrainConfig
from sbp_jax.finetune import finetune_masked, magnitude_masks_per_layer
from sbp_jax.structure import selected_features

DATASETS = ("breast_cancer", "wine", "digits", "diabetes")


def _floats(text):
    return [float(v) for v in text.split(",")]


def build_parser():
    p = argparse.ArgumentParser(prog="python -m experiments.compare_tabular", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated bundled data sets")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--lams", type=_floats, default=[0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    p.add_argument("--hidden", default="64", help="hidden widths")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--eps", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--finetune-epochs", type=int, default=500)
    p.add_argument("--tol", type=float, default=0.005, help="validation tolerance for picking λ (metric units)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--out", type=Path, default=Path("docs/tabular"))
    return p


def _d(values, metric: str) -> dict:
    """`stats.describe` within the metric's range."""
    return stats.describe(values, **stats.bounds_of(metric))


def compare_one(name: str, args) -> dict:
    ds = load_source(name, data_seed=args.data_seed)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    cfg = TrainConfig(layers=(ds.n_in, *hidden, ds.n_out), loss=ds.loss, lr=args.lr, epochs=args.epochs,
                      eps=args.eps, batch_size=args.batch_size, history_every=0)
    metric = "r2" if ds.kind == "regression" else "accuracy"
    grid = sweep.make_grid(cfg, lams=args.lams, seeds=args.seeds)
    timing: dict = {}
    t0 = time.perf_counter()
    res = sweep.run_grid(cfg, ds, grid, timing=timing)
    timing["sweep_total_s"] = time.perf_counter() - t0
    edges = tuple(np.asarray(w) for w in res.result.edges)
    val = np.asarray(res.pruned_val[metric])
    test_pruned = np.asarray(res.pruned_test[metric])
    test_full = np.asarray(res.test[metric])
    active = np.asarray(res.structure.active_per_layer).sum(axis=1)
    diverged = np.asarray(res.result.diverged_at) >= 0

    lams = sorted(set(float(v) for v in grid.lam))
    per_lam = []
    for lam in lams:
        sel = (grid.lam == np.float32(lam)) & ~diverged
        per_lam.append({"lam": lam, "val": _d(val[sel], metric), "test_pruned": _d(test_pruned[sel], metric),
                        "active_edges": _d(active[sel], "edges"), "n_diverged": int(np.sum(diverged & (grid.lam == np.float32(lam))))})
    best = max(r["val"]["mean"] for r in per_lam if r["val"]["mean"] is not None)
    ok = [r["lam"] for r in per_lam if r["lam"] > 0 and r["val"]["mean"] is not None and r["val"]["mean"] >= best - args.tol]
    lam_star = max(ok) if ok else min(l for l in lams if l > 0)

    dense_idx = np.where(grid.lam == 0)[0]
    ours_idx = np.where(grid.lam == np.float32(lam_star))[0]
    assert list(grid.seed[dense_idx]) == list(grid.seed[ours_idx])
    # Magnitude pruning of each seed's dense net to our edge count for that seed, then masked fine-tuning.
    t1 = time.perf_counter()
    dense_edges = tuple(w[dense_idx] for w in edges)
    k = active[ours_idx]
    k_layer = np.asarray(res.structure.active_per_layer)[ours_idx]
    mk = jax.vmap(magnitude_masks_per_layer)(dense_edges, k_layer)
    x, y = jax.numpy.asarray(ds.x_train), jax.numpy.asarray(ds.y_train)
    ft = jax.vmap(lambda e, m: finetune_masked(e, m, x, y, args.lr, epochs=args.finetune_epochs, loss=cfg.loss,
                                                hidden_activation=cfg.hidden_activation))(dense_edges, mk)
    mag_test = evaluate_stacked(ft, ds.x_test, ds.y_test, cfg)[metric]
    mag_edges = sum(np.asarray(m).reshape(len(k), -1).sum(axis=1) for m in mk)
    no_ft_test = evaluate_stacked(tuple(np.where(np.asarray(m), w, 0) for m, w in zip(mk, dense_edges)),
                               ds.x_test, ds.y_test, cfg)[metric]
    timing["magnitude_finetune_s"] = time.perf_counter() - t1

    feats = [selected_features(tuple(w[i] for w in edges), args.eps, ds.feature_names) for i in ours_idx]
    rows = {
        "dense": {"test": _d(test_full[dense_idx], metric), "active_edges": _d(active[dense_idx], "edges")},
        "ours": {"lam": lam_star, "test": _d(test_pruned[ours_idx], metric), "active_edges": _d(k, "edges"),
                 "test_unpruned": _d(test_full[ours_idx], metric),
                 "selected_features": _d([len(f) for f in feats], "edges")},
        "magnitude_finetuned": {"test": _d(mag_test, metric), "active_edges": _d(mag_edges, "edges")},
        "magnitude_no_finetune": {"test": _d(no_ft_test, metric), "active_edges": _d(mag_edges, "edges")},
    }
    return {"dataset": name, "info": ds.info() | {"feature_names": None}, "metric": f"test_{metric}",
            "config": cfg.to_dict(), "total_edges": cfg.total_edges, "per_lam": per_lam, "rows": rows,
            "per_seed": {"seed": grid.seed[ours_idx].tolist(), "dense": test_full[dense_idx].tolist(),
                         "ours": test_pruned[ours_idx].tolist(), "ours_edges": k.tolist(),
                         "magnitude": mag_test.tolist(), "selected_features": feats},
            "timing": timing}


def _ci(d, scale):
    if d["mean"] is None:
        return "–"
    m, (lo, hi) = d["mean"] * scale, d["ci95"]
    return f"{m:.2f} [{lo * scale:.2f}, {hi * scale:.2f}]"


def markdown(all_results: list[dict], args, argv) -> str:
    lines = ["# Real data: dense vs structure-aware backprop vs magnitude pruning", "",
             f"Command: `python -m experiments.compare_tabular {' '.join(argv)}`".replace("  ", " "), "",
             f"{args.seeds} initialisation seeds per row on one stratified 60/20/20 split (split seed {args.data_seed}); "
             f"mean [95 % interval over seeds: bootstrap percentile for bounded metrics, t for R²]. Accuracy in %, R² × 100. "
             f"Hidden {args.hidden}, ReLU, Adam lr {args.lr:g}, {args.epochs} full-batch epochs, ε = {args.eps:g}; "
             f"λ grid {args.lams}; λ* = largest λ whose mean validation metric is within {args.tol:g} of the best; "
             f"magnitude = dense net pruned layer by layer to the same per-seed, per-layer edge counts as ours, fine-tuned {args.finetune_epochs} epochs.", "",
             "| data set | metric | dense (all edges) | ours at λ* | λ* | active edges (ours) | % of edges "
             "| magnitude + fine-tune | magnitude, no fine-tune |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in all_results:
        rw, tot = r["rows"], r["total_edges"]
        e = rw["ours"]["active_edges"]
        lines.append(f"| {r['dataset']} | {r['metric']} | {_ci(rw['dense']['test'], 100)} | {_ci(rw['ours']['test'], 100)} "
                     f"| {rw['ours']['lam']:g} | {e['mean']:.0f} [{e['min']:.0f}–{e['max']:.0f}] of {tot} "
                     f"| {100 * e['mean'] / tot:.1f} % | {_ci(rw['magnitude_finetuned']['test'], 100)} "
                     f"| {_ci(rw['magnitude_no_finetune']['test'], 100)} |")
    lines += ["", "## Per λ (pruned-net test metric ×100, active edges; mean over seeds)", "",
              "| data set | " + " | ".join(f"λ={l:g}" for l in args.lams) + " |",
              "| --- |" + " --- |" * len(args.lams)]
    for r in all_results:
        cells = [f"{p['test_pruned']['mean'] * 100:.1f} / {p['active_edges']['mean']:.0f}" if p["test_pruned"]["mean"] is not None else "–"
                 for p in r["per_lam"]]
        lines.append(f"| {r['dataset']} | " + " | ".join(cells) + " |")
    lines += ["", "Timing (2-core CPU): " + "; ".join(
        f"{r['dataset']} sweep {r['timing']['sweep_total_s']:.1f} s (compile {r['timing']['compile_s']:.1f} s), "
        f"magnitude+fine-tune {r['timing']['magnitude_finetune_s']:.1f} s" for r in all_results), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    for n in names:
        if n not in NAMED:
            raise SystemExit(f"--datasets: {n!r} is invalid: allowed {', '.join(NAMED)}")
    if 0.0 not in args.lams:
        args.lams = [0.0] + args.lams
    out = []
    for n in names:
        r = compare_one(n, args)
        o = r["rows"]
        print(f"{n}: dense {_ci(o['dense']['test'], 100)}, ours(λ={o['ours']['lam']:g}) {_ci(o['ours']['test'], 100)} "
              f"with {o['ours']['active_edges']['mean']:.0f}/{r['total_edges']} edges, magnitude+ft "
              f"{_ci(o['magnitude_finetuned']['test'], 100)}  [{r['timing']['sweep_total_s']:.1f} s]", flush=True)
        out.append(r)
    io.write_json(args.out / "results.json", {"args": vars(args) | {"out": str(args.out)}, "results": out,
                                               "provenance": io.provenance(["-m", "experiments.compare_tabular", *argv])})
    md = markdown(out, args, argv)
    with io.atomic_path(args.out / "results.md") as tmp:
        tmp.write_text(md)
    print(md)
    return out


if __name__ == "__main__":
    main()
