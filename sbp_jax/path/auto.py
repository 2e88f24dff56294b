"""`--lam auto`: choose λ on a validation split with the 1-SE rule, and the path's plot.

    auto = auto_lam(cfg, ds, seeds=5)        # ds needs a validation split
    auto.lam, auto.choice.reason             # the chosen λ and why
    out, grid = run_outputs(auto, ds)        # ordinary sweep outputs of the chosen nets
    recs = results.records(out, grid, cfg, ds)
    io.save_figure(plot_path(auto), "path.png")

The chosen nets are the path's own nets at the chosen step (trained through
the path, warm-started, `epochs_per_step` epochs at that λ): what the
validation split judged. `run_outputs` scores them exactly as `sweep.run_grid`
scores a run (the same `chunks.evaluate_one`), so the results layer builds
records, summaries and files from them unchanged.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..chunks import RunOutputs, evaluate_one
from ..config import TrainConfig, check_choice
from ..loop import History, Hyper, TrainResult
from ..metrics import metric_names
from ..network import forward
from ..structure import masked
from ..sources import headline
from ..sweep import Grid, split_arrays
from .importance import importances
from .rules import Choice, best_validation, higher_is_better, one_se, step_stats
from .run import Path, run_path

RULES = ("1se", "best_validation")
SE_SOURCES = ("both", "seeds", "samples")


class AutoLam(NamedTuple):
    """The outcome of `auto_lam`."""

    lam: float  # the chosen λ
    choice: Choice  # the rule's choice (step, λ, mean effective edges, mean validation metric, reason)
    best: Choice  # the best-validation step, for comparison
    edges: tuple  # per layer (C, n_out, n_in): each run's edges at the chosen step (unpruned, as trained)
    path: Path  # the whole path (records per step and run)
    importances: list  # `importance.importances` at the chosen step, most important first
    metric: str  # the validation metric the rule judged
    se: float  # the standard error the 1-SE rule used at the best step (0 for best_validation)


@functools.lru_cache(maxsize=None)
def _sample_se_program(static: TrainConfig, metric: str):
    """Jitted `(edges (C, ...), x, y, eps) -> (C,)` per-run standard errors of `metric` over the samples."""

    def one(e, x, y, eps):
        z = forward(masked(e, eps), x, static.hidden_activation)
        if metric == "accuracy":
            term = (jnp.argmax(z, -1) == y) if static.loss == "cross_entropy" else jnp.mean((z > 0) == (y > 0.5), -1)
        else:
            err = z - y
            term = jnp.mean(jnp.square(err) if metric in ("mse", "r2") else jnp.abs(err), axis=-1)
        se = jnp.std(term.astype(jnp.float32), ddof=1) / jnp.sqrt(jnp.float32(x.shape[0]))
        if metric == "r2":
            se = se / jnp.mean(jnp.square(y - jnp.mean(y, axis=0, keepdims=True)))
        return se

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))


def sample_se(config: TrainConfig, data, edges, metric: str, split: str = "val") -> float:
    """The standard error of `metric` over the samples of `split`, root-mean-square over runs.

    `edges`: the runs' nets, per layer `(C, n_out, n_in)` (pruned at ε here). Per
    run, the metric is a mean of per-sample terms (accuracy: correct or not; MSE:
    squared error; MAE: absolute error; R² = 1 − MSE/Var(y), so its SE is MSE's
    over Var(y)) and its SE is their standard deviation (ddof 1) over √n."""
    check_choice("metric", metric, metric_names(config.loss))
    x, y = (jnp.asarray(a) for a in data.split(split))
    if x.shape[0] < 2:
        raise ValueError(f"split={split!r} is invalid for a sample SE: allowed a split with >= 2 samples "
                         f"(has {x.shape[0]})")
    per_run = _sample_se_program(config.static_part(), metric)(tuple(jnp.asarray(w) for w in edges), x, y,
                                                               jnp.float32(config.eps))
    return float(np.sqrt(np.mean(np.square(np.asarray(per_run)))))


def auto_lam(config: TrainConfig, data, seeds: Sequence[int] | int = 5, *, metric: str | None = None,
             rule: str = "1se", se: str = "both", **path_kw) -> AutoLam:
    """Run the λ path on `data` and choose λ on its validation split.

    Args:
      config: the method's settings (λ and epochs unused; see `run.run_path`).
      data: a `Dataset` with a non-empty validation split.
      seeds: runs per step (seeds or a count): the standard error of the 1-SE rule is over them.
      metric: the validation metric (default: R² for regression, accuracy otherwise).
      rule: '1se' (the sparsest net within one SE of the best mean) or 'best_validation'.
      se: the 1-SE rule's standard error: 'seeds' (over the runs only, 0 when they all
        score the same), 'samples' (over the validation samples, `sample_se`), or 'both'
        (√(seeds² + samples²), the default: the runs share one validation split).
      **path_kw: `run_path`'s options (n_steps, ratio, epochs_per_step, warmup, adam, ...).
    Returns:
      an `AutoLam`.
    """
    check_choice("rule", rule, RULES)
    check_choice("se", se, SE_SOURCES)
    if data.x_val.shape[0] == 0:
        raise ValueError("val_frac=0 is invalid for λ auto: allowed a data set with a validation split "
                         "(--val-frac > 0, or --val-copies / --n-val on the paper's tasks)")
    metric = headline(data) if metric is None else metric
    path = run_path(config, data, seeds, **path_kw)
    best = best_validation(path.records, metric)
    total = 0.0
    if rule == "1se":
        noise = 0.0 if se == "seeds" else sample_se(config, data, tuple(w[best.step] for w in path.records.edges), metric)
        runs = float(step_stats(path.records, metric)[1][best.step]) if se != "samples" else 0.0
        choice = one_se(path.records, metric, sample_se=noise, runs_se=se != "samples")
        total = float(np.hypot(runs, noise))
    else:
        choice = best
    edges = tuple(w[choice.step] for w in path.records.edges)
    imp = importances(path.records, data.feature_names, choice.step)
    return AutoLam(choice.lam, choice, best, edges, path, imp, metric, total)


@functools.lru_cache(maxsize=None)
def _evaluate(static: TrainConfig):
    return jax.jit(jax.vmap(functools.partial(evaluate_one, static), in_axes=(None, 0, 0)))


def outputs_of(path: Path, data, weights, lam, runs=None, diverged=None) -> tuple[RunOutputs, Grid]:
    """Any nets of a path as `sweep.run_grid` would return them (metrics on every split, the
    structure; no history), with their `Grid`: the `run_outputs` of a per-run `Choice`
    (`weights`, `lam`; for `best_of_k` pass `runs=choice.run`, the path runs they came from).

    Args:
      path: the path the nets come from (its config and seeds).
      weights: per layer `(N, n_out, n_in)`.
      lam: λ per net `(N,)` or one value.
      runs: `(N,)` indices into `path.seeds` (default: all runs, N = C).
      diverged: `(N,)` bool, nets whose training loss went non-finite (default: none).
    """
    cfg = path.config
    seeds = np.asarray(path.seeds if runs is None else path.seeds[np.asarray(runs)], np.int64)
    N = len(seeds)
    grid = Grid(np.broadcast_to(np.asarray(lam, np.float32), (N,)).copy(), np.full(N, cfg.lr, np.float32),
                np.full(N, cfg.eps, np.float32), seeds)
    arrays = tuple(jnp.asarray(a) for a in split_arrays(cfg, data))
    bad = np.zeros(N, bool) if diverged is None else np.asarray(diverged, bool)
    res = TrainResult(tuple(jnp.asarray(w) for w in weights), History.empty(N),
                      jnp.asarray(np.where(bad, 0, -1), jnp.int32), None)
    hyper = Hyper(*(jnp.asarray(a) for a in (grid.lam, grid.lr, grid.eps)))
    return jax.tree.map(np.asarray, _evaluate(cfg.static_part())(arrays, res, hyper)), grid


def run_outputs(auto: AutoLam, data) -> tuple[RunOutputs, Grid]:
    """The chosen nets of `auto_lam` as `sweep.run_grid` would return them, with their `Grid`
    (λ, lr, ε, seed per run); a run whose loss went non-finite is marked diverged."""
    return outputs_of(auto.path, data, auto.edges, auto.lam, diverged=auto.path.records.diverged[auto.choice.step])


def step_table(records, metric: str) -> list[dict]:
    """A JSON-ready row per step: λ, the validation metric's mean and SE over runs (when the
    path has a validation split), the pruned net's mean training metric, mean active and
    effective edges, and how many runs select each input (a list over inputs)."""
    has_val = bool(records.val)
    mean, se, _ = step_stats(records, metric) if has_val else (None, None, None)
    rows = []
    for k, lam in enumerate(np.asarray(records.lam)):
        row = {"step": k, "lam": float(lam), f"train_{metric}_mean": float(np.mean(records.train[metric][k])),
               "active_edges_mean": float(np.mean(records.active[k])),
               "effective_edges_mean": float(np.mean(records.effective[k])),
               "inputs_selected_by": np.sum(records.features[k], axis=0).tolist()}
        if has_val:
            row |= {f"val_{metric}_mean": float(mean[k]), f"val_{metric}_se": float(se[k])}
        rows.append(row)
    return rows


def npz_arrays(path: Path, metric: str) -> dict[str, np.ndarray]:
    """What `path.npz` holds (`io.write_npz(file, **npz_arrays(path, metric))`): λ `(S,)`, seeds
    `(C,)`, active / effective edges and the metric on every split `(S, C)`, the selected
    inputs `(S, C, n_in)` and each layer's edges `layer{l}` `(S, C, n_out, n_in)`."""
    r = path.records
    out = {"lam": r.lam, "seed": path.seeds, "active": r.active, "effective": r.effective, "features": r.features,
           "diverged": r.diverged, **{f"layer{l}": w for l, w in enumerate(r.edges)}}
    out |= {f"{split}_{metric}": getattr(r, split)[metric] for split in ("train", "val", "test") if getattr(r, split)}
    return out


