"""A fast sweep kernel: C small nets trained at once, configs on the LAST axis.

`sweep.run_grid` by default vmaps `train.train_core` (one run, `jax.grad` +
optax) over the configs of a chunk. For the paper's plain setting (full batch,
L1 subgradient + Adam, relu/identity hidden units, bce/mse, small layers)
`train_chunk_cl` computes the same thing by hand for a whole chunk:

* edges and Adam moments are `(n_out, n_in, C)` per layer; activations are
  lists of per-unit `(S, C)` arrays (S samples); the data `(S, n_in)` is
  shared by every config;
* the backward pass is written out per unit (no `jax.grad`), and the
  λ·sign(w) subgradient and Adam (optax's formulas) are applied inline;
* every reduction is over samples or over one config's edges, never across
  configs, and no matrix product is used (a GEMM over the config axis was
  found not to be bitwise independent of the chunk size), so a config's
  result does not depend on which configs share its chunk or on the chunk size.

The results agree with `train_core` to float32 rounding (not bitwise: the
order of some floating-point operations differs). `fast_path_ok` says whether
a config is one this kernel implements exactly; any other setting, including
fields added to `TrainConfig` later, falls back to the generic path.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .config import TrainConfig
from .network import SMALL_LAYER_EDGES, init_edges
from .train import History, Hyper, TrainResult

B1, B2, ADAM_EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults (what penalty.make_optimizer uses)

# TrainConfig fields the kernel reads, and the values it supports; every other
# field must be at its default for the fast path to be taken.
_FREE_FIELDS = ("layers", "loss", "hidden_activation", "lam", "lr", "eps", "epochs", "init", "history_every",
                "batch_size")
_HIDDEN = ("relu", "identity")
_LOSSES = ("bce", "mse")


def fast_path_ok(static: TrainConfig) -> bool:
    """True when `train_chunk_cl` implements `static` exactly: full batch, the
    paper's penalty (subgradient, no per-layer λ, no schedule, no controller),
    no bias, no dropout, relu/identity hidden units, bce/mse loss, and every
    layer at most `network.SMALL_LAYER_EDGES` edges. Any field not in the
    kernel's list must equal its default, so options added later disable it."""
    if not isinstance(static, TrainConfig):
        return False
    try:
        rest = dataclasses.replace(static, **{f: getattr(TrainConfig(), f) for f in _FREE_FIELDS})
    except (TypeError, ValueError):  # a free field no longer exists
        return False
    if rest != TrainConfig():
        return False
    if static.hidden_activation not in _HIDDEN or static.loss not in _LOSSES:
        return False
    if getattr(static, "batch_size", 0) != 0:  # b >= n is also full batch, but needs n: keep it simple
        return False
    layers = static.layers
    return all(0 < a * b <= SMALL_LAYER_EDGES for a, b in zip(layers[:-1], layers[1:]))


def init_edges_cl(static: TrainConfig, seeds) -> tuple:
    """Initial edges of C configs, config-last `(n_out, n_in, C)`: bitwise
    `init_edges(jax.random.key(seed), ...)` of each seed."""
    ed = jax.vmap(lambda s: init_edges(jax.random.key(s), static.layers, static.init))(seeds)
    return tuple(jnp.moveaxis(w, 0, -1) for w in ed)


def _row(v):
    """A `(C,)` vector as a `(1, C)` row (explicit rank promotion)."""
    return v[None, :]


def _task_and_grads(edges, x, y, loss: str, act: str):
    """Mean task loss `(C,)` and its gradients `(n_out, n_in, C)` for C nets."""
    S = x.shape[0]
    L = len(edges)
    hs = [[x[:, j:j + 1] for j in range(x.shape[1])]]  # (S, 1) columns, broadcast over C
    zs = []
    for l, w in enumerate(edges):
        z = [sum(_row(w[i, j]) * hs[l][j] for j in range(w.shape[1])) for i in range(w.shape[0])]
        if l < L - 1:
            z = list(jax.lax.optimization_barrier(z))  # materialise once, not in every consumer
            hs.append([jnp.maximum(c, 0.0) for c in z] if act == "relu" else z)
        zs.append(z)
    n_out = edges[-1].shape[0]
    n = S * n_out
    out = zs[-1]
    if loss == "bce":
        per = [jax.nn.softplus(out[k]) - y[:, k:k + 1] * out[k] for k in range(n_out)]
        d = [(jax.nn.sigmoid(out[k]) - y[:, k:k + 1]) / n for k in range(n_out)]
    elif loss == "mse":
        per = [jnp.square(out[k] - y[:, k:k + 1]) for k in range(n_out)]
        d = [2.0 * (out[k] - y[:, k:k + 1]) / n for k in range(n_out)]
    else:
        raise NotImplementedError(loss)
    task = sum(jnp.sum(p, axis=0) for p in per) / n
    dzs = [None] * L
    dzs[L - 1] = list(jax.lax.optimization_barrier(d))
    for l in range(L - 1, 0, -1):
        w = edges[l]
        back = [sum(_row(w[i, j]) * dzs[l][i] for i in range(w.shape[0])) for j in range(w.shape[1])]
        dzs[l - 1] = [jnp.where(zs[l - 1][j] > 0, b, 0.0) for j, b in enumerate(back)] if act == "relu" else back
    grads = []
    for l, w in enumerate(edges):
        g = [jnp.sum(dzs[l][i] * hs[l][j], axis=0) for i in range(w.shape[0]) for j in range(w.shape[1])]
        grads.append(jnp.stack(g).reshape(w.shape))
    return task, grads


