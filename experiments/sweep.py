"""λ × seed sweeps: `python -m experiments.sweep --task xor --lams logspace:-4:-1:13 --seeds 100`.

Every (λ, lr, ε, seed) of the grid is one run of the paper's method on the
task's data (the same data as `experiments.xor` / `experiments.addition`);
the whole grid is one compiled program run in chunks, sharded over all
devices (and over all processes with `--distributed`).
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

from sbp_jax import distributed, io, plots, sweep, tasks
from sbp_jax.metrics import metric_names

from . import _cli, addition, xor

TASKS = {
    # name: (defaults, paper numbers, headline metric, its label, data factory, data description)
    "xor": (xor.DEFAULTS, xor.PAPER, "accuracy", "accuracy",
            lambda seed: tasks.xor(seed), {"name": "xor", "copies": 25, "noise": 0.1}),
    "addition": (addition.DEFAULTS, addition.PAPER, "r2", "R²",
                 lambda seed: tasks.addition(seed), {"name": "addition", "distribution": "a, b ~ U[0, 1] iid",
                                                     "n_train": 200, "n_test": 1000}),
}
PAPER_LAM = 1e-2
GRID_FORMS = "a comma-separated list of numbers (e.g. 0,1e-3,1e-2) or logspace:START:STOP:NUM (NUM values 10^START..10^STOP, NUM >= 1)"


def grid_values(text: str, flag: str, *, positive: bool = False) -> list[float]:
    """Parse a grid flag: '0,1e-3,1e-2' or 'logspace:-4:-1:13' (13 values 10^-4..10^-1).

    Raises `argparse.ArgumentTypeError` naming `flag`, the value and the allowed forms."""
    allowed = ("finite numbers > 0" if positive else "finite numbers >= 0")

    def bad(why: str):
        return argparse.ArgumentTypeError(f"{flag}={text!r} is invalid ({why}): allowed {GRID_FORMS}, of {allowed}")

    text = text.strip()
    if text.startswith("logspace:"):
        parts = text.split(":")[1:]
        if len(parts) != 3:
            raise bad("logspace needs exactly START:STOP:NUM")
        try:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise bad("START and STOP must be numbers, NUM an integer") from None
        if not (math.isfinite(start) and math.isfinite(stop)) or num < 1:
            raise bad("START and STOP must be finite and NUM >= 1")
        values = [float(v) for v in np.logspace(start, stop, num)]
    else:
        items = [t.strip() for t in text.split(",")] if text else []
        if not items or any(t == "" for t in items):
            raise bad("empty list or empty entry")
        try:
            values = [float(t) for t in items]
        except ValueError:
            raise bad("not a number") from None
    for v in values:
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            raise bad(f"{v:g} is not one of the {allowed}")
    return values


def _grid_type(flag: str, positive: bool = False):
    return lambda text: grid_values(text, flag, positive=positive)


def _int_at_least(flag: str, minimum: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise argparse.ArgumentTypeError(f"{flag}={text!r} is invalid: allowed an integer >= {minimum}")
        return v
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.sweep", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Sweep λ × seeds (and optionally lr, ε) of structure-aware backprop on the paper's tasks "
                    "as one compiled, chunked, device-sharded program; writes results.json and plots.",
        epilog="Grid flags take " + GRID_FORMS + ". Task settings not given default to the task's "
               "(experiments.xor / experiments.addition, i.e. the paper's). On CPU the grid is sharded over one "
               "XLA host device per core (set by the experiments package unless XLA_FLAGS already sets "
               "--xla_force_host_platform_device_count); on GPUs over all visible GPUs.")
    p.add_argument("--task", required=True, choices=sorted(TASKS), help="which of the paper's tasks")
    p.add_argument("--lams", type=_grid_type("--lams"), default="logspace:-4:-1:13", help="λ values")
    p.add_argument("--lrs", type=_grid_type("--lrs", positive=True), default=None, help="Adam learning rates (default: the task's)")
    p.add_argument("--epss", type=_grid_type("--epss"), default=None, help="activity thresholds ε (default: the task's)")
    p.add_argument("--seeds", type=_int_at_least("--seeds", 1), default=10, help="initialisation seeds per (λ, lr, ε)")
    p.add_argument("--seed", type=_int_at_least("--seed", 0), default=0, help="first seed (seeds are seed, seed+1, ...)")
    p.add_argument("--epochs", type=_int_at_least("--epochs", 1), default=None, help="full-batch epochs (default: the task's)")
    p.add_argument("--layers", type=_cli._layers, default=None, help="layer widths, e.g. 2,4,1 (default: the task's)")
    p.add_argument("--activation", default=None, help="hidden activation (default: the task's)")
    p.add_argument("--init", default=None, help="initial weights scheme (default: the task's)")
    p.add_argument("--bias", action="store_true", help="bias as an edge (a constant-1 node per non-output layer)")
    p.add_argument("--skip", action="store_true", help="skip connections: every layer fed by all earlier layers")
    p.add_argument("--history-every", type=_int_at_least("--history-every", 0), default=None,
                   help="record the training history every k epochs; default: k = epochs (one record per run: "
                        "the final loss), 0 = none. History costs configs × epochs/k records of memory")
    p.add_argument("--data-seed", type=_int_at_least("--data-seed", 0), default=0, help="seed of the generated data")
    p.add_argument("--chunk", type=_int_at_least("--chunk", 1), default=None,
                   help=f"configs per device per chunk (default: balanced, at most {sweep.DEFAULT_CHUNK}); "
                        "memory is bounded by one chunk")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/sweep_<task>)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the finished chunks under OUT/chunks of an interrupted run of the same command")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("multi-host (jax.distributed)")
    g.add_argument("--distributed", action="store_true",
                   help="join a JAX cluster first; every process runs the same command, process 0 writes the results")
    g.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (default $JAX_COORDINATOR_ADDRESS or auto-detected)")
    g.add_argument("--num-processes", type=_int_at_least("--num-processes", 1), default=None,
                   help="processes in the cluster (default $JAX_NUM_PROCESSES or auto-detected)")
    g.add_argument("--process-id", type=_int_at_least("--process-id", 0), default=None,
                   help="this process's index (default $JAX_PROCESS_ID or auto-detected)")
    return p


def _progress(enabled: bool):
    """(on_start, on_chunk, close) callbacks driving a tqdm bar in configs/s."""
    state = {}
    if not enabled:
        return None, None, lambda: None
    from tqdm import tqdm

    def on_start(done, total):
        state["bar"] = tqdm(total=total, initial=done, unit="cfg", desc="sweep", smoothing=0, file=sys.stderr)

    def on_chunk(done, total):
        bar = state["bar"]
        bar.update(done - bar.n)

    return on_start, on_chunk, lambda: state["bar"].close() if "bar" in state else None


def build_records(res, grid, cfg, names) -> list[dict]:
    """One JSON record per config."""
    from sbp_jax.structure import structure_dict

    div = np.asarray(res.result.diverged_at)
    hist = res.result.history
    final_loss = np.asarray(hist.task_loss)[:, -1] if np.asarray(hist.task_loss).shape[1] else None
    metric = {f"{split}_{n}": np.asarray(getattr(res, split)[n]) for split in ("train", "test", "pruned_test")
              for n in names}
    records = []
    for i in range(len(grid)):
        s = structure_dict(sweep.select(res.structure, i), cfg.layout)
        r = {"lam": float(grid.lam[i]), "lr": float(grid.lr[i]), "eps": float(grid.eps[i]), "seed": int(grid.seed[i]),
             "metrics": {k: float(v[i]) for k, v in metric.items()},
             "active_edges": s["active_edges"], "total_edges": s["total_edges"],
             "effective_edges": s["effective_edges"], "active_per_layer": s["active_per_layer"],
             "compact_layers": s["compact_layers"],
             "diverged": bool(div[i] >= 0), "diverged_at_epoch": int(div[i]) if div[i] >= 0 else None}
        if final_loss is not None:
            r["final_task_loss"] = float(final_loss[i])
        records.append(r)
    return records


def summarise(records: list[dict]) -> list[dict]:
    """Per (λ, lr, ε): mean and 95 % CI of every metric and of the active
    edges over the runs that did not diverge, the number that diverged, and
    the compact architectures that occur."""
    groups = collections.defaultdict(list)
    for r in records:
        groups[(r["lam"], r["lr"], r["eps"])].append(r)
    out = []
    for (lam, lr, eps), rs in groups.items():
        ok = [r for r in rs if not r["diverged"]]
        archs = collections.Counter(tuple(r["compact_layers"]) for r in ok)
        out.append({
            "lam": lam, "lr": lr, "eps": eps, "n_runs": len(rs), "n_diverged": len(rs) - len(ok),
            "metrics": {k: io.describe([r["metrics"][k] for r in ok]) for k in rs[0]["metrics"]},
            "active_edges": io.describe([r["active_edges"] for r in ok]),
            "compact_layers_counts": [{"layers": list(a), "count": c} for a, c in archs.most_common()],
        })
    return out


def _fmt_ci(d: dict) -> str:
    if d["mean"] is None:
        return "–"
    return f"{d['mean']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"


def print_table(task: str, cfg, summary: list[dict], metric: str, paper: dict, timing: dict, out: Path) -> None:
    key = f"test_{metric}"
    print(f"\n{task}: layers {list(cfg.layers)}, {cfg.epochs} epochs, {timing['n_configs']} runs "
          f"(paper: {paper.get(metric)} {metric} at {paper.get('active_edges')} edges, λ={PAPER_LAM:g})")
    print(f"{'λ':>10} {'lr':>8} {'ε':>7} {'runs':>5} {'div':>4}  {key + ' mean [95% CI]':<30}"
          f"{'active edges mean [95% CI]':<30}most common compact arch")
    for s in summary:
        top = s["compact_layers_counts"][0] if s["compact_layers_counts"] else None
        arch = f"{top['layers']}×{top['count']}" if top else "–"
        print(f"{s['lam']:>10.3g} {s['lr']:>8.3g} {s['eps']:>7.3g} {s['n_runs']:>5} {s['n_diverged']:>4}  "
              f"{_fmt_ci(s['metrics'][key]):<30}{_fmt_ci(s['active_edges']):<30}{arch}")
    print(f"compile {timing['compile_s']:.2f} s, run {timing['run_s']:.2f} s "
          f"({timing['configs_run']} runs × {cfg.epochs} epochs = {timing['config_epochs_per_s']:.3g} "
          f"config-epochs/s on {timing['devices']} device(s)), total {timing['total_s']:.2f} s, "
          + sweep.kernel_line(timing))
    print(f"wrote {out}/results.json")


def write_plots(task, cfg, records, metric, label, paper, out: Path) -> None:
    ok = [r for r in records if not r["diverged"]]
    if not ok:
        return
    lams = np.array([r["lam"] for r in ok])
    edges = np.array([r["active_edges"] for r in ok])
    m = lambda k: np.array([r["metrics"][k] for r in ok], np.float64)
    head = f"{task} {list(cfg.layers)}, {cfg.epochs} epochs"
    io.save_figure(plots.sweep_curves(lams, {f"test {label}": m(f"test_{metric}"),
                                             f"pruned-net test {label}": m(f"pruned_test_{metric}")},
                                      edges, metric_label=f"test {label}", total_edges=cfg.total_edges,
                                      paper_lam=PAPER_LAM, title=head), out / "sweep_lambda.png")
    io.save_figure(plots.pareto(edges, m(f"pruned_test_{metric}"), lams, metric_label=f"pruned-net test {label}",
                                total_edges=cfg.total_edges, paper_point=(paper["active_edges"], paper[metric]),
                                title=f"{head}: {label} vs sparsity, {len(ok)} runs"), out / "sweep_pareto.png")
    io.save_figure(plots.architectures([tuple(r["compact_layers"]) for r in ok], lams,
                                       title=f"{head}: compact architectures of {len(ok)} runs"),
                   out / "sweep_architectures.png")


def main(argv: list[str] | None = None) -> dict | None:
    p = parser()
    args = p.parse_args(argv)
    if args.distributed:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    main_proc = distributed.is_main()
    base, paper, metric, label, make_data, info = TASKS[args.task]
    changes = {k: v for k, v in (("epochs", args.epochs), ("layers", args.layers), ("hidden_activation", args.activation),
                                 ("init", args.init)) if v is not None}
    changes.update({k: True for k in ("bias", "skip") if getattr(args, k)})
    try:
        cfg = base.replace(**changes)
        cfg = cfg.replace(history_every=cfg.epochs if args.history_every is None else args.history_every)
        if cfg.history_every > cfg.epochs:
            raise ValueError(f"--history-every={cfg.history_every} is invalid: allowed 0..epochs ({cfg.epochs})")
        grid = sweep.make_grid(cfg, lams=args.lams, lrs=args.lrs, epss=args.epss,
                               seeds=range(args.seed, args.seed + args.seeds))
    except (ValueError, TypeError) as e:
        p.error(str(e))
    data = make_data(args.data_seed)
    out = args.out if args.out is not None else Path("runs") / f"sweep_{args.task}"
    if args.resume and not (out / "chunks" / "manifest.json").exists() and main_proc:
        print(f"note: --resume found no earlier sweep in {out}/chunks; starting afresh", file=sys.stderr)

    on_start, on_chunk, close = _progress(main_proc and not args.no_progress)
    timing: dict = {}
    t0 = time.perf_counter()
    try:
        res = sweep.run_grid(cfg, data, grid, chunk=args.chunk, timing=timing, checkpoint_dir=out / "chunks",
                             resume=args.resume, on_start=on_start, on_chunk=on_chunk)
    except ValueError as e:
        close()
        if "--resume refused" in str(e):
            p.error(str(e))
        raise
    close()
    timing.update(total_s=time.perf_counter() - t0, n_configs=len(grid), devices=len(jax.devices()),
                  processes=jax.process_count(),
                  config_epochs_per_s=(timing["configs_run"] * cfg.epochs / timing["run_s"]) if timing["run_s"] > 0 else None)
    if not main_proc:
        return None

    records = build_records(res, grid, cfg, metric_names(cfg.loss))
    for r in records:
        if r["diverged"]:
            print(f"WARNING: λ={r['lam']:g}, lr={r['lr']:g}, ε={r['eps']:g}, seed {r['seed']} diverged at epoch "
                  f"{r['diverged_at_epoch']} (non-finite loss); excluded from the summary (counted in n_diverged)",
                  file=sys.stderr)
    summary = summarise(records)
    results = {
        "task": args.task,
        "config": cfg.to_dict() | {"lam": None, "lr": None, "eps": None},
        "grid": {"lams": sorted(set(r["lam"] for r in records)), "lrs": sorted(set(r["lr"] for r in records)),
                 "epss": sorted(set(r["eps"] for r in records)), "seeds": [args.seed, args.seed + args.seeds - 1]},
        "data": info | {"data_seed": args.data_seed},
        "records": records,
        "summary": summary,
        "paper": paper | {"lam": PAPER_LAM},
        "provenance": io.provenance(argv),
        "timing": timing,
    }
    io.write_json(out / "results.json", results)
    if not args.no_plots:
        write_plots(args.task, cfg, records, metric, label, paper, out)
    print_table(args.task, cfg, summary, metric, paper, timing, out)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
