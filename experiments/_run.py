"""Run a grid for a CLI: train (one compiled, chunked sweep), optionally
retrain the survivors, turn the runs into results (`sbp_jax.results`), write
`results.json`, `edges.npz` and the plots, and print the summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

from sbp_jax import chunks, distributed, finetune, io, options, path, results, stats, sweep
from sbp_jax.config import TrainConfig
from sbp_jax.datasets import Dataset
from sbp_jax.sources import Source, headline

from . import _cli


def _progress(enabled: bool):
    """(on_start, on_chunk, close) callbacks driving a tqdm bar in configs/s."""
    state = {}
    if not enabled:
        return None, None, lambda: None
    from tqdm import tqdm

    def on_start(done, total):
        state["bar"] = tqdm(total=total, initial=done, unit="cfg", desc="sweep", smoothing=0, file=sys.stderr)

    def on_chunk(done, total):
        state["bar"].update(done - state["bar"].n)

    return on_start, on_chunk, lambda: state["bar"].close() if "bar" in state else None


def retrain_metrics(out: chunks.RunOutputs, grid: sweep.Grid, cfg: TrainConfig, ds: Dataset, epochs: int, *,
                    rewind: bool) -> dict[str, np.ndarray]:
    """Retrain every run's survivors from its mask (one vmapped call; lr = the
    config's), and with `rewind` also from their initial values; metrics
    `retrained_<split>_<metric>` (and `rewound_*`) on train and test, `(C,)` each."""
    x, y = ds.x_train, ds.y_train
    kw = dict(epochs=epochs, loss=cfg.loss, hidden_activation=cfg.hidden_activation)
    edges = tuple(out.result.edges)
    eps = np.asarray(grid.eps, np.float32)
    variants = {"retrained": finetune.retrain_from_mask(edges, eps, x, y, cfg.lr, **kw)}
    if rewind:
        init = finetune.initial_edges(cfg, grid.seed)
        variants["rewound"] = finetune.rewind_and_retrain(edges, init, eps, x, y, cfg.lr, **kw)
    return {f"{name}_{split}_{k}": v for name, e in variants.items()
            for split, (xs, ys) in (("train", (x, y)), ("test", (ds.x_test, ds.y_test)))
            for k, v in results.evaluate_stacked(e, xs, ys, cfg).items()}


def _folder(args, name: str, folder: str | None) -> Path:
    """`--out`, by default runs/<folder or name>; created now (a folder that cannot be made is an error before training)."""
    return results.ensure_folder(args.out if args.out is not None else Path("runs") / (folder or name))


def _finish(name: str, args, argv, src: Source, ds: Dataset, params: dict, cfg: TrainConfig, out: chunks.RunOutputs,
            grid: sweep.Grid, timing: dict, out_dir: Path, *, extra=None, one_group: bool = False, extend=None,
            **sections) -> dict:
    """The runs into results (`sbp_jax.results`): records (with `extra` metrics), the summary
    (`one_group`: one group over runs with their own λ), the document with `sections`, then
    `extend(doc, out, cfg, out_dir)` if given (a CLI's own sections), written once with the plots."""
    main_proc = distributed.is_main()
    recs = results.records(out, grid, cfg, ds, extra)
    if main_proc:
        results.warn_diverged(recs)
    summary = results.summarise(recs, out.result.history, cfg.history_every, one_group=one_group)
    doc = results.document(name, cfg, ds, params, recs, summary, paper=src.paper, timing=timing, argv=argv, **sections)
    if extend is not None:
        extend(doc, out, cfg, out_dir)
    if main_proc:
        results.write(out_dir, doc, out, grid)
        if not args.no_plots:
            write_plots(name, cfg, ds, doc, out, out_dir)
    return doc


def execute(name: str, args, argv, src: Source, ds: Dataset, params: dict, cfg: TrainConfig, grid: sweep.Grid, *,
            checkpoints: bool = False, extend=None, folder: str | None = None) -> tuple[dict, chunks.RunOutputs, Path]:
    """Run `grid` on `ds`; write and return the results document.

    `checkpoints`: write each chunk under OUT/chunks (resumable with
    `args.resume`). `extend(doc, outputs, cfg, folder)`, if given, adds a CLI's own
    sections to the document before it is written. The output folder is `--out`, by
    default runs/<folder or name>. Returns `(document, outputs, out folder)`."""
    out_dir = _folder(args, name, folder)
    main_proc = distributed.is_main()
    if checkpoints and args.resume and main_proc and not (out_dir / "chunks" / "manifest.json").exists():
        print(f"note: --resume found no earlier sweep in {out_dir}/chunks; starting afresh", file=sys.stderr)
    on_start, on_chunk, close = _progress(checkpoints and main_proc and not args.no_progress)
    timing: dict = {}
    t0 = time.perf_counter()
    try:
        out = sweep.run_grid(cfg, ds, grid, chunk=getattr(args, "chunk", None), timing=timing,
                             checkpoint_dir=out_dir / "chunks" if checkpoints else None,
                             resume=bool(getattr(args, "resume", False)), on_start=on_start, on_chunk=on_chunk)
    finally:
        close()
    timing.update(total_s=time.perf_counter() - t0, n_configs=len(grid), devices=len(jax.devices()),
                  processes=jax.process_count(),
                  config_epochs_per_s=(timing["configs_run"] * cfg.epochs / timing["run_s"]) if timing["run_s"] > 0
                  else None)
    extra = None
    if args.retrain:
        t1 = time.perf_counter()
        extra = retrain_metrics(out, grid, cfg, ds, args.retrain, rewind=args.rewind)
        timing["retrain_s"] = time.perf_counter() - t1
    doc = _finish(name, args, argv, src, ds, params, cfg, out, grid, timing, out_dir, extra=extra, extend=extend)
    return doc, out, out_dir


def run_seeds(parser, argv, name, extend=None) -> dict:
    """A CLI that runs `--seeds` seeds of one config: parse `argv` with
    `parser`, load the data, build the config and grid, run, write, print.
    With `--lam auto` λ is chosen on the validation split first (`execute_auto`);
    with `--path` each seed is a trial of the condition search (`execute_path`).
    `name(ds)` names the task; `extend(ds, cfg)`, if given, returns the
    `execute` hook (or None). Returns the results document."""
    args = _cli.parse(parser, argv)
    src, ds, params = _cli.load_data(args)
    cfg = _cli.make_config(args, src, ds)
    hook = extend(ds, cfg) if extend is not None else None
    doc, _, folder, cfg = run_any(name(ds), args, argv, src, ds, params, cfg, extend=hook)
    print_runs(doc, cfg, folder)
    if "path" in doc:
        print_path(doc["path"])
    if "search" in doc:
        print_search(doc["search"])
    return doc


def run_any(name: str, args, argv, src: Source, ds: Dataset, params: dict, cfg: TrainConfig, *,
            folder: str | None = None, extend=None) -> tuple[dict, chunks.RunOutputs, Path, TrainConfig]:
    """`execute_path` (`--path`), `execute_auto` (`--lam auto`) or `execute` of the seeds' grid.
    Returns `(document, outputs, folder, the config with the λ used)`."""
    if args.path:
        return execute_path(name, args, argv, src, ds, params, cfg, folder=folder, extend=extend)
    if args.lam == options.AUTO:
        return execute_auto(name, args, argv, src, ds, params, cfg, folder=folder, extend=extend)
    return (*execute(name, args, argv, src, ds, params, cfg, _cli.make_grid(args, cfg), folder=folder, extend=extend),
            cfg)


def _path_timing(p, t0: float) -> dict:
    """A path run's timing record: every run of the path (`--restarts` paths per trial included) is a config."""
    n, steps, per_step = len(p.seeds), len(p.records.lam), p.settings["epochs_per_step"]
    timing = dict(p.timing, total_s=time.perf_counter() - t0, n_configs=n, devices=len(jax.devices()),
                  kernel=p.settings.get("kernel", "engine"), configs_run=n, path_steps=steps,
                  epochs_per_step=per_step)
    timing["config_epochs_per_s"] = (n * steps * per_step / timing["run_s"]) if timing.get("run_s") else None
    return timing


def execute_auto(name: str, args, argv, src: Source, ds: Dataset, params: dict, cfg: TrainConfig,
                 folder: str | None = None, extend=None) -> tuple[dict, chunks.RunOutputs, Path, TrainConfig]:
    """`--lam auto`: the λ path over the seeds (one compiled program), λ chosen by the 1-SE
    rule on the validation split (`sbp_jax.path.auto_lam`); the chosen nets become
    ordinary records. Also writes path.npz and path.png. Returns `(document, outputs,
    folder, the config with the chosen λ)`."""
    out_dir = _folder(args, name, folder)
    t0 = time.perf_counter()
    auto = path.auto_lam(cfg, ds, seeds=list(range(args.seed, args.seed + args.seeds)), **_cli.path_options(args))
    out, grid = path.run_outputs(auto, ds)
    cfg = cfg.replace(lam=auto.lam)
    p = auto.path
    info = {"rule": auto.choice.rule, "lam": auto.lam, "reason": auto.choice.reason, "metric": auto.metric,
            "best_validation": {"lam": float(auto.best.lam), "step": int(auto.best.step), "reason": auto.best.reason},
            "settings": p.settings, "lam_max": p.lam_max, "steps": path.step_table(p.records, auto.metric),
            "importances": auto.importances}
    doc = _finish(name, args, argv, src, ds, params, cfg, out, grid, _path_timing(p, t0), out_dir,
                  extend=extend, path=info)
    io.write_npz(out_dir / "path.npz", **path.npz_arrays(p, auto.metric))
    if not args.no_plots:
        io.save_figure(path.plot_path(auto, f"{name} {list(cfg.layers)}: λ path, {len(grid)} seed(s)"),
                       out_dir / "path.png")
    return doc, out, out_dir, cfg


def execute_path(name: str, args, argv, src: Source, ds: Dataset, params: dict, cfg: TrainConfig,
                 folder: str | None = None, extend=None) -> tuple[dict, chunks.RunOutputs, Path, TrainConfig]:
    """`--path`: per trial (`--seeds`), the sparsest net meeting `--condition` from
    `--restarts` λ paths, polished (`sbp_jax.path.search`); the chosen nets become
    ordinary records (one group, λ per run). On the paper's tasks also how often the
    chosen net is the minimal graph (`compare_variants.assess`, minima proven in the
    README). Returns `(document, outputs, folder, config)`."""
    from .compare_variants import assess, minimal_applies, minimal_structure

    text = args.condition or src.condition
    if text is None:
        raise ValueError(f"--condition is required with --path on {ds.name}: allowed METRIC>=X (accuracy, r2) or "
                         "METRIC<=X (mse, mae), e.g. --condition r2>=0.9")
    cond = path.parse_condition(text)
    out_dir = _folder(args, name, folder)
    k, trials = args.restarts, args.seeds
    t0 = time.perf_counter()
    s = path.search_sparsest(cfg, ds, cond, range(args.seed, args.seed + trials * k), restarts=k,
                             do_polish=not args.no_polish, retrain_epochs=args.path_retrain,
                             candidates=args.path_candidates, **_cli.path_options(args))
    out, grid = path.outputs_of(s.path, ds, s.chosen.weights, s.chosen.lam, runs=s.chosen.run)
    timing = _path_timing(s.path, t0) | {"search_s": s.seconds}
    edges = np.asarray(s.chosen.n_edges)[np.asarray(s.chosen.met)]
    info = {"method": "λ path, sparsest net meeting the condition after a retrain"
                      + ("" if args.no_polish else ", verified polish") + (f", best of {k} paths" if k > 1 else ""),
            "condition": str(cond), "trials": trials, "restarts": k, "polish": not args.no_polish,
            "retrain_epochs": args.path_retrain, "candidates": args.path_candidates, "settings": s.path.settings,
            "condition_met": stats.rate(s.chosen.met), "condition_met_per_path": stats.rate(s.per_run.met),
            "effective_edges_counts": {int(e): int(c) for e, c in zip(*np.unique(edges, return_counts=True))},
            "budget_per_trial": s.budget, "seconds": s.seconds,
            "seconds_per_100_trials": s.seconds["total"] * 100 / trials,
            "reasons": [s.per_run.reason] + ([s.chosen.reason] if k > 1 else [])}
    if minimal_applies(src.name, cfg):
        metric = headline(ds)
        per, per_path = (assess(w, cfg, ds, metric) for w in (s.chosen.weights, s.per_run.weights))
        info["minimal"] = {"edges": minimal_structure(cfg, per)[0], "found": stats.rate(per["found"]),
                           "per_path": stats.rate(per_path["found"]), "near": stats.rate(per["near"])}
    doc = _finish(name, args, argv, src, ds, params, cfg, out, grid, timing, out_dir, one_group=True, extend=extend,
                  search=info)
    return doc, out, out_dir, cfg


def _rate(r: dict) -> str:
    lo, hi = r["wilson95"]
    return f"{r['k']}/{r['n']} ({100 * r['rate']:.0f} %, 95 % Wilson [{100 * lo:.0f}, {100 * hi:.0f}])"


def print_search(info: dict) -> None:
    """What `--path` chose: the condition, how often it was met, the edge counts, the minimal-graph rate."""
    sec = info["seconds"]
    print(f"λ path search ({info['method']}): {info['trials']} trial(s) × {info['restarts']} path(s), condition "
          f"{info['condition']}; {sec['total']:.1f} s ({info['seconds_per_100_trials']:.1f} s per 100 trials: path "
          f"{sec['path']:.1f}, choose {sec['choose']:.1f}, polish {sec['polish']:.1f})")
    counts = ", ".join(f"{e} edges ×{c}" for e, c in info["effective_edges_counts"].items()) or "none"
    print(f"condition met: {_rate(info['condition_met'])}; effective edges of those: {counts}")
    m = info.get("minimal")
    if m:
        print(f"minimal graph ({m['edges']} effective edges, condition met): {_rate(m['found'])}; per path, without "
              f"restarts: {_rate(m['per_path'])}; at most {m['edges'] + 1} edges: {_rate(m['near'])}")


def print_path(info: dict, top: int = 12) -> None:
    """The λ the path chose and why, and the inputs ranked by the λ at which they leave it."""
    print(f"λ auto ({info['rule']} on validation {info['metric']}): λ = {info['lam']:.4g}; {info['reason']}")
    print(f"best validation: λ = {info['best_validation']['lam']:.4g}; {info['best_validation']['reason']}")
    imp = info["importances"]
    if imp:
        print("feature importances (λ at which the feature's last edge leaves the path, median over seeds; "
              "stability = fraction of seeds selecting it at the chosen λ):")
        for r in imp[:top]:
            stab = "–" if r["stability"] is None else f"{r['stability']:.2f}"
            print(f"  {r['rank']:>3}. {r['feature']:<24} exit λ {r['exit_lam_median']:.4g}  stability {stab}")
        if len(imp) > top:
            print(f"  ... {len(imp) - top} more in results.json")


def write_plots(name: str, cfg: TrainConfig, ds: Dataset, doc: dict, out: chunks.RunOutputs, folder: Path) -> None:
    """graph.png (the first run that did not diverge) and dynamics.png (with a
    history) for every run; with more than one λ also the sweep's curves,
    Pareto front and architectures."""
    from sbp_jax import plots  # matplotlib (0.3 s of imports) only in runs that draw, as sbp_jax.path.plot_path

    recs = doc["records"]
    ok = [i for i, r in enumerate(recs) if r["diverged_at_epoch"] is None]
    if not ok:
        return
    head = f"{name} {list(cfg.layers)}, {cfg.epochs} epochs"
    first = ok[0]
    edges0 = tuple(np.asarray(w)[first] for w in out.result.edges)
    io.save_figure(plots.graph(edges0, recs[first]["eps"], f"{name}, λ={recs[first]['lam']:g}, seed "
                               f"{recs[first]['seed']}", cfg.bias), folder / "graph.png")
    if cfg.history_every and np.asarray(out.result.history.loss).shape[1] > 1:
        hist = type(out.result.history)(*(np.asarray(h)[ok] for h in out.result.history))
        ph = doc["summary"][0].get("phases", {})
        marks = [(ph[k], k.replace("_epoch", "").replace("_", " ")) for k in
                 ("loss_90pct_drop_epoch", "last_structure_change_epoch") if ph.get(k) is not None]
        io.save_figure(plots.dynamics(hist, cfg.history_every, cfg.total_edges, f"{head}, {len(ok)} run(s)", marks),
                       folder / "dynamics.png")
    if len(doc["grid"]["lams"]) > 1 and "search" not in doc:  # a λ sweep (not λs chosen per run)
        metric = headline(ds)
        label = "R²" if metric == "r2" else metric
        good = [recs[i] for i in ok]
        lams = np.array([r["lam"] for r in good])
        edges = np.array([r["structure"]["active_edges"] for r in good])
        m = lambda k: np.array([r["metrics"][k] for r in good], np.float64)
        paper = doc["paper"]
        io.save_figure(plots.sweep_curves(lams, {f"test {label}": m(f"test_{metric}"),
                                                 f"pruned-net test {label}": m(f"pruned_test_{metric}")},
                                          edges, metric_label=f"test {label}", total_edges=cfg.total_edges,
                                          paper_lam=paper.get("lam"), title=head), folder / "sweep_lambda.png")
        point = (paper["active_edges"], paper[metric]) if metric in paper else None
        io.save_figure(plots.pareto(edges, m(f"pruned_test_{metric}"), lams, metric_label=f"pruned-net test {label}",
                                    total_edges=cfg.total_edges, paper_point=point,
                                    title=f"{head}: {label} vs sparsity, {len(good)} runs"), folder / "sweep_pareto.png")
        io.save_figure(plots.architectures([tuple(r["structure"]["compact_layers"]) for r in good], lams,
                                           title=f"{head}: compact architectures of {len(good)} runs"),
                       folder / "sweep_architectures.png")


def _fmt(v) -> str:
    return "–" if v is None else v if isinstance(v, str) else f"{v:.4g}"


def _ci(d: dict) -> str:
    return "–" if d["mean"] is None else f"{_fmt(d['mean'])} [{_fmt(d['ci95'][0])}, {_fmt(d['ci95'][1])}]"


def print_runs(doc: dict, cfg: TrainConfig, folder: Path) -> None:
    """The summary of a run over seeds (one group): every quantity with its
    interval, min and max, beside the paper's number where there is one."""
    g, paper, t = doc["summary"][0], doc["paper"], doc["timing"]
    n = g["n_runs"]
    print(f"\n{doc['task']}: layers {list(cfg.layers)}, {cfg.hidden_activation} hidden, {cfg.loss} loss, "
          f"λ={'per run (path)' if g['lam'] is None else format(g['lam'], 'g')}, lr={g['lr']:g}, ε={g['eps']:g}, "
          f"{cfg.epochs} epochs, init {cfg.init}, {n} seed(s)")
    print(f"{'quantity':<28}{'paper':>10}   {'ours: mean [95% interval]':<38}{'min':>10}{'max':>10}")
    rows = [(k, d, paper.get(k[len("train_"):]) if k.startswith("train_") else None) for k, d in g["metrics"].items()]
    rows += [("active_edges", g["active_edges"], paper.get("active_edges")), ("effective_edges", g["effective_edges"], None)]
    for k, d, pv in rows:
        print(f"{k:<28}{_fmt(pv):>10}   {_ci(d):<38}{_fmt(d['min']):>10}{_fmt(d['max']):>10}")
    print(f"{'total edges':<28}{_fmt(paper.get('total_edges_stated')):>10}   {cfg.total_edges}")
    if g["active_per_layer_mean"] is not None:
        print(f"{'active per layer (mean)':<28}{'':>10}   {[round(v, 2) for v in g['active_per_layer_mean']]}")
    top = ", ".join(f"{c['layers']}×{c['count']}" for c in g["compact_layers_counts"][:4])
    print(f"{'compact architectures':<28}{'':>10}   {top}")
    if g.get("phases"):
        print("phases (median epoch): " + ", ".join(f"{k.replace('_epoch', '')}={_fmt(v)}" for k, v in g["phases"].items()))
    _print_features(doc, g)
    for k, v in doc.get("analysis", {}).items():
        print(f"{k}: {v}")
    if g["n_diverged"]:
        print(f"diverged runs: {g['n_diverged']} of {n} (see warnings above)")
    _print_timing(t, n, cfg, folder)


def _print_features(doc: dict, g: dict) -> None:
    names = doc["data"]["feature_names"]
    counts = g["selected_features_counts"]
    n = g["n_runs"] - g["n_diverged"]
    if len(names) > 2:
        print(f"selected features ({len(counts)} of {len(names)} used by at least one of {n} run(s); runs using "
              "each): " + (", ".join(f"{f} ({c})" for f, c in counts.items()) or "none"))
        dropped = [f for f in names if f not in counts]
        if dropped:
            print(f"dropped by every run ({len(dropped)}): " + ", ".join(dropped))


def _print_timing(t: dict, n: int, cfg: TrainConfig, folder: Path) -> None:
    rate = t.get("config_epochs_per_s")
    work = (f"λ path: {t['path_steps']} steps × {t['epochs_per_step']} epochs × {n} run(s)" if "path_steps" in t
            else f"{n} run(s) × {cfg.epochs} epochs")
    print(f"compile {t['compile_s']:.2f} s, run {t['run_s']:.3f} s ({work} = {_fmt(rate)} config-epochs/s on "
          f"{t['devices']} device(s)), " + sweep.kernel_line(t))
    print(f"wrote {folder}/results.json, edges.npz")


def print_groups(doc: dict, cfg: TrainConfig, ds: Dataset, folder: Path) -> None:
    """The summary of a sweep: one line per (λ, lr, ε)."""
    metric = headline(ds)
    split = "val" if len(ds.x_val) else "test"
    key = f"{split}_{metric}"
    paper, t = doc["paper"], doc["timing"]
    ref = f" (paper: {paper[metric]} {metric} at {paper['active_edges']} edges, λ={paper['lam']:g})" if metric in paper else ""
    print(f"\n{doc['task']}: layers {list(cfg.layers)}, {cfg.epochs} epochs, {t['n_configs']} runs{ref}")
    print(f"{'λ':>10} {'lr':>8} {'ε':>7} {'runs':>5} {'div':>4}  {key + ' mean [95% int.]':<30}"
          f"{'pruned_' + key:<30}{'active edges':<26}most common compact arch")
    for g in doc["summary"]:
        top = g["compact_layers_counts"][0] if g["compact_layers_counts"] else None
        arch = f"{top['layers']}×{top['count']}" if top else "–"
        print(f"{g['lam']:>10.3g} {g['lr']:>8.3g} {g['eps']:>7.3g} {g['n_runs']:>5} {g['n_diverged']:>4}  "
              f"{_ci(g['metrics'][key]):<30}{_ci(g['metrics']['pruned_' + key]):<30}{_ci(g['active_edges']):<26}{arch}")
    _print_timing(t, t["n_configs"], cfg, folder)