def plot_data(records, metric: str, choice: Choice | None = None, best: Choice | None = None,
              rule_se: float | None = None) -> dict:
    """What `plot_path` draws (steps with λ > 0): λ, the validation metric's mean and
    ±1 SE band over runs, active and effective edges (mean, 10–90 % band), the chosen λs
    and the 1-SE rule's line (the best mean minus `rule_se`, for higher-is-better metrics)."""
    mean, se, _ = step_stats(records, metric)
    keep = np.asarray(records.lam) > 0
    q = lambda a, p: np.percentile(np.asarray(a, np.float64), p, axis=1)[keep]
    return {"lam": np.asarray(records.lam)[keep], "metric": metric, "mean": mean[keep], "lo": (mean - se)[keep],
            "hi": (mean + se)[keep], "active_mean": np.mean(records.active, axis=1)[keep],
            "active_lo": q(records.active, 10), "active_hi": q(records.active, 90),
            "effective_mean": np.mean(records.effective, axis=1)[keep],
            "chosen_lam": None if choice is None else float(choice.lam),
            "chosen_rule": None if choice is None else choice.rule,
            "best_lam": None if best is None else float(best.lam),
            "threshold": None if best is None or rule_se is None else
            float(best.metric - rule_se if higher_is_better(metric) else best.metric + rule_se)}


