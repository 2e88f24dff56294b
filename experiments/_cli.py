"""What every experiment CLI shares: flags, running the seeds as one vmapped
sweep, the summary table, results.json / edges.npz / plots under --out."""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

from sbp_jax import io, plots, sweep
from sbp_jax.config import TrainConfig
from sbp_jax.metrics import metric_names
from sbp_jax.structure import selected_features, structure_dict


def _layers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers={text!r} is invalid: allowed comma-separated integers, e.g. 2,4,1")


def parser(prog: str, description: str, defaults: TrainConfig) -> argparse.ArgumentParser:
    """The shared flags, defaulting to `defaults` (the paper's settings for the task)."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--layers", type=_layers, default=defaults.layers, help="layer widths, e.g. 2,4,1")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="full-batch epochs")
    p.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    p.add_argument("--lam", type=float, default=defaults.lam, help="λ of the L1 penalty")
    p.add_argument("--eps", type=float, default=defaults.eps, help="activity threshold ε")
    p.add_argument("--activation", default=defaults.hidden_activation, help="hidden activation: relu, sigmoid, tanh, identity")
    p.add_argument("--init", default=defaults.init, help="initial weights: he_normal, uniform (PyTorch's default), glorot_uniform")
    p.add_argument("--history-every", type=int, default=defaults.history_every, help="record history every k epochs (0: none)")
    p.add_argument("--seed", type=int, default=0, help="first initialisation seed")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (seed, seed+1, ...), run as one vmapped call")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the generated data (shared by all runs)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/<task>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--penalty", default=defaults.penalty,
                   help="L1 penalty: subgradient (the paper), proximal (soft-threshold after Adam, "
                        "Adam-preconditioned), proximal_plain (threshold lr·λ)")
    p.add_argument("--layer-lams", type=_floats, default=defaults.layer_lams,
                   help="per-layer λ multipliers, one per layer, e.g. 1,0.1 (layer l uses λ·m_l)")
    p.add_argument("--lam-schedule", default=defaults.lam_schedule, help="constant or warmup_ramp")
    p.add_argument("--lam-warmup", type=int, default=defaults.lam_warmup, help="warmup_ramp: steps with λ=0")
    p.add_argument("--lam-ramp", type=int, default=defaults.lam_ramp, help="warmup_ramp: steps of the linear ramp to λ")
    p.add_argument("--target-active", type=float, default=defaults.target_active,
                   help="fraction of active edges a controller steers λ to (e.g. 0.3; replaces --lam): λ = the "
                        "(1 − target) quantile of |task gradient| times an integral correction")
    p.add_argument("--target-gain", type=float, default=defaults.target_gain,
                   help="controller integral gain: log λ's correction moves by gain·(active fraction − target) "
                        "per step (clipped to ±2)")
    p.add_argument("--bias", action="store_true", default=defaults.bias,
                   help="bias as an edge: a constant-1 node per non-output layer whose edges are penalised and pruned")
    p.add_argument("--bias-init", default=defaults.bias_init, help="initial bias edges: zeros or same (like the other edges)")
    p.add_argument("--skip", action="store_true", default=defaults.skip,
                   help="skip connections: every layer fed by all earlier layers (a layered DAG; the penalty "
                        "decides the depth)")
    p.add_argument("--dropout", type=float, default=defaults.dropout,
                   help="structural dropout: each edge dropped with this probability per training epoch")
    p.add_argument("--retrain", type=int, default=0, metavar="EPOCHS",
                   help="after training, fine-tune the surviving edges (|w| >= ε) without penalty for EPOCHS "
                        "epochs; adds retrained_* metrics (0: off)")
    p.add_argument("--rewind", action="store_true",
                   help="with --retrain: also the lottery-ticket variant (survivors rewound to their initial "
                        "values, then retrained); adds rewound_* metrics")
    return p


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed comma-separated numbers, e.g. 1,0.1")


def config_from_args(args, base: TrainConfig) -> TrainConfig:
    """`base` with the CLI's values; raises the config's clear errors."""
    return base.replace(layers=args.layers, epochs=args.epochs, lr=args.lr, lam=args.lam, eps=args.eps,
                        hidden_activation=args.activation, init=args.init, history_every=args.history_every,
                        **_penalty_options(args))


def _penalty_options(args) -> dict:
    """The penalty flags (absent on parsers that do not define them)."""
    names = ("penalty", "layer_lams", "lam_schedule", "lam_warmup", "lam_ramp", "target_active", "target_gain",
             "bias", "bias_init", "skip", "dropout")
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def _phases(history, k: int) -> dict:
    """When things happen, per run (median over runs reported): epochs at which
    the task loss has made 50 % / 90 % of its total drop, the first epoch with
    a pruned edge, and the last epoch at which the active-edge count changed."""
    if k == 0 or np.asarray(history.loss).shape[1] < 2:
        return {}
    ep = (np.arange(np.asarray(history.loss).shape[1]) + 1) * k - 1
    task = np.asarray(history.task_loss, np.float64)
    act = np.asarray(history.active_edges)
    drop = task[:, :1] - task
    total = drop[:, -1:]
    out = {}
    for frac in (0.5, 0.9):
        reached = np.where(total > 0, drop >= frac * total, True)
        out[f"loss_{int(frac * 100)}pct_drop_epoch"] = float(np.median(ep[np.argmax(reached, axis=1)]))
    pruned = act < act[:, :1]
    first = np.where(pruned.any(1), ep[np.argmax(pruned, axis=1)], np.nan)
    changes = np.diff(act, axis=1) != 0
    last = np.where(changes.any(1), ep[1:][changes.shape[1] - 1 - np.argmax(changes[:, ::-1], axis=1)], np.nan)
    out["first_prune_epoch"] = float(np.nanmedian(first)) if np.isfinite(first).any() else None
    out["last_structure_change_epoch"] = float(np.nanmedian(last)) if np.isfinite(last).any() else None
    return out


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:.4g}"


def run(task: str, cfg: TrainConfig, data, args, paper: dict, data_info: dict, argv=None,
        analyse=None, extra_splits: dict | None = None, feature_names=None) -> dict:
    """Run `args.seeds` seeds of `cfg` on `data` in one sweep; print, write, plot.

    `analyse`, if given, is called as `analyse(outputs)` with the sweep's
    stacked `RunOutputs` and returns a dict of task-specific findings, stored
    as `summary["analysis"]` and printed.
    `extra_splits`, if given, maps a split name (e.g. 'val') to `(x, y)`:
    each run's trained net is also evaluated there (metrics `<name>_<metric>`).
    `feature_names`, if given (`layers[0]` names), adds each run's
    `selected_features` (live inputs, see `structure.selected_features`) and
    `summary["selected_features_counts"]`.
    Returns the results dict written to `<out>/results.json`."""
    if args.seeds < 1:
        raise ValueError(f"--seeds={args.seeds} is invalid: allowed an integer >= 1")
    if args.seed < 0:
        raise ValueError(f"--seed={args.seed} is invalid: allowed an integer >= 0")
    retrain = getattr(args, "retrain", 0)
    if retrain < 0:
        raise ValueError(f"--retrain={retrain} is invalid: allowed an integer >= 0 (epochs; 0 = off)")
    if getattr(args, "rewind", False) and not retrain:
        raise ValueError("--rewind needs --retrain EPOCHS > 0: allowed --rewind only together with --retrain")
    out = args.out if args.out is not None else Path("runs") / task
    seeds = list(range(args.seed, args.seed + args.seeds))
    grid = sweep.make_grid(cfg, seeds=seeds)
    timing: dict = {}
    t0 = time.perf_counter()
    res = sweep.run_grid(cfg, data, grid, timing=timing)
    timing["total_s"] = time.perf_counter() - t0
    timing["config_epochs_per_s"] = len(grid) * cfg.epochs / timing["run_s"]

    names = metric_names(cfg.loss)
    diverged = np.asarray(res.result.diverged_at)
    extra = {split: _evaluate_stacked(res.result.edges, xy, cfg) for split, xy in (extra_splits or {}).items()
             if len(xy[0])}
    if retrain:
        t1 = time.perf_counter()
        extra.update(retrain_metrics(res, cfg, data, seeds, retrain, rewind=getattr(args, "rewind", False)))
        timing["retrain_s"] = time.perf_counter() - t1
    splits = {"train": res.train, "test": res.test, "pruned_test": res.pruned_test, **extra}
    runs = []
    for i, seed in enumerate(seeds):
        metrics = {f"{split}_{n}": float(np.asarray(vals[n])[i]) for split, vals in splits.items() for n in names}
        s = structure_dict(sweep.select(res.structure, i), cfg.layout)
        runs.append({"seed": seed, "metrics": metrics, "structure": s,
                     "diverged_at_epoch": int(diverged[i]) if diverged[i] >= 0 else None})
        if feature_names is not None:
            edges_i = tuple(np.asarray(w)[i] for w in res.result.edges)
            runs[-1]["selected_features"] = selected_features(edges_i, cfg.eps, feature_names, cfg.bias)
    for r in runs:
        if r["diverged_at_epoch"] is not None:
            print(f"WARNING: seed {r['seed']} (λ={cfg.lam:g}, lr={cfg.lr:g}) diverged at epoch "
                  f"{r['diverged_at_epoch']}: non-finite loss; its metrics are excluded from the summary",
                  file=sys.stderr)
    ok = [r for r in runs if r["diverged_at_epoch"] is None]
    summary = {k: io.describe([r["metrics"][k] for r in ok]) for k in runs[0]["metrics"]}
    for k in ("active_edges", "effective_edges"):
        summary[k] = io.describe([r["structure"][k] for r in ok])
    summary["active_per_layer_mean"] = np.mean([r["structure"]["active_per_layer"] for r in ok], axis=0).tolist() if ok else None
    archs = collections.Counter(tuple(r["structure"]["compact_layers"]) for r in ok)
    summary["compact_layers_counts"] = [{"layers": list(a), "count": c} for a, c in archs.most_common()]
    if feature_names is not None:
        counts = collections.Counter(f for r in ok for f in r["selected_features"])
        summary["selected_features_counts"] = {f: counts[f] for f in feature_names if counts[f]}
    summary["n_runs"] = len(runs)
    summary["n_diverged"] = len(runs) - len(ok)
    summary["phases"] = _phases(res.result.history, cfg.history_every)
    if analyse is not None:
        summary["analysis"] = analyse(res)

    results = {
        "task": task,
        "config": cfg.to_dict(),
        "data": data_info,
        "runs": runs,
        "summary": summary,
        "paper": paper,
        "provenance": io.provenance(argv),
        "timing": timing,
    }
    io.write_json(out / "results.json", results)
    io.write_npz(out / "edges.npz", seeds=np.asarray(seeds),
                 **{f"layer{l}": np.asarray(w) for l, w in enumerate(res.result.edges)})
    if not args.no_plots:
        ph = summary["phases"]
        marks = [(ph[k], k.replace("_epoch", "").replace("_", " ")) for k in
                 ("loss_90pct_drop_epoch", "last_structure_change_epoch") if ph.get(k) is not None]
        ok_idx = [i for i, r in enumerate(runs) if r["diverged_at_epoch"] is None]
        if cfg.history_every and ok_idx:
            hist = type(res.result.history)(*(np.asarray(h)[ok_idx] for h in res.result.history))
            io.save_figure(plots.dynamics(hist, cfg.history_every, cfg.total_edges,
                                          f"{task} {list(cfg.layers)}, λ={cfg.lam:g}, {len(ok_idx)} run(s)", marks),
                           out / "dynamics.png")
        first = ok_idx[0] if ok_idx else 0
        edges0 = tuple(np.asarray(w)[first] for w in res.result.edges)
        io.save_figure(plots.graph(edges0, cfg.eps, f"{task}, seed {seeds[first]}", cfg.bias), out / "graph.png")
    print_summary(task, cfg, results, out, plots=not args.no_plots)
    return results


def _evaluate_stacked(edges, xy, cfg: TrainConfig) -> dict:
    """Metrics of every run's net (edges with a leading run axis) on `(x, y)`."""
    import jax

    from sbp_jax.metrics import evaluate
    from sbp_jax.train import check_data

    x, y = check_data(cfg, *xy, name="x_extra")
    ev = jax.jit(jax.vmap(lambda e: evaluate(e, x, y, loss=cfg.loss, hidden_activation=cfg.hidden_activation)))
    return {k: np.asarray(v) for k, v in ev(tuple(edges)).items()}


