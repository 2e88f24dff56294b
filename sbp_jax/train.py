"""Training: one jitted `lax.scan` over epochs (full batch by default).

`train(config, x, y, key)` runs one configuration. The work is done by
`train_core`, a pure function of arrays written for one run; a sweep is
`jax.vmap(train_core)` over (λ, lr, ε, key) with everything else shared
(see `sweep.py`). λ, lr and ε enter as traced scalars (`Hyper`), so every
value shares one compiled program.

Minibatches (`config.batch_size = b`, 0 < b < n): an epoch is an inner
`lax.scan` over ceil(n/b) Adam steps. The epoch's order is
`jax.random.permutation(fold_in(fold_in(key, SHUFFLE_STREAM), epoch), n)`, so
it is a pure function of the run's key and the epoch (vmaps over seeds like
the initial edges). The ragged last batch is padded to b with sample 0 and a
weight mask of zeros: every sample is used exactly once per epoch and every
step is the mean loss over its real samples. b = 0 or b >= n is exactly the
full-batch program (one step per epoch on the data in its given order).

Structural dropout (`config.dropout = p > 0`): in epoch t every edge is kept
with probability 1 − p, independently, by a mask drawn from
`fold_in(fold_in(key, DROPOUT_STREAM), t)` (a stream distinct from the
shuffle stream and from the initial edges); the loss and its gradient are
those of the net with edges `w·mask/(1−p)` (inverted scaling, so the full
net used for evaluation has the same expected pre-activations). Dropped
edges get no task gradient that epoch; the penalty still acts on them (it
sees the weights, not the mask). One mask per epoch, shared by that
epoch's minibatches. p = 0 is exactly the program without dropout.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .config import TrainConfig
from .network import Edges, init_edges
from .network import forward
from .objective import task_loss, task_loss_from_logits
from .penalty import applied_penalty, make_optimizer


class Hyper(NamedTuple):
    """The traced hyper-parameters of one run (float32 scalars; `(C,)` in a sweep)."""

    lam: Float[Array, ""]  # λ of the L1 penalty
    lr: Float[Array, ""]  # Adam learning rate
    eps: Float[Array, ""]  # activity threshold ε


class History(NamedTuple):
    """Per-record training history; record t describes the state at the start
    of epoch (t+1)·k − 1 (0-based), k = `config.history_every`, i.e. the
    objective whose gradient that epoch's step used (with minibatches: the
    task loss is the mean of that epoch's minibatch losses, weighted by their
    real sizes; the penalty is at the start of the epoch). Shapes `(n_records,)`."""

    loss: Float[Array, " n_records"]  # task loss + λ·Σ|w|, float32
    task_loss: Float[Array, " n_records"]  # float32
    penalty: Float[Array, " n_records"]  # Σ_l λ_l·Σ|w_l| with the λ that epoch's (last) step applied, float32
    active_edges: Int[Array, " n_records"]  # #{|w| >= ε}, int32

    @classmethod
    def empty(cls, *lead: int) -> "History":
        """No records (`history_every = 0`), with leading axes `lead` (e.g. the configs)."""
        return cls(*(jnp.zeros((*lead, 0), d) for d in (jnp.float32,) * 3 + (jnp.int32,)))


class TrainResult(NamedTuple):
    edges: Edges  # final edges, `(n_{l+1}, n_l)` float32 each
    history: History
    diverged_at: Int[Array, ""]  # first epoch (0-based) with a non-finite loss; -1 if none


SHUFFLE_STREAM = 0x5348  # fold_in tag: the minibatch-order stream of a run's key
DROPOUT_STREAM = 0x4450  # fold_in tag: the structural-dropout stream of a run's key


def dropout_masks(key: PRNGKeyArray, epoch, edges: Edges, p: float) -> Edges:
    """Epoch `epoch`'s structural-dropout multipliers: per edge 1/(1−p) with
    probability 1 − p, else 0 (float32, shaped like `edges`)."""
    k = jax.random.fold_in(jax.random.fold_in(key, DROPOUT_STREAM), epoch)
    keys = jax.random.split(k, len(edges))
    scale = jnp.float32(1.0 / (1.0 - p))
    return tuple(jax.random.bernoulli(kk, 1.0 - p, w.shape).astype(jnp.float32) * scale
                 for kk, w in zip(keys, edges))


def _dropped(fn, drop):
    """`fn` with its first argument (edges) multiplied by the dropout masks `drop`."""
    return lambda e, *a, **kw: fn(tuple(w * d for w, d in zip(e, drop)), *a, **kw)


def minibatch_plan(n: int, batch_size: int) -> tuple[int, int]:
    """`(n_batches, batch)` of one epoch over n samples: `(1, n)` for full
    batch (batch_size 0 or >= n), else `(ceil(n / b), b)`."""
    if batch_size == 0 or batch_size >= n:
        return 1, n
    return -(-n // batch_size), batch_size


def _weighted_task_loss(edges, x, y, w, *, loss: str, hidden_activation: str):
    """Task loss averaged over the samples with weight 1 (`w` is a 0/1 mask)."""
    z = forward(edges, x, hidden_activation)
    per = jax.vmap(lambda zi, yi: task_loss_from_logits(zi[None], yi[None], loss))(z, y)
    return jnp.sum(per * w) / jnp.sum(w)


def hyper_of(config: TrainConfig) -> Hyper:
    """`config`'s λ, lr, ε as float32 scalar arrays."""
    return Hyper(*(jnp.asarray(v, jnp.float32) for v in (config.lam, config.lr, config.eps)))