def plot_path(auto: AutoLam, title: str = ""):
    """glmnet's path plot: the validation metric (mean ± 1 SE over runs, the 1-SE rule's line)
    and the active and effective edges (mean, 10–90 % band) against λ (log scale), the
    chosen and best λ marked. Returns the figure (write it with `io.save_figure`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = plot_data(auto.path.records, auto.metric, auto.choice, auto.best, auto.se)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6), height_ratios=(3, 2))
    top.fill_between(d["lam"], d["lo"], d["hi"], color="tab:red", alpha=0.25, lw=0, label="±1 SE over runs")
    top.plot(d["lam"], d["mean"], "o-", color="tab:red", ms=2.5, lw=1, label=f"validation {d['metric']} (mean)")
    bottom.fill_between(d["lam"], d["active_lo"], d["active_hi"], color="tab:blue", alpha=0.2, lw=0,
                        label="active, 10–90 %")
    bottom.plot(d["lam"], d["active_mean"], "-", color="tab:blue", lw=1.2, label="active edges (mean)")
    bottom.plot(d["lam"], d["effective_mean"], "--", color="tab:green", lw=1, label="effective edges (mean)")
    if d["threshold"] is not None and d["chosen_rule"] == "1se":
        top.axhline(d["threshold"], color="tab:red", ls=":", lw=1, label=f"best − 1 SE (runs and samples, {auto.se:.2g})")
    for ax in (top, bottom):
        if d["best_lam"]:
            ax.axvline(d["best_lam"], color="gray", ls=":", lw=1, label="best" if ax is top else None)
        if d["chosen_lam"]:
            ax.axvline(d["chosen_lam"], color="black", ls="--", lw=1,
                       label=f"chosen ({d['chosen_rule']}), λ={d['chosen_lam']:.3g}" if ax is top else None)
    bottom.set_xscale("log")
    bottom.set_yscale("symlog", linthresh=10)
    bottom.set_ylim(bottom=0)
    bottom.set_xlabel("λ")
    top.set_ylabel(f"validation {d['metric']}")
    bottom.set_ylabel("edges (log above 10)")
    top.legend(fontsize=8, loc="best")
    bottom.legend(fontsize=8, loc="best")
    top.set_title(title or f"λ path, {auto.path.records.active.shape[1]} runs, {len(d['lam'])} steps")
    fig.tight_layout()
    return fig