def retrain_metrics(res, cfg: TrainConfig, data, seeds, epochs: int, *, rewind: bool) -> dict:
    """Retrain every run's survivors from its mask (one vmapped call), and with
    `rewind` also from their initial values; metrics on train and test, keyed
    'retrained_train', 'retrained_test' (and 'rewound_*')."""
    from sbp_jax import finetune
    from sbp_jax.train import check_data

    x, y = check_data(cfg, data[0], data[1])
    splits = {"train": (data[0], data[1]), "test": (data[2], data[3])}
    kw = dict(epochs=epochs, loss=cfg.loss, hidden_activation=cfg.hidden_activation)
    edges = tuple(res.result.edges)
    eps = np.asarray(cfg.eps, np.float32)
    variants = {"retrained": finetune.retrain_from_mask(edges, eps, x, y, cfg.lr, **kw)}
    if rewind:
        init = finetune.initial_edges(cfg, seeds)
        variants["rewound"] = finetune.rewind_and_retrain(edges, init, eps, x, y, cfg.lr, **kw)
    return {f"{name}_{split}": _evaluate_stacked(e, xy, cfg)
            for name, e in variants.items() for split, xy in splits.items()}


def print_summary(task: str, cfg: TrainConfig, results: dict, out: Path, plots: bool = True) -> None:
    s, paper, t = results["summary"], results["paper"], results["timing"]
    n = s["n_runs"]
    print(f"\n{task}: layers {list(cfg.layers)}, {cfg.hidden_activation} hidden, {cfg.loss} loss, "
          f"λ={cfg.lam:g}, lr={cfg.lr:g}, ε={cfg.eps:g}, {cfg.epochs} epochs, init {cfg.init}, {n} seed(s)")
    print(f"{'quantity':<26}{'paper':>10}   {'ours: mean [95% CI]':<36}{'min':>10}{'max':>10}")
    rows = [(k, paper.get(k.replace('train_', ''), None) if k.startswith("train_") else None) for k in s
            if isinstance(s[k], dict) and "mean" in s[k] and k not in ("active_edges", "effective_edges")]
    rows += [("active_edges", paper.get("active_edges")), ("effective_edges", None)]
    for k, pv in rows:
        d = s[k]
        ci = f"{_fmt(d['mean'])} [{_fmt(d['ci95'][0])}, {_fmt(d['ci95'][1])}]"
        print(f"{k:<26}{_fmt(pv):>10}   {ci:<36}{_fmt(d['min']):>10}{_fmt(d['max']):>10}")
    print(f"{'total edges':<26}{_fmt(paper.get('total_edges_stated')):>10}   {cfg.total_edges}")
    apl = s["active_per_layer_mean"]
    if apl is not None:
        print(f"{'active per layer (mean)':<26}{'':>10}   {[round(v, 2) for v in apl]}")
    top = ", ".join(f"{c['layers']}×{c['count']}" for c in s["compact_layers_counts"][:4])
    print(f"{'compact architectures':<26}{'':>10}   {top}")
    if s["phases"]:
        print("phases (median epoch): " + ", ".join(f"{k.replace('_epoch', '')}={_fmt(v)}" for k, v in s["phases"].items()))
    for k, v in s.get("analysis", {}).items():
        print(f"{k}: {v}")
    if s["n_diverged"]:
        print(f"diverged runs: {s['n_diverged']} of {n} (see warnings above)")
    print(f"compile {t['compile_s']:.2f} s, run {t['run_s']:.3f} s "
          f"({n} run(s) × {cfg.epochs} epochs = {t['config_epochs_per_s']:.3g} config-epochs/s), "
          + sweep.kernel_line(t))
    print(f"wrote {out}/results.json, edges.npz" + (", plots" if plots else ""))
