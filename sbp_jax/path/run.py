"""`run_path`: a regularisation path over seeds, λ rising geometrically until every edge is pruned.

    path = run_path(cfg, tasks.xor(0), seeds=100)       # 100 runs, one compiled program
    path.records.lam, path.records.effective[k], path.records.val["accuracy"][k]

The λ grid (glmnet's vocabulary: λ_max, path):

1. *Warm-up.* Each run starts fresh and trains ceil(`warmup` / `epochs_per_step`)
   steps without the penalty (λ = 0), so the path starts at a dense net.
2. *Estimate.* glmnet's rule for the lasso, λ_max = max over weights of
   |∂L/∂w| at the null model, is the smallest λ whose solution is all
   zero. A net's null model (all edges 0) is a stationary point for every λ,
   so we take the rule at the runs' *initial* edges: λ̂ = median over runs of
   max over edges of |∂L_task/∂w| there, and the grid's top is `headroom` · λ̂.
   Measured (docs/path/README.md): the λ at which every edge is gone is
   0.23–0.43 λ̂ on XOR + bias, a + b, the planted CSV and breast cancer. The
   rule after an unpenalised warm-up, as glmnet would take it at the
   unpenalised solution, is far off for a net (a + b: 300× too small, the
   gradient vanishes at a minimum), so it is not used.
3. *Path.* `n_steps` values rising by `ratio` per step up to the top (100 ×
   1.08 spans a factor 2,000), `epochs_per_step` epochs each, warm-started.
4. *Detect.* λ_max is detected on the path: the first step at which a run has
   no active edge (`Path.lam_max`). If some run still has an edge at the top,
   the path continues from its last state with the next values (the same
   compiled program, up to `max_extend` times); the records are cut after the
   first step at which every run is empty.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import kernels
from ..config import TrainConfig, check_choice, check_finite_nonneg, check_int
from ..loop import TrainState
from ..sweep import split_arrays
from .program import ADAM_MODES, PathRecords, compiled_path, relative_grid, start_template, timed

DEFAULTS = dict(n_steps=100, ratio=1.08, epochs_per_step=100, warmup=200, adam="reset", headroom=1.0)


class Path(NamedTuple):
    """A finished path: C runs (one per seed), S steps."""

    config: TrainConfig  # the shared settings (its λ is unused; epochs = epochs per step)
    seeds: np.ndarray  # (C,) int64
    records: PathRecords  # per step and run
    lam_estimate: np.ndarray  # (C,) float32: each run's glmnet estimate at its initial edges
    lam_max: np.ndarray  # (C,) float32: the first λ on the path with no active edge (inf: never)
    state: TrainState  # the runs' final states (leading axis C), to continue the path
    settings: dict  # n_steps, ratio, epochs_per_step, warmup, adam, headroom, top, extensions
    timing: dict  # seconds: compile_s (0 when compiled before in this process), run_s (every block, no compile)


def _check(config: TrainConfig, n_steps, ratio, epochs_per_step, warmup, adam, headroom, max_extend) -> None:
    if config.target_active is not None:
        raise ValueError(f"target_active={config.target_active!r} is invalid for a path: allowed None (a path sets "
                         "λ itself; the controller would replace it)")
    if config.lam_schedule != "constant":
        raise ValueError(f"lam_schedule={config.lam_schedule!r} is invalid for a path: allowed 'constant' (the path "
                         "is the schedule)")
    check_int("n_steps", n_steps, 2)
    if check_finite_nonneg("ratio", ratio) <= 1:
        raise ValueError(f"ratio={ratio!r} is invalid: allowed a finite number > 1")
    check_int("epochs_per_step", epochs_per_step, 1)
    check_int("warmup", warmup, 0)
    check_choice("adam", adam, ADAM_MODES)
    if check_finite_nonneg("headroom", headroom) < 1:
        raise ValueError(f"headroom={headroom!r} is invalid: allowed a finite number >= 1")
    check_int("max_extend", max_extend, 0)


def as_seeds(seeds) -> np.ndarray:
    """`seeds` (a list of seeds, or a count n for 0..n−1) as a validated `(C,)` int64 array."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = range(check_int("seeds", int(seeds), 1))
    seeds = np.asarray(list(seeds), np.int64)
    if seeds.ndim != 1 or len(seeds) == 0 or np.any(seeds < 0):
        raise ValueError(f"seeds={seeds.tolist()!r} is invalid: allowed a non-empty list of integers >= 0 or a count >= 1")
    return seeds


