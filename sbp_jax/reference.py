"""The reference trainer: the method as plain JAX + optax, the executable specification.

`train_core` is one run written the obvious way: the forward pass of
`network.py`, the task loss of `objective.py` differentiated by `jax.grad`,
and the optimizer of `penalty.make_optimizer` (the L1 rule chained with
Adam) applied by optax, one `lax.scan` over epochs (`loop.run_epochs`).
Every fast kernel (`engine.py`, `single.py`) is pinned against it by the
conformance tests (`tests/test_conformance.py`); `kernels.select` never
picks it, but `train(..., kernel="reference")` and
`run_grid(..., kernel="reference")` run it (a sweep vmaps it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .config import TrainConfig
from .loop import (History, Hyper, TrainResult, TrainState, count_active, dropout_key, dropout_masks, dropped_out,
                   epoch_batches, minibatch_plan, optimizer, run_epochs, start_state)
from .network import forward
from .objective import task_loss, weighted_task_loss_from_logits
from .penalty import applied_penalty


def _weighted_task_loss(edges, x, y, w, *, loss: str, hidden_activation: str):
    """Task loss averaged over the samples with weight 1 (`w` is a 0/1 mask)."""
    return weighted_task_loss_from_logits(forward(edges, x, hidden_activation), y, w, loss)


def _dropped(fn, drop):
    """`fn` of the edges multiplied by the dropout masks `drop` (None: `fn` itself), so
    that its gradient in the edges is mask · (the gradient at the dropped-out net)."""
    return fn if drop is None else lambda e, *a, **kw: fn(dropped_out(e, drop), *a, **kw)


def train_core(
    static: TrainConfig,
    x: Float[Array, "n n_in"],
    y: Array,
    key: PRNGKeyArray,
    hyper: Hyper,
    init: TrainState | None = None,
) -> TrainResult:
    """One training run as a pure function (not jitted; vmap-able over key, hyper and init).

    Args:
      static: the config; only its static fields are read (λ, lr, ε come from
        `hyper`), so pass `config.static_part()` as a jit static argument.
      x: inputs `(n, layers[0])` float32; y: targets (see `objective`).
      key: PRNG key for the initial edges and the dropout masks (the minibatch order
        comes from `static.shuffle_seed`, `loop.epoch_batches`).
      hyper: λ, lr, ε as float32 scalars.
      init: the state to start from, or edges to start fresh from (default: drawn from `key`;
        `loop.start_state`).
    Returns:
      the `TrainResult`, its `state` the final `TrainState`.
    """
    opt = optimizer(static, hyper)
    state = start_state(static, key, hyper, init)
    kw = dict(loss=static.loss, hidden_activation=static.hidden_activation)
    n = x.shape[0]
    n_batches, _ = minibatch_plan(n, static.batch_size)
    stream = dropout_key(key)

    def step(carry):
        (edges, opt_state, epoch), diverged_at = carry
        # static: p = 0 traces exactly the program without dropout
        drop = dropout_masks(stream, epoch, edges, static.dropout) if static.dropout > 0 else None
        grad_fn = jax.value_and_grad(_dropped(task_loss, drop))
        wgrad_fn = jax.value_and_grad(_dropped(_weighted_task_loss, drop))

        def minibatch(carry, batch_in):
            edges, opt_state = carry
            idx, w = batch_in
            task, grads = wgrad_fn(edges, x[idx], y[idx], w, **kw)
            updates, opt_state = opt.update(grads, opt_state, edges)
            return (optax.apply_updates(edges, updates), opt_state), task

        if n_batches == 1:  # full batch: the paper's setting, data in its given order
            task, grads = grad_fn(edges, x, y, **kw)
            updates, opt_state = opt.update(grads, opt_state, edges)
            edges = optax.apply_updates(edges, updates)
        else:
            idx, weights = epoch_batches(static.shuffle_seed, epoch, n, static.batch_size)
            (edges, opt_state), tasks = jax.lax.scan(minibatch, (edges, opt_state), (idx, weights))
            task = jnp.sum(tasks * jnp.sum(weights, axis=1)) / n
        diverged_at = jnp.where((diverged_at < 0) & ~jnp.isfinite(task), epoch, diverged_at)
        return (TrainState(edges, opt_state, epoch + 1), diverged_at), task

    def record(before, after, task):
        edges = before[0].edges
        penalty = applied_penalty(static, hyper.lam, hyper.eps, after[0].opt_state, edges)
        return History(task + penalty, task, penalty, count_active(edges, hyper.eps))

    carry = (state, jnp.int32(-1))
    (state, diverged_at), history = run_epochs(step, carry, static.epochs, static.history_every, record)
    return TrainResult(state.edges, History.empty() if history is None else history, diverged_at, state)
