"""Real data: structure-aware backprop against the tools users pick instead, 5-fold CV, one budget.

    python -m experiments.compare_real                 # every data set, 5 folds (docs/real)
    python -m experiments.compare_real --quick         # 2 data sets, 2 folds, few epochs

Splits: stratified 5-fold CV (plain K-fold for regression, seed `--split-seed`): each fold is the
test set once; of the other four fifths a stratified quarter is the validation split (60/20/20),
and inputs (and regression targets) are standardised with the training split's statistics.
Every method sees the same three splits and chooses its knob on the same validation split by the
same rule (`baselines.choose`: the sparsest candidate within `--tol` of the best validation
metric; for the seeded methods the mean over seeds). Neural nets: `n_in, *--hidden, n_out`, ReLU,
full-batch Adam at `--lr`, `--epochs` epochs for every training run (each fine-tune and each IMP
round included), `--seeds` initialisations per fold.

Methods: dense (λ = 0); ours (the pruned net at the chosen λ of `--lams`); ours with skip and bias
edges (`--skip --bias`); one-shot magnitude pruning of the dense net to ours' per-layer edge counts,
then fine-tuned; iterative magnitude pruning with rewinding (the lottery-ticket procedure, to the
same counts in `--imp-rounds` rounds); L1 logistic regression / Lasso (C / alpha); HistGradient-
Boosting (max_leaf_nodes); LassoNet (its λ path) when `lassonet` is installed.

Per data set and method: test metric (mean over folds of the per-fold mean over seeds; 95 %
interval over the folds, `stats.describe` within the metric's range), weights kept (edges with
|w| >= ε; non-zero coefficients; tree nodes), input features used, wall time per fold (training
and selection, compile included). Writes `<out>/results.json`, `<out>/results.md` and
`<out>/pareto_<data set>.png` (test metric against weights kept, log x), atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from sbp_jax import baselines, datasets, io, stats, sweep
from sbp_jax.config import TrainConfig
from sbp_jax.finetune import initial_edges
from sbp_jax.options import grid_values
from sbp_jax.results import evaluate_stacked
from sbp_jax.sources import headline, load_source
from sbp_jax.structure import selected_features_per_run

# name -> (source, its load parameters): the larger set is MNIST-1D at 10,000 samples (no larger
# public set is loadable offline here: scikit-learn's fetch_* sets need a download).
DATASETS = {"breast_cancer": ("breast_cancer", {}), "wine": ("wine", {}), "digits": ("digits", {}),
            "diabetes": ("diabetes", {}), "mnist1d": ("mnist1d", {}),
            "mnist1d_10k": ("mnist1d", {"n_samples": 10_000})}
METHODS = ("dense", "ours", "ours_skip_bias", "magnitude", "imp_rewind", "l1_linear", "hgb", "lassonet")
LABELS = {"dense": "dense (λ = 0)", "ours": "ours (λ on validation)", "ours_skip_bias": "ours + skip + bias",
          "magnitude": "one-shot magnitude + fine-tune", "imp_rewind": "IMP + rewinding (lottery ticket)",
          "l1_linear": "L1 logistic / Lasso", "hgb": "HistGradientBoosting", "lassonet": "LassoNet"}
QUICK = dict(datasets="breast_cancer,diabetes", n_folds_run=2, seeds=1, epochs=100, lams=[1e-3, 1e-2],
             imp_rounds=2, l1_grid="logspace:-2:1:3", lasso_grid="logspace:-3:-1:3", hgb_leaves="4,8", hgb_iter=20, lassonet=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.compare_real", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    p.add_argument("--folds", type=int, default=5, help="K of the K-fold split")
    p.add_argument("--n-folds-run", type=int, default=None, help="run only the first N folds (default: all)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=3, help="initialisations per fold (neural methods)")
    p.add_argument("--lams", type=grid_values, default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], help="λ grid (> 0)")
    p.add_argument("--hidden", default="32", help="hidden widths")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--eps", type=float, default=1e-2)
    p.add_argument("--tol", type=float, default=0.005, help="selection tolerance (metric units)")
    p.add_argument("--imp-rounds", type=int, default=4)
    p.add_argument("--rewind-epochs", type=int, default=None, help="IMP rewind point (default: epochs/20)")
    p.add_argument("--l1-grid", default="logspace:-3:2:11", help="C grid of the L1 logistic regression")
    p.add_argument("--lasso-grid", default="logspace:-4:0:9", help="alpha grid of the Lasso (standardised target)")
    p.add_argument("--hgb-leaves", default="4,8,16,31")
    p.add_argument("--hgb-iter", type=int, default=100, help="boosting iterations (scikit-learn's default)")
    p.add_argument("--lassonet", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--threads", type=int, default=1, help="threads of scikit-learn's OpenMP / BLAS and of torch "
                   "(1: on a shared 2-core machine more threads made HistGradientBoosting 18x slower)")
    p.add_argument("--out", type=Path, default=Path("docs/real"))
    p.add_argument("--no-plots", action="store_true")
    return p


def fold_dataset(full: datasets.Dataset, rest, test, seed: int) -> datasets.Dataset:
    """Fold `test` of `full` (all samples in its training split) as a `Dataset`: `rest` split 75/25 into
    train / validation by `datasets.from_arrays` (stratified; standardised on train), `test` standardised alike."""
    x, y = full.x_train, full.y_train
    y = y if full.kind == "multiclass" else y[:, 0]
    ds = datasets.from_arrays(x[rest], y[rest], name=full.name, feature_names=full.feature_names,
                              target_name=full.target_name, task=full.kind, val_frac=0.25, test_frac=0.0, seed=seed)
    xt = ((x[test] - ds.x_mean) / ds.x_std).astype(np.float32)
    yt = {"regression": lambda v: ((v - ds.y_mean) / ds.y_std).astype(np.float32)[:, None],
          "binary": lambda v: v.astype(np.float32)[:, None], "multiclass": lambda v: v.astype(np.int32)}[full.kind](y[test])
    return dataclasses.replace(ds, x_test=xt, y_test=yt)


def _features(edges, idx, eps, ds, bias) -> np.ndarray:
    chosen = selected_features_per_run(tuple(np.asarray(w)[idx] for w in edges), eps, ds.feature_names, bias)
    return np.array([len(s) for s in chosen])


def _timed(f, *a, **k):
    t0 = time.perf_counter()
    out = f(*a, **k)
    jax.block_until_ready(jax.tree.leaves(out))
    return out, time.perf_counter() - t0


def _row(test, kept, features, wall, param=None, **extra) -> dict:
    return {"test": float(np.mean(test)), "kept": float(np.mean(kept)), "features": float(np.mean(features)),
            "wall_s": float(wall), "param": param, **extra}


def _ours(cfg: TrainConfig, ds, args, chunk: int, metric: str):
    """The λ sweep: the chosen λ's runs, the per-λ curve and the row."""
    grid = sweep.make_grid(cfg, lams=args.lams, seeds=args.seeds)
    timing: dict = {}
    out, wall = _timed(sweep.run_grid, cfg, ds, grid, chunk=chunk, timing=timing)
    active = np.asarray(out.structure.active_per_layer)
    val, test = np.asarray(out.pruned_val[metric]), np.asarray(out.pruned_test[metric])
    lam = np.asarray(grid.lam)
    per = [lam == np.float32(v) for v in args.lams]
    k = baselines.choose([val[s].mean() for s in per], [active[s].sum(1).mean() for s in per], args.tol)
    idx = np.flatnonzero(per[k])
    curve = {"param": list(args.lams), "kept": [float(active[s].sum(1).mean()) for s in per],
             "test": [float(test[s].mean()) for s in per]}
    feats = _features(out.result.edges, idx, cfg.eps, ds, cfg.bias)
    row = _row(test[idx], active[idx].sum(1), feats, wall, float(args.lams[k]), total=cfg.total_edges, curve=curve,
               compile_s=timing["compile_s"])
    return row, idx, out, active