def _concat(a: dict, b: dict) -> dict:
    return jax.tree.map(lambda u, v: np.concatenate([u, v]), a, b)


def run_path(
    config: TrainConfig,
    data,
    seeds: Sequence[int] | int = 10,
    *,
    n_steps: int = DEFAULTS["n_steps"],
    ratio: float = DEFAULTS["ratio"],
    epochs_per_step: int = DEFAULTS["epochs_per_step"],
    warmup: int = DEFAULTS["warmup"],
    adam: str = DEFAULTS["adam"],
    headroom: float = DEFAULTS["headroom"],
    top: float | None = None,
    max_extend: int = 2,
    kernel: str = "auto",
) -> Path:
    """Run the λ path of `config` on `data` for every seed, as one compiled program.

    Args:
      config: the method's settings (λ unused; lr, ε and every option apply;
        `epochs` unused: each step runs `epochs_per_step`).
      data: a `datasets.Dataset`; its validation split (if any) is scored at every step.
      seeds: a list of seeds or a count n (0..n−1): one run each.
      n_steps: λ values per block, S (records: `(S, C)`, edges `(S, C, ...)`).
      ratio: λ grows by this factor per step (> 1).
      epochs_per_step: epochs of the method at each λ, warm-started.
      warmup: unpenalised epochs before the first penalised step (rounded up to whole steps).
      adam: 'reset' (a fresh Adam state each step) or 'carry' (keep moments and count).
      headroom: the grid's top is headroom · λ̂ (see the module docstring; ignored when `top` is given).
      top: the largest λ of the grid (default: from the estimate).
      max_extend: how many times the path may continue past the top while a run keeps an edge.
      kernel: the gradient kernel ('auto': `kernels.select`).
    Returns:
      a `Path`; its records are cut after the first step where every run has no active edge.
    """
    _check(config, n_steps, ratio, epochs_per_step, warmup, adam, headroom, max_extend)
    seeds = as_seeds(seeds)
    arrays = tuple(jnp.asarray(a) for a in split_arrays(config, data))
    static = config.static_part().replace(epochs=epochs_per_step, history_every=0)
    chosen = kernels.select(static, single=False, kernel=kernel).kernel
    if chosen == "reference":
        raise ValueError("kernel='reference' is invalid for a path: allowed 'auto', 'two_layer' or 'autodiff'")
    C = len(seeds)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    lr = jnp.full((C,), config.lr, jnp.float32)
    eps = jnp.full((C,), config.eps, jnp.float32)
    w_steps = -(-warmup // epochs_per_step)
    top_in = np.float32(0.0 if top is None else check_finite_nonneg("top", top, positive=True))
    args = lambda state, fresh, rel, top: (arrays, keys, state, np.bool_(fresh), rel, np.float32(top),
                                           np.float32(headroom), lr, eps)
    rel = relative_grid(n_steps, ratio, w_steps)
    drawn = {}
    first = args(start_template(static, seeds, drawn), True, rel, top_in)
    prog, compile_s = compiled_path(static, chosen, adam, first)
    compile_s += drawn.get("compile_s", 0.0)
    (state, recs), path_s = timed(prog, *first)
    top = float(recs["lam"][w_steps]) / float(rel[w_steps]) if top is None else float(top_in)
    estimate = recs["estimate"][0]
    extensions = 0
    while extensions < max_extend and np.any(recs["active"][-1] > 0):
        extensions += 1
        rel = relative_grid(n_steps + w_steps, ratio, 0, first=extensions * (n_steps + w_steps))
        (state, more), s = timed(prog, *args(state, False, rel, top))
        recs = _concat(recs, more)
        path_s += s
    empty = np.all(recs["active"] == 0, axis=1)
    if empty.any():
        recs = jax.tree.map(lambda a: a[: int(np.argmax(empty)) + 1], recs)
    records = PathRecords(**{f: recs[f] for f in PathRecords._fields if f != "edges"}, edges=tuple(recs["edges"]))
    gone = records.active == 0
    lam_max = np.where(gone.any(0), records.lam[np.argmax(gone, axis=0)], np.inf).astype(np.float32)
    settings = dict(n_steps=n_steps, ratio=ratio, epochs_per_step=epochs_per_step, warmup_steps=w_steps,
                    warmup_epochs=w_steps * epochs_per_step, adam=adam, headroom=headroom, top=top,
                    extensions=extensions, kernel=chosen)
    return Path(config, seeds, records, np.asarray(estimate), lam_max, state, settings,
                {"compile_s": compile_s, "run_s": path_s})
