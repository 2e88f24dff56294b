"""The single-run kernel: ONE config of the paper's plain setting, samples on the last axis.

What `train.train` runs for a plain config (`single_ok`): the edges and
Adam's moments as one flat `(n_edges,)` vector, all gradients and the task
loss from one reduction over the samples of a `(n_edges + 1, S)` array, so an
epoch is ~15 small XLA kernels instead of the generic path's ~30 (2x faster
on XOR, see benchmarks/README.md). The update is the reference's own optax
transformation (`loop.optimizer`) applied to the flat vector. The forward
and backward passes are written out per layer for this layout (see
`_task_and_grads`), pinned against the reference by the conformance tests. Deterministic run to run;
another `unroll` is another compiled program (float32 rounding apart).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from .config import TrainConfig
from .loop import History, Hyper, TrainResult, TrainState, optimizer, run_epochs, start_state
from .objective import output_delta, pointwise_loss

# Epochs per loop iteration (lax.scan / fori_loop unroll): 2 measured ~10 % faster than 1 on XOR and
# no slower than 4 (2-core CPU).
SINGLE_UNROLL = 2

# TrainConfig fields this kernel reads; every other field must be at its default.
_FREE_FIELDS = ("layers", "loss", "hidden_activation", "lam", "lr", "eps", "epochs", "init", "history_every",
                "shuffle_seed")  # (the minibatch order: unused at full batch)


def single_ok(static: TrainConfig) -> str | None:
    """None when this kernel implements `static` exactly (full batch, the
    paper's penalty, no bias, skip or dropout, relu/identity units, bce/mse),
    else the reason, naming the first field that keeps it off. A field added to
    `TrainConfig` later keeps configs that set it off this kernel."""
    default = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name not in _FREE_FIELDS and getattr(static, f.name) != getattr(default, f.name):
            return f"{f.name}={getattr(static, f.name)!r}: the single-run kernel runs the paper's plain setting"
    if static.hidden_activation not in ("relu", "identity"):
        return f"hidden_activation={static.hidden_activation!r}: the single-run kernel covers relu and identity"
    if static.loss not in ("bce", "mse"):
        return f"loss={static.loss!r}: the single-run kernel covers bce and mse"
    return None


def _task_and_grads(edges, x, yt, loss: str, act: str):
    """Task loss and gradient of ONE net: `x` `(S, n_in)`, `yt` `(n_out, S)`,
    edges `(n_out, n_in)`. Samples on the last axis, every layer's units at once
    as `(width, S)` rows; returns `sums / n`: the gradient of every edge (layers
    flattened in order) and last the task loss, from one reduction over the
    samples of a `(n_edges + 1, S)` array. (`network.forward_layers` with `(S,)`
    per-unit columns computes the same forward pass but made this kernel 3x
    slower on addition: 20 vs 6.5 ms for 2000 epochs, so the rows form stays,
    pinned by the conformance tests.)"""
    L = len(edges)
    n = x.shape[0] * yt.shape[0]
    hs, zs = [x.T], []
    for l, w in enumerate(edges):
        z = sum(w[:, j:j + 1] * hs[l][j:j + 1, :] for j in range(w.shape[1]))
        zs.append(z)
        if l < L - 1:
            hs.append(jnp.maximum(z, 0.0) if act == "relu" else z)
    out = zs[-1]
    delta, per = output_delta(out, yt, loss), pointwise_loss(out, yt, loss)
    rows = [None] * L
    for l in range(L - 1, -1, -1):
        rows[l] = (delta[:, None, :] * hs[l][None, :, :]).reshape(-1, x.shape[0])
        if l > 0:
            w = edges[l]
            back = sum(w[i:i + 1, :].T * delta[i:i + 1, :] for i in range(w.shape[0]))
            delta = jnp.where(zs[l - 1] > 0, back, 0.0) if act == "relu" else back
    return jnp.sum(jnp.concatenate(rows + [per]), axis=-1) / n


def train_single(static: TrainConfig, x, y, key, hyper: Hyper, init=None,
                 unroll: int = SINGLE_UNROLL) -> TrainResult:
    """`reference.train_core` for one config `single_ok` accepts (pure, not jitted)."""
    state = start_state(static, key, hyper, init)
    shapes = [w.shape for w in state.edges]
    sizes = [a * b for a, b in shapes]
    offs = [sum(sizes[:l]) for l in range(len(sizes))]
    unflat = lambda p: tuple(p[o:o + m].reshape(sh) for o, m, sh in zip(offs, sizes, shapes))
    p0 = jnp.concatenate([w.reshape(-1) for w in state.edges])
    opt = optimizer(static, hyper)
    # the optimizer state of the flat vector: each edges-shaped part of the run's state flattened
    flat_state = jax.tree.map(lambda t, sub: jnp.concatenate([w.reshape(-1) for w in sub]) if t.shape == p0.shape
                              else sub, opt.init(p0), state.opt_state)
    yt = y.T
    P = p0.shape[0]

    def step(carry):
        (p, s, epoch), diverged_at = carry
        sums = _task_and_grads(unflat(p), x, yt, static.loss, static.hidden_activation)
        task = sums[P]
        updates, s = opt.update(sums[:P], s, p)
        diverged_at = jnp.where((diverged_at < 0) & ~jnp.isfinite(task), epoch, diverged_at)
        return ((optax.apply_updates(p, updates), s, epoch + 1), diverged_at), task

    def record(before, after, task):
        # penalty and active count of the weights the step started from; the
        # total loss is task + penalty, added after the loop (same float32 sum)
        p = before[0][0]
        penalty = hyper.lam * jnp.sum(jnp.abs(p))
        return jnp.stack([task, penalty]), jnp.sum(jnp.abs(p) >= hyper.eps, dtype=jnp.int32)

    carry = ((p0, flat_state, state.epoch), jnp.int32(-1))
    ((p, s, epoch), diverged_at), records = run_epochs(step, carry, static.epochs, static.history_every, record,
                                                       unroll=unroll)
    if records is None:
        history = History.empty()
    else:
        tp, active = records
        history = History(tp[:, 0] + tp[:, 1], tp[:, 0], tp[:, 1], active)
    edges = unflat(p)
    s = jax.tree.map(lambda a: unflat(a) if a.shape == (P,) else a, s)
    return TrainResult(edges, history, diverged_at, TrainState(edges, s, epoch))
