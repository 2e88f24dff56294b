"""Rules that judge each run's candidates after a short retrain of their survivors.

* `sparsest_meeting`: per run, the sparsest net on the path that meets a
  `Condition` (e.g. training accuracy 1.0, R² >= 0.99) after its surviving
  edges are retrained with the mask fixed and no penalty
  (`finetune.finetune_masked`, Adam at the config's lr);
* `polish`: verified greedy edge removal from a chosen net, smallest |w|
  first, keeping a removal only if a short retrain still meets the condition;
* `best_of_k`: of k independent runs (seeds) per trial, the sparsest that
  meets the condition.

A candidate is the *effective* edge set of a step (active edges on an
input→output path); candidates with the same edge set are retrained once. The
net that is judged and returned is the deployed one: the retrained weights with
every edge outside the set, and every weight that ended below ε, exactly 0.
Its edge count is its effective edges. All retrains of a call are one vmapped
program (compiled once per shapes).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..config import TrainConfig, check_choice, check_int
from ..finetune import finetune_masked
from ..metrics import evaluate, metric_names
from ..structure import analyse, effective_masks, masked, masks
from ..sweep import split_arrays
from .rules import Choice, higher_is_better

SPLITS = ("train", "val", "test")


class Condition(NamedTuple):
    """'The net's `metric` on `split` is at least (at most, for MSE / MAE) `threshold`'."""

    metric: str  # 'accuracy', 'r2', 'mse' or 'mae'
    threshold: float
    split: str = "train"

    def met(self, value):
        return value >= self.threshold if higher_is_better(self.metric) else value <= self.threshold

    def __str__(self) -> str:
        return f"{self.split} {self.metric} {'>=' if higher_is_better(self.metric) else '<='} {self.threshold:g}"


def _flat(edges) -> jax.Array:
    """`(C, E)`: every run's edges in one row (layer by layer, row-major)."""
    return jnp.concatenate([w.reshape(w.shape[0], -1) for w in edges], axis=1)


def _unflat(flat, like) -> tuple:
    sizes = np.cumsum([0] + [int(np.prod(w.shape[1:])) for w in like])
    return tuple(flat[:, a:b].reshape(w.shape) for a, b, w in zip(sizes[:-1], sizes[1:], like))


@functools.partial(jax.jit, static_argnames=("cfg", "cond", "epochs"))
def _retrain_judge(edges, keep, data, lr, eps, *, cfg: TrainConfig, cond: Condition, epochs: int):
    """Retrain each net's `keep` edges (leading axis N), deploy, judge.
    Returns (deployed edges, metric `(N,)`, effective edges `(N,)`)."""
    x, y = data[0], data[1]
    xs, ys = data[2 * SPLITS.index(cond.split)], data[2 * SPLITS.index(cond.split) + 1]
    ft = functools.partial(finetune_masked, epochs=epochs, loss=cfg.loss, hidden_activation=cfg.hidden_activation)
    out = jax.vmap(ft, in_axes=(0, 0, None, None, None))(edges, keep, x, y, lr)
    deployed = jax.vmap(masked, in_axes=(0, None))(out, eps)
    ev = jax.vmap(lambda e: evaluate(e, xs, ys, loss=cfg.loss, hidden_activation=cfg.hidden_activation)[cond.metric])
    eff = jax.vmap(lambda e: jnp.sum(analyse(e, eps, cfg.bias).effective_per_layer))(deployed)
    return deployed, ev(deployed), eff


def _effective(edges, eps, bias) -> tuple:
    return jax.vmap(lambda e: effective_masks(masks(e, eps), bias))(edges)


def retrain(cfg: TrainConfig, data, edges, keep, cond: Condition, epochs: int):
    """Retrain nets `edges` (per layer `(N, n_out, n_in)`) on the edges `keep` (bool, same
    shapes) for `epochs` Adam steps (lr = `cfg.lr`, no penalty), then deploy and judge
    them by `cond`. Returns numpy (deployed edges, metric `(N,)`, effective edges `(N,)`)."""
    check_choice("condition split", cond.split, SPLITS)
    check_choice("condition metric", cond.metric, metric_names(cfg.loss))
    check_int("retrain_epochs", epochs, 1)
    arrays = tuple(jnp.asarray(a) for a in split_arrays(cfg, data))
    if arrays[2 * SPLITS.index(cond.split)].shape[0] == 0:
        raise ValueError(f"condition split={cond.split!r} is invalid: the data has no such split")
    static = cfg.static_part()
    keep = tuple(jnp.asarray(k) for k in keep)
    edges = tuple(jnp.where(k, jnp.asarray(w), 0.0) for w, k in zip(edges, keep))
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam needs it (tests/conftest.py)
        out = _retrain_judge(edges, keep, arrays, jnp.float32(cfg.lr), jnp.float32(cfg.eps), cfg=static,
                             cond=cond, epochs=epochs)
    return jax.tree.map(np.asarray, out)