def run_fold(ds, args, methods, log, progress=lambda s: None) -> dict:
    metric = headline(ds)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    cfg = TrainConfig(layers=(ds.n_in, *hidden, ds.n_out), loss=ds.loss, lr=args.lr, epochs=args.epochs,
                      eps=args.eps, history_every=0)
    chunk = -(-args.seeds // len(jax.devices()))  # one chunk program serves the dense runs and every λ
    rows: dict = {}
    timing: dict = {}
    dense, t_dense = _timed(sweep.run_grid, cfg, ds, sweep.make_grid(cfg, lams=[0.0], seeds=args.seeds), chunk=chunk,
                            timing=timing)
    dense_edges = tuple(np.asarray(w) for w in dense.result.edges)
    if "dense" in methods:
        rows["dense"] = _row(dense.test[metric], cfg.total_edges, _features(dense_edges, range(args.seeds), cfg.eps,
                                                                            ds, False), t_dense, 0.0, total=cfg.total_edges,
                             compile_s=timing["compile_s"])
    progress(f"dense {t_dense:.1f} s")
    row, idx, out, active = _ours(cfg, ds, args, chunk, metric)
    progress(f"ours {row['wall_s']:.1f} s")
    if "ours" in methods:
        rows["ours"] = row
    if "ours_skip_bias" in methods:
        rows["ours_skip_bias"] = _ours(cfg.replace(skip=True, bias=True), ds, args, chunk, metric)[0]
        progress(f"ours_skip_bias {rows['ours_skip_bias']['wall_s']:.1f} s")
    ks = np.asarray(out.structure.active_per_layer)[idx]  # ours' per-layer counts, seed by seed
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    train_kw = dict(loss=cfg.loss, hidden_activation=cfg.hidden_activation)
    pruned = {}
    if "magnitude" in methods:
        (e, m), t = _timed(baselines.one_shot_magnitude, dense_edges, ks, x, y, args.lr, epochs=args.epochs, **train_kw)
        pruned["magnitude"] = (e, m, t + t_dense, None)
        progress(f"magnitude {t:.1f} s")
    if "imp_rewind" in methods:
        rewind = args.epochs // 20 if args.rewind_epochs is None else args.rewind_epochs
        init = initial_edges(cfg, np.arange(args.seeds))
        (e, m), t = _timed(baselines.imp_rewind, dense_edges, init, ks, x, y, args.lr, rounds=args.imp_rounds,
                           rewind_epochs=rewind, epochs=args.epochs, **train_kw)
        pruned["imp_rewind"] = (e, m, t + t_dense, f"{args.imp_rounds} rounds, rewind to epoch {rewind}")
        progress(f"imp_rewind {t:.1f} s")
    for name, (e, m, t, param) in pruned.items():
        test = evaluate_stacked(e, ds.x_test, ds.y_test, cfg)[metric]
        kept = sum(np.asarray(a).reshape(args.seeds, -1).sum(1) for a in m)
        rows[name] = _row(test, kept, _features(e, range(args.seeds), cfg.eps, ds, False), t, param,
                          total=cfg.total_edges)
    l1_grid = grid_values(args.lasso_grid if ds.kind == "regression" else args.l1_grid)
    other = {"l1_linear": lambda: baselines.l1_linear(ds, l1_grid),
             "hgb": lambda: baselines.gradient_boosting(ds, grid_values(args.hgb_leaves), max_iter=args.hgb_iter),
             "lassonet": lambda: baselines.lassonet(ds, hidden=hidden, epochs=args.epochs, threads=args.threads)}
    for name, fit in other.items():
        if name not in methods or (name == "lassonet" and not args.lassonet):
            continue
        try:
            with threadpool_limits(args.threads):
                cands, t = _timed(fit)
        except ImportError as e:
            log(f"{name}: skipped ({e}; pip install lassonet)")
            continue
        progress(f"{name} {t:.1f} s")
        k = baselines.choose(cands.val, cands.kept, args.tol)
        curve = {"param": cands.param.tolist(), "kept": cands.kept.tolist(), "test": cands.test.tolist()}
        rows[name] = _row(cands.test[k], cands.kept[k], cands.features[k], t, float(cands.param[k]), curve=curve)
    return rows


def summarise(name: str, folds: list[dict], metric: str) -> dict:
    out = {}
    for m in METHODS:
        rs = [f[m] for f in folds if m in f]
        if not rs:
            continue
        out[m] = {"test": stats.describe([r["test"] for r in rs], **stats.bounds_of(metric)),
                  "kept": stats.describe([r["kept"] for r in rs], **stats.bounds_of("edges")),
                  "features": stats.describe([r["features"] for r in rs], **stats.bounds_of("edges")),
                  "wall_s": stats.describe([r["wall_s"] for r in rs]),
                  "compile_s": stats.describe([r.get("compile_s", np.nan) for r in rs]),
                  "params": [r["param"] for r in rs],
                  "total": rs[0].get("total")}
    return out


def _fmt(d: dict, scale: float = 100.0) -> str:
    if d["mean"] is None:
        return "–"
    lo, hi = d["ci95"]
    return f"{d['mean'] * scale:.2f} [{lo * scale:.2f}, {hi * scale:.2f}]"


def markdown(results: list[dict], args, argv: list[str], wall: float) -> str:
    lines = ["# Real data: ours against the tools users pick instead", "",
             "Command: `" + " ".join(["python -m experiments.compare_real", *argv]) + "`",
             "", f"Machine: {results[0]['machine']}; total wall time {wall / 60:.1f} min.", "",
             f"{args.folds}-fold CV (split seed {args.split_seed}; {args.n_folds_run or args.folds} folds run), "
             f"validation = a quarter of the other folds; {args.seeds} seeds per fold for the neural methods; hidden "
             f"{args.hidden}, ReLU, full-batch Adam lr {args.lr:g}, {args.epochs} epochs per training run, ε = {args.eps:g}; "
             f"λ grid {args.lams}; every knob chosen on validation: the sparsest candidate within {args.tol:g} of the "
             "best. Test metric: accuracy % or R² × 100, mean over folds [95 % interval over folds]. Kept: edges "
             "|w| ≥ ε (neural), non-zero coefficients (linear), tree nodes (boosting), non-zero weights (LassoNet). "
             "Wall time: training and selection per fold, XLA compilation included where it happened (in "
             "brackets for the sweeps; the dense sweep compiles the program ours reuses, and the magnitude and IMP "
             "times include the dense training they start from).", "",
             "| data set | method | test metric | kept (of all) | features used | chosen (per fold) | wall s / fold (compile) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        for m, s in r["summary"].items():
            total = f" of {s['total']}" if s.get("total") else ""
            params = " / ".join(f"{p:.3g}" if isinstance(p, float) else str(p or "–") for p in s["params"])
            if len(set(map(str, s["params"]))) == 1:
                params = params.split(" / ")[0]
            comp = f" ({s['compile_s']['mean']:.1f})" if s["compile_s"]["mean"] is not None else ""
            lines.append(f"| {r['dataset']} ({r['metric']}) | {LABELS[m]} | {_fmt(s['test'])} | {s['kept']['mean']:.0f}"
                         f"{total} | {s['features']['mean']:.1f} of {r['n_features']} | {params} | "
                         f"{s['wall_s']['mean']:.2f}{comp} |")
    lines += ["", "Skipped: " + ("; ".join(r for res in results for r in res["skipped"]) or "none"), ""]
    return "\n".join(lines)


def pareto_plot(r: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for i, (m, s) in enumerate(r["summary"].items()):
        curves = [f[m]["curve"] for f in r["folds"] if "curve" in f.get(m, {})]
        if curves and m in ("ours", "ours_skip_bias", "l1_linear") and len({len(c["kept"]) for c in curves}) == 1:
            ax.plot(np.mean([c["kept"] for c in curves], 0), 100 * np.mean([c["test"] for c in curves], 0), ":",
                    color=colors[m], lw=1)
        lo, hi = s["test"]["ci95"]
        y = 100 * s["test"]["mean"]
        x = max(s["kept"]["mean"], 1) * 1.04 ** (i - 3.5)  # a small offset: methods at equal counts stay apart
        ax.errorbar(x, y, yerr=[[y - 100 * lo], [100 * hi - y]], fmt="o", color=colors[m],
                    capsize=3, label=LABELS[m])
    ax.set_xscale("log")
    ax.set_xlabel("weights kept (edges, non-zero coefficients, tree nodes; log)")
    ax.set_ylabel(f"test {r['metric']} ({'%' if r['metric'] == 'accuracy' else '× 100'})")
    ax.set_title(f"{r['dataset']}: mean over {len(r['folds'])} folds, 95 % interval (dotted: the λ / C path)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def write(results: list[dict], args, argv: list[str], wall: float) -> str:
    """`results.json` and `results.md` (atomically); returns the markdown."""
    doc = {"args": vars(args) | {"out": str(args.out)}, "results": results, "wall_s": wall,
           "provenance": io.provenance(["-m", "experiments.compare_real", *argv])}
    io.write_json(args.out / "results.json", doc)
    md = markdown(results, args, argv, wall)
    with io.atomic_path(args.out / "results.md") as tmp:
        tmp.write_text(md)
    return md


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("--")}
        for k, v in QUICK.items():
            if k not in given:
                setattr(args, k, v)
    names = [n for n in args.datasets.split(",") if n]
    methods = [m for m in args.methods.split(",") if m]
    for flag, got, allowed in (("--datasets", names, DATASETS), ("--methods", methods, METHODS)):
        bad = [v for v in got if v not in allowed]
        if bad or not got:
            parser.error(f"{flag}={','.join(got)!r} is invalid: allowed a comma-separated list of {', '.join(allowed)}")
    if any(v <= 0 for v in args.lams):
        parser.error(f"--lams={args.lams} is invalid: allowed values > 0 (dense, λ = 0, is its own method)")
    log = lambda s: print(s, file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    machine = f"{len(jax.devices())} XLA {jax.default_backend()} devices, {io.provenance([])['platform']}"
    results = []
    for name in names:
        source, params = DATASETS[name]
        full = load_source(source, val_frac=0.0, test_frac=0.0, **params)
        y = full.y_train if full.kind == "multiclass" else full.y_train[:, 0]
        split = (KFold if full.kind == "regression" else StratifiedKFold)(args.folds, shuffle=True,
                                                                          random_state=args.split_seed)
        folds, skipped = [], []
        for f, (rest, test) in enumerate(split.split(full.x_train, y)):
            if args.n_folds_run is not None and f >= args.n_folds_run:
                break
            rows = run_fold(fold_dataset(full, rest, test, seed=args.split_seed + f), args, methods,
                            lambda s: skipped.append(s) if s not in skipped else None,
                            lambda s: log(f"  {name} fold {f}: {s}"))
            folds.append(rows)
            log(f"{name} fold {f}: " + ", ".join(f"{m} {100 * r['test']:.1f}/{r['kept']:.0f}" for m, r in rows.items()))
        metric = headline(full)
        for s in skipped:
            log(f"{name}: {s}")
        results.append({"dataset": name, "metric": metric, "n_features": full.n_in, "n_samples": len(full.x_train),
                        "summary": summarise(name, folds, metric), "folds": folds, "skipped": skipped,
                        "machine": machine})
        if not args.no_plots:
            io.save_figure(pareto_plot(results[-1]), args.out / f"pareto_{name}.png")
        md = write(results, args, argv, time.perf_counter() - t0)  # after every data set: a long run keeps its part
    print(md)
    return results


if __name__ == "__main__":
    main()