def count_active(edges: Edges, eps) -> Int[Array, ""]:
    """Number of edges with |w| >= ε (int32 scalar)."""
    return sum(jnp.sum(jnp.abs(w) >= eps, dtype=jnp.int32) for w in edges)


def run_epochs(step, carry, epochs: int, every: int, record, *, plain=None, unroll: int | None = None):
    """Run `epochs` epochs, recording the history every `every` epochs (all training loops use this).

    Args:
      step: `carry -> (carry, task)`, one epoch that also returns its task loss.
      carry: the loop state.
      epochs, every: number of epochs; record every `every` epochs (0 = never).
      record: `(before, after, task) -> record pytree` for epoch (t+1)·every − 1 (0-based): `before`
        the carry the epoch started from, `after` the one its step returned. Records are stacked on
        a leading axis by `lax.scan`.
      plain: `carry -> carry` for the epochs that record nothing (default: `step` without its task).
      unroll: unroll factor of the outer loop (the records' scan, or the loop over all epochs).
    Returns:
      `(carry, records)`; records is None when `every == 0`.
    """
    plain = plain if plain is not None else (lambda c: step(c)[0])
    body = lambda _, c: plain(c)
    kw = {} if unroll is None else {"unroll": unroll}
    if every == 0:
        return jax.lax.fori_loop(0, epochs, body, carry, **kw), None

    def block(c, _):
        c = jax.lax.fori_loop(0, every - 1, body, c)
        after, task = step(c)
        return after, record(c, after, task)

    n = epochs // every
    carry, records = jax.lax.scan(block, carry, length=n, **kw)
    return jax.lax.fori_loop(0, epochs - n * every, body, carry), records


def train_core(
    static: TrainConfig,
    x: Float[Array, "n n_in"],
    y: Array,
    key: PRNGKeyArray,
    hyper: Hyper,
) -> TrainResult:
    """One training run as a pure function (not jitted; vmap-able over key and hyper).

    Args:
      static: the config; only its static fields are read (λ, lr, ε come from
        `hyper`), so pass `config.static_part()` as a jit static argument.
      x: inputs `(n, layers[0])` float32; y: targets (see `objective`).
      key: PRNG key for the initial edges (and, with minibatches, their order).
      hyper: λ, lr, ε as float32 scalars.
    """
    edges = init_edges(key, static.layers, static.init, bias=static.bias, bias_init=static.bias_init,
                           skip=static.skip)
    opt = make_optimizer(hyper.lam, hyper.lr, static, hyper.eps)
    base_grad_fn = jax.value_and_grad(task_loss)

    kw = dict(loss=static.loss, hidden_activation=static.hidden_activation)
    n = x.shape[0]
    n_batches, batch = minibatch_plan(n, static.batch_size)
    pad = n_batches * batch - n
    shuffle_key = jax.random.fold_in(key, SHUFFLE_STREAM)
    weights = (jnp.arange(n_batches * batch) < n).astype(jnp.float32).reshape(n_batches, batch)
    base_wgrad_fn = jax.value_and_grad(_weighted_task_loss)

    def make_minibatch(grad_fn, wgrad_fn):
        def minibatch(state, batch_in):
            edges, opt_state = state
            idx, w = batch_in
            if pad:
                task, grads = wgrad_fn(edges, x[idx], y[idx], w, **kw)
            else:
                task, grads = grad_fn(edges, x[idx], y[idx], **kw)
            updates, opt_state = opt.update(grads, opt_state, edges)
            return (optax.apply_updates(edges, updates), opt_state), task

        return minibatch

    def step(carry):
        edges, opt_state, epoch, diverged_at = carry
        grad_fn, wgrad_fn = base_grad_fn, base_wgrad_fn
        if static.dropout > 0:  # static: p = 0 traces exactly the program without dropout
            drop = dropout_masks(key, epoch, edges, static.dropout)
            grad_fn, wgrad_fn = _dropped(base_grad_fn, drop), _dropped(base_wgrad_fn, drop)
        minibatch = make_minibatch(grad_fn, wgrad_fn)
        if n_batches == 1:  # full batch: the paper's setting, data in its given order
            task, grads = grad_fn(edges, x, y, **kw)
            updates, opt_state = opt.update(grads, opt_state, edges)
            edges = optax.apply_updates(edges, updates)
        else:
            perm = jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n)
            idx = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)]).reshape(n_batches, batch)
            (edges, opt_state), tasks = jax.lax.scan(minibatch, (edges, opt_state), (idx, weights))
            task = jnp.sum(tasks * jnp.sum(weights, axis=1)) / n
        diverged_at = jnp.where((diverged_at < 0) & ~jnp.isfinite(task), epoch, diverged_at)
        return (edges, opt_state, epoch + 1, diverged_at), task

    def record(before, after, task):
        edges = before[0]
        penalty = applied_penalty(static, hyper.lam, hyper.eps, after[1], edges)
        return History(task + penalty, task, penalty, count_active(edges, hyper.eps))

    carry = (edges, opt.init(edges), jnp.int32(0), jnp.int32(-1))
    carry, history = run_epochs(step, carry, static.epochs, static.history_every, record)
    return TrainResult(carry[0], History.empty() if history is None else history, carry[3])