def _adam_l1(w, g, m, v, tf, lam, lr):
    """One step of chain(add_l1_subgradient(λ), adam(lr)) on config-last arrays."""
    g = g + lam * jnp.sign(w)
    m = (1 - B1) * g + B1 * m
    v = (1 - B2) * (g * g) + B2 * v
    # m / (1 − β^t) as m · (1 / (1 − β^t)): XLA rewrites the division by a broadcast
    # scalar into this in some programs and not in others (it did not under shard_map),
    # so write it out to get the same rounding everywhere.
    mh = m * (1 / (1 - B1 ** tf))
    vh = v * (1 / (1 - B2 ** tf))
    return w - lr * (mh / (jnp.sqrt(vh) + ADAM_EPS)), m, v


def train_chunk_cl(static: TrainConfig, x: Array, y: Array, seeds: Array, hyper: Hyper) -> TrainResult:
    """Train C configs (seeds and `hyper` of shape `(C,)`) on the shared data
    `(x, y)`; requires `fast_path_ok(static)`. Returns what
    `jax.vmap(train_core)` would: a `TrainResult` with the config axis first
    (edges `(C, n_out, n_in)`, history `(C, n_records)`, `diverged_at` `(C,)`)."""
    if not fast_path_ok(static):
        raise ValueError("train_chunk_cl: config not supported by the fast kernel (see fast_path_ok)")
    lam3 = hyper.lam[None, None, :]
    lr3 = hyper.lr[None, None, :]
    eps3 = hyper.eps[None, None, :]
    edges = init_edges_cl(static, seeds)
    zeros = tuple(jnp.zeros_like(w) for w in edges)

    def step(carry):
        edges, ms, vs, epoch, diverged_at = carry
        task, grads = _task_and_grads(edges, x, y, static.loss, static.hidden_activation)
        tf = (epoch + 1).astype(jnp.float32)
        new = [_adam_l1(w, g, m, v, tf, lam3, lr3) for w, g, m, v in zip(edges, grads, ms, vs)]
        diverged_at = jnp.where((diverged_at < 0) & ~jnp.isfinite(task), epoch, diverged_at)
        carry = (tuple(a[0] for a in new), tuple(a[1] for a in new), tuple(a[2] for a in new), epoch + 1,
                 diverged_at)
        return carry, task

    def plain(_, carry):
        return step(carry)[0]

    def block(carry, _):
        carry = jax.lax.fori_loop(0, k - 1, plain, carry)
        edges = carry[0]
        carry, task = step(carry)
        penalty = hyper.lam * sum(jnp.sum(jnp.abs(w), axis=(0, 1)) for w in edges)
        active = sum(jnp.sum(jnp.abs(w) >= eps3, axis=(0, 1), dtype=jnp.int32) for w in edges)
        return carry, History(task + penalty, task, penalty, active)

    C = seeds.shape[0]
    carry = (edges, zeros, zeros, jnp.int32(0), jnp.full((C,), -1, jnp.int32))
    k = static.history_every
    if k == 0:
        carry = jax.lax.fori_loop(0, static.epochs, plain, carry)
        history = History(*(jnp.zeros((C, 0), d) for d in (jnp.float32,) * 3 + (jnp.int32,)))
    else:
        carry, history = jax.lax.scan(block, carry, length=static.n_records)
        carry = jax.lax.fori_loop(0, static.epochs - static.n_records * k, plain, carry)
        history = History(*(jnp.moveaxis(h, 0, -1) for h in history))
    return TrainResult(tuple(jnp.moveaxis(w, -1, 0) for w in carry[0]), history, carry[4])