def _candidates(path, k_max: int, cond: Condition) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Per run, up to `k_max` distinct effective edge sets of the path, sparsest first.

    Each edge set is represented by its step whose pruned net scores best on
    `cond`'s metric and split in the records (the least shrunk copy, the easiest
    to retrain; ties and records without that metric: the larger λ); equally
    sparse sets are ordered by that score, then by λ, larger first.
    Returns steps `(K, C)` int, valid `(K, C)` bool, keep masks `(K, C, ...)`."""
    rec, cfg = path.records, path.config
    S, C = rec.active.shape
    eff = _effective(tuple(jnp.asarray(w).reshape(S * C, *w.shape[2:]) for w in rec.edges), jnp.float32(cfg.eps),
                     cfg.bias)
    bits = np.asarray(_flat(eff)).reshape(S, C, -1)
    n_eff = bits.sum(axis=2)
    finite = np.all(np.isfinite(np.concatenate([w.reshape(S, C, -1) for w in rec.edges], axis=2)), axis=2)
    table = getattr(rec, cond.split)
    score = np.asarray(table[cond.metric], np.float64) if cond.metric in table else np.zeros((S, C))
    score = np.where(np.isfinite(score), score if higher_is_better(cond.metric) else -score, -np.inf)
    steps = np.zeros((k_max, C), np.int64)
    valid = np.zeros((k_max, C), bool)
    for c in range(C):
        best: dict[bytes, int] = {}
        for s in range(S):  # rising λ: a later step wins ties
            if rec.diverged[s, c] or not finite[s, c]:
                continue
            key = bits[s, c].tobytes()
            if key not in best or score[s, c] >= score[best[key], c]:
                best[key] = s
        chosen = sorted(best.values(), key=lambda s: (n_eff[s, c], -score[s, c], -s))[:k_max]
        n = len(chosen)
        steps[:, c] = chosen + [chosen[-1] if chosen else 0] * (k_max - n)
        valid[:n, c] = True
    keep = tuple(np.asarray(m).reshape(S, C, *m.shape[1:])[steps, np.arange(C)[None]] for m in eff)
    return steps, valid, keep


def sparsest_meeting(path, data, cond: Condition, *, retrain_epochs: int = 200, candidates: int = 24) -> Choice:
    """Per run, the sparsest net on the path meeting `cond` after a short retrain.

    Args:
      path: a `run.Path`; data: the `Dataset` it was run on.
      cond: the condition (judged on the deployed, retrained net).
      retrain_epochs: Adam steps of each candidate's retrain (mask fixed, no penalty).
      candidates: how many distinct edge sets per run are retrained, sparsest first.
    Returns:
      a per-run `Choice` (rule 'sparsest_meeting'): step, λ, effective edges and
      metric of the chosen net, its weights, and `met`. A run with no candidate
      meeting `cond` gets its best-scoring candidate with `met` False.
    """
    check_int("candidates", candidates, 1)
    steps, valid, keep = _candidates(path, candidates, cond)
    K, C = steps.shape
    edges = tuple(w[steps, np.arange(C)[None]].reshape(K * C, *w.shape[2:]) for w in path.records.edges)
    deployed, metric, eff = retrain(path.config, data, edges, tuple(k.reshape(K * C, *k.shape[2:]) for k in keep),
                                    cond, retrain_epochs)
    metric, eff = metric.reshape(K, C), eff.reshape(K, C)
    ok = valid & cond.met(metric)
    score = np.where(valid, metric if higher_is_better(cond.metric) else -metric, -np.inf)
    # met: fewest effective edges, then the earliest candidate (sparsest before retrain, larger λ); else best score
    order = np.where(ok, eff.astype(np.int64), 1 << 40) * (K + 1) + np.arange(K)[:, None]
    pick = np.where(ok.any(0), np.argmin(order, axis=0), np.argmax(score, axis=0))
    cols = np.arange(C)
    met = ok[pick, cols]
    step = steps[pick, cols]
    chosen = tuple(w.reshape(K, C, *w.shape[1:])[pick, cols] for w in deployed)
    reason = (f"{int(met.sum())} of {C} runs have a net on the path meeting {cond} after a {retrain_epochs}-epoch "
              f"retrain; chosen: {np.mean(eff[pick, cols][met]) if met.any() else float('nan'):.2f} effective "
              f"edges on average among them (up to {K} sparsest distinct edge sets per run tried)")
    return Choice("sparsest_meeting", step, path.records.lam[step], eff[pick, cols], metric[pick, cols], reason,
                  chosen, met)


@functools.partial(jax.jit, static_argnames=("bias",))
def _next_removal(edges, tried, eps, *, bias: bool):
    """Per run: the untried effective edge of smallest |w| (flat position `(C,)`), whether
    there is one, the edge set without it (effective part only) and `tried` updated."""
    keep = _effective(edges, eps, bias)
    mag = _flat(edges)
    score = jnp.where(_flat(keep) & ~tried, jnp.abs(mag), jnp.inf)
    pos = jnp.argmin(score, axis=1)
    left = jnp.isfinite(jnp.min(score, axis=1))
    hit = jax.nn.one_hot(pos, mag.shape[1], dtype=bool) & left[:, None]
    trial = _effective(_unflat(jnp.where(_flat(keep) & ~hit, mag, 0.0), edges), eps, bias)
    return trial, left, tried | hit


def polish(choice: Choice, path, data, cond: Condition, *, retrain_epochs: int = 200) -> Choice:
    """Verified greedy edge removal from each run's chosen net (`choice.weights`).

    Repeatedly, per run: take the untried effective edge of smallest |w|, remove it
    (with any edge it leaves off every input→output path), retrain the rest for
    `retrain_epochs` (mask fixed, no penalty) and keep the result only if it still
    meets `cond`; stop when every edge has been tried. Runs whose chosen net does not
    meet `cond` are left as they are. The condition is never broken and the effective
    edge count never grows. One vmapped retrain per removal round (≤ the largest
    effective edge count rounds)."""
    cfg = path.config
    if choice.weights is None or choice.met is None:
        raise ValueError(f"choice rule={choice.rule!r} is invalid for polish: allowed a per-run choice with weights "
                         "(sparsest_meeting)")
    eps = jnp.float32(cfg.eps)
    edges = tuple(jnp.asarray(w) for w in choice.weights)
    tried = jnp.zeros_like(_flat(edges), dtype=bool) | ~jnp.asarray(choice.met)[:, None]
    n_edges, metric = np.asarray(choice.n_edges).copy(), np.asarray(choice.metric).copy()
    removed = np.zeros(len(n_edges), np.int64)
    while True:
        trial, left, tried = _next_removal(edges, tried, eps, bias=cfg.bias)
        if not bool(np.any(left)):
            break
        deployed, m, eff = retrain(cfg, data, edges, trial, cond, retrain_epochs)
        ok = np.asarray(left) & cond.met(m) & (eff < n_edges)
        edges = tuple(jnp.where(jnp.asarray(ok).reshape((-1,) + (1,) * (w.ndim - 1)), d, w)
                      for w, d in zip(edges, deployed))
        n_edges, metric, removed = np.where(ok, eff, n_edges), np.where(ok, m, metric), removed + ok
    reason = (f"greedy removal, smallest |w| first, each kept only if a {retrain_epochs}-epoch retrain still meets "
              f"{cond}: {int(removed.sum())} edges removed over {int((removed > 0).sum())} of {len(removed)} runs")
    return choice._replace(rule="polish", n_edges=n_edges, metric=metric, reason=reason,
                           weights=tuple(np.asarray(w) for w in edges))


def best_of_k(choice: Choice, k: int, cond: Condition) -> Choice:
    """Of each trial's k runs (runs t·k … t·k + k − 1 of a per-run `choice`), the one with
    the fewest effective edges among those meeting the condition (ties: the better
    metric by `cond`, then the first); a trial with none meeting it keeps its best-scoring run."""
    check_int("k", k, 1)
    C = len(choice.n_edges)
    if C % k:
        raise ValueError(f"k={k} is invalid for {C} runs: allowed a divisor of the number of runs")
    T = C // k
    met = np.asarray(choice.met).reshape(T, k)
    n = np.asarray(choice.n_edges, np.float64).reshape(T, k)
    m = np.asarray(choice.metric, np.float64).reshape(T, k)
    better = -m if higher_is_better(cond.metric) else m
    best = np.lexsort((np.arange(k)[None].repeat(T, 0), better, np.where(met, n, np.inf)), axis=1)[:, 0]
    run = np.arange(T) * k + best
    pick = lambda a: None if a is None else (tuple(np.asarray(w)[run] for w in a) if isinstance(a, tuple)
                                             else np.asarray(a)[run])
    reason = (f"best of {k} runs per trial: {int(met.any(1).sum())} of {T} trials have a run meeting {cond} "
              f"({int(met.sum())} of {C} runs); the sparsest such run is kept")
    return Choice("best_of_k", pick(choice.step), pick(choice.lam), pick(choice.n_edges), pick(choice.metric), reason,
                  pick(choice.weights), pick(choice.met), run)