def _train_program(static: TrainConfig, x, y, key, hyper: Hyper) -> TrainResult:
    """What `train` runs: for the paper's plain setting (`fast.fast_path_ok`) the
    single-run fast kernel (`fast.train_single`: samples-last, flat parameters,
    a few XLA kernels per epoch; equal to `train_core` to float32 rounding),
    else `train_core`. The choice is static, made at trace time."""
    from . import fast  # here, not at the top: fast.py imports this module

    if fast.fast_path_ok(static):
        return fast._train_single_core(static, x, y, key, hyper, fast.SINGLE_UNROLL)
    return train_core(static, x, y, key, hyper)


_train_jit = jax.jit(_train_program, static_argnums=0)


def check_data(config: TrainConfig, x, y, name: str = "x") -> tuple[jax.Array, jax.Array]:
    """Validate `(x, y)` against `config` and return them as device arrays.

    `x` must be a non-empty finite float array `(n, layers[0])`; `y` must be
    `(n, layers[-1])` float for 'bce' (values in {0, 1}) and 'mse', or `(n,)`
    integer labels in `[0, layers[-1])` for 'cross_entropy'. `name` prefixes
    the argument names in error messages (e.g. 'x_test').
    """
    yname = "y" + name[1:]
    x = np.asarray(x)
    y = np.asarray(y)
    n_in, n_out = config.layers[0], config.layers[-1]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"{name}.shape={x.shape} is invalid: allowed (n_samples, {n_in}) for layers={config.layers}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}.shape={x.shape} is invalid: allowed at least one sample")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}.dtype={x.dtype} is invalid: allowed a floating dtype (float32 is used)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf at {int(np.sum(~np.isfinite(x)))} entries: allowed finite values only")
    if config.loss == "cross_entropy":
        if y.shape != (x.shape[0],):
            raise ValueError(f"{yname}.shape={y.shape} is invalid: allowed ({x.shape[0]},) integer labels for loss='cross_entropy'")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{yname}.dtype={y.dtype} is invalid: allowed an integer dtype for loss='cross_entropy'")
        if y.min() < 0 or y.max() >= n_out:
            raise ValueError(f"{yname} has labels in [{y.min()}, {y.max()}]: allowed 0..{n_out - 1}")
        return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    if y.shape != (x.shape[0], n_out):
        raise ValueError(f"{yname}.shape={y.shape} is invalid: allowed ({x.shape[0]}, {n_out}) for layers={config.layers}")
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise TypeError(f"{yname}.dtype={y.dtype} is invalid: allowed a numeric dtype")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{yname} contains NaN or inf: allowed finite values only")
    if config.loss == "bce" and not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{yname} has values other than 0 and 1: allowed {{0, 1}} for loss='bce'")
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def train(config: TrainConfig, x, y, key: PRNGKeyArray) -> TrainResult:
    """Train one net with the paper's method; validates inputs before tracing.

    Args:
      config: a `TrainConfig`.
      x: inputs `(n, layers[0])`; y: targets (see `check_data`).
      key: PRNG key (`jax.random.key(seed)`) for the initial edges.
    Returns:
      `TrainResult` with final edges, the history (`config.n_records` records)
      and `diverged_at`.

    For the paper's plain setting (`fast.fast_path_ok`) the run goes through
    the single-run fast kernel (`fast.train_single`, bitwise the same result);
    it equals `train_core`'s result to float32 rounding. Anything else runs
    `train_core`.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config={config!r} is invalid: allowed a TrainConfig")
    x, y = check_data(config, x, y)
    return _train_jit(config.static_part(), x, y, key, hyper_of(config))
