"""The fast engine: C configs of one static setting trained at once, configs on the LAST axis.

Every option of `TrainConfig` runs here (bias and skip edges, dropout, every
penalty rule, schedule and controller, minibatches, any depth, outputs,
activation and init, warm starts). What makes it fast is the layout, not a
second copy of the method:

* edges, Adam's moments and every optimizer-state leaf are `(..., C)`;
  activations are `(S, C)` per unit (`network.forward_layers` with trailing
  config axes: small layers unrolled into per-unit multiply-adds, larger ones
  one matrix product over all configs' units); data shared by the configs is
  `(S, n_in, 1)`, so XLA fuses a layer into a few loops vectorised over C;
  minibatches too: the order is the shuffle seed's, not the run's
  (`loop.epoch_batches`), so a chunk draws one order per epoch and its
  configs read the same batches;
* the forward pass is `network.forward_layers`, the loss
  `objective.weighted_task_loss_from_logits` (both the reference's own code);
* the update is `penalty.make_optimizer`'s optax transformation, the
  reference's, `jax.vmap`-ed over the config axis (in and out on axis −1);
* gradients come from `jax.grad` of that forward pass and loss
  (`kernel='autodiff'`) or, for nets with one hidden layer of relu/identity
  units, one output and bce/mse loss (the paper's nets, bias and skip edges
  included), from hand-written formulas that need half the per-sample sums
  (`kernel='two_layer'`, `two_layer.two_layer_grads`; chosen by profile, see
  benchmarks/README.md; the same formulas as two matrix products over every
  config's units for wider nets, `kernel='wide'`, `wide.wide_grads`), pinned
  against `jax.grad` and the reference by the conformance tests;
* the task loss is computed only on epochs that record history; other
  epochs set `diverged_at` by a cheap bound on the outputs (of the edges each
  step starts from) and compute the exact loss only when the bound cannot
  rule out a non-finite one (`_output_bound`), so `diverged_at` is the
  reference's.

No reduction crosses configs (the only matrix product batched over configs
reads shared data or is batched per config), so a config's result does not
depend on the other configs of its chunk, bitwise (with minibatches, warm
starts at different epochs in one chunk take per-config batches instead,
equal to float32 rounding); results equal the reference's to float32
rounding (some operations are ordered differently).
`kernels.select` decides which gradient kernel runs.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray

from .config import TrainConfig
from .layout import Layout
from .loop import (
    History,
    Hyper,
    TrainResult,
    TrainState,
    dropout_key,
    dropout_masks,
    dropped_out,
    epoch_batches,
    minibatch_plan,
    optimizer,
    run_epochs,
    start_state,
)
from .network import forward, is_wide
from .objective import weighted_task_loss_from_logits
from .penalty import applied_penalty
from .two_layer import two_layer_grads
from .wide import wide_grads

GRADIENT_KERNELS = ("two_layer", "wide", "autodiff")

def to_last(tree):
    """Move the leading config axis of every leaf to the end."""
    return jax.tree.map(lambda a: jnp.moveaxis(a, 0, -1), tree)


def to_first(tree):
    """Move the trailing config axis of every leaf to the front."""
    return jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0), tree)


def _autodiff_grads(static: TrainConfig, lay: Layout, edges, x, y, wts):
    """Task loss `(C,)` and its gradients (configs last) by `jax.grad`.
    Configs are independent, so the gradient of the sum over configs is each
    config's own gradient."""
    def total(e):
        task = weighted_task_loss_from_logits(forward(e, x, static.hidden_activation, lay), y, wts, static.loss)
        return jnp.sum(task), task

    (_, task), grads = jax.value_and_grad(total, has_aux=True)(edges)
    return task, list(grads)


def _vmapped_grads(static: TrainConfig, lay: Layout, edges, x, y, wts):
    """`_autodiff_grads` computed as `jax.vmap` over the configs of one config's
    `jax.grad` (XLA then puts the configs first inside: large layers become
    matrix products batched over the configs, the first one a single matrix
    product when the data are shared). For nets with a layer above
    `SMALL_LAYER_EDGES` edges this measured 2x faster than the configs-last
    columns (`[30,64,1]` + bias, 455 samples; benchmarks/README.md)."""
    w1 = None if wts is None else wts[:, 0]  # (S,): one config's sample weights

    def one(e, xb, yb):
        return weighted_task_loss_from_logits(forward(e, xb, static.hidden_activation, lay), yb, w1, static.loss)

    shared = lambda a: (a[..., 0], None) if a.shape[-1] == 1 else (a, -1)
    (xb, xa), (yb, ya) = shared(x), shared(y)
    task, grads = jax.vmap(jax.value_and_grad(one), in_axes=(-1, xa, ya), out_axes=(0, -1))(edges, xb, yb)
    return task, list(grads)


def _autodiff(static: TrainConfig, lay: Layout, edges, x, y, wts):
    """Task loss `(C,)` and gradients by `jax.grad`: configs-last columns for nets of
    small layers, `_vmapped_grads` for nets with a larger one."""
    return (_vmapped_grads if is_wide(lay) else _autodiff_grads)(static, lay, edges, x, y, wts)


_GRADS = {"two_layer": two_layer_grads, "wide": functools.partial(wide_grads, fallback=_autodiff), "autodiff": _autodiff}


# Cheap divergence check (epochs that record no history). `diverged_at` is the first
# epoch whose task loss is non-finite (the reference's definition). On the other epochs the engine
# computes, per config, a bound B on the output pre-activations from the weights: with
# b_0[j] = max_s |x[s, j]|, 1 for a bias node, b_{l+1}[i] = Σ_j |w̃_l[i, j]|·b_src[j] over the
# layer's sources (w̃ the weights the forward pass uses: w/(1−p) bounds dropout's w·mask/(1−p)),
# and |σ(z)| <= |z| (relu, identity), <= min(|z|, 1) (tanh), <= 1 (sigmoid), every
# |z_out| <= B = max_i b_L[i]. If B < T, where T is chosen so that m per-sample terms (m = samples ·
# outputs, or samples for cross-entropy) of size at most T + 1 (bce: softplus(z) − y·z <= |z| +
# log 2), (T + max|y|)² (mse) or 2T + log(n_out) + 1 (cross-entropy) sum to at most
# float32-max / 16, the loss of that epoch is finite, so the check cannot flag it. The factor 16
# covers float32 rounding of z and B. With minibatches B is checked at the edges every step starts
# from: a batch's terms are some of the n samples' terms, and the epoch's loss (the size-weighted
# mean of its batches' losses) sums at most n of them, so it is finite when every step's B < T.
# B >= T or non-finite is only "suspicious": then, if any not-yet-diverged config of the chunk is
# suspicious, the exact task loss is computed (`lax.cond`) and `diverged_at` updated from it exactly
# as the reference does. The cond reads other configs only to decide whether to do work, never to
# change a value; the updates never read the loss.
_F32_MAX = float(jnp.finfo(jnp.float32).max)


def _bound_threshold(x, y, loss: str, n_out: int):
    """The threshold T of the cheap divergence check (a float32 scalar), for the data `(x, y)`."""
    m = x.shape[0] * (1 if loss == "cross_entropy" else n_out)
    if loss == "bce":
        return jnp.float32(_F32_MAX / (16.0 * m) - 1.0)
    if loss == "mse":
        return jnp.float32(math.sqrt(_F32_MAX / (16.0 * m))) - jnp.max(jnp.abs(y))
    return jnp.float32((_F32_MAX / (16.0 * m) - 1.0 - math.log(n_out)) / 2.0)


def _output_bound(edges, xmax, lay: Layout, act: str, scale: float):
    """B `(C,)`: an upper bound on |output pre-activation| over the samples (see above).
    `xmax` `(n_in,)`; `scale` bounds the dropout multiplier (1/(1−p), 1 without dropout)."""
    bs = [xmax[:, None]]  # (n_l, 1 or C) per layer
    for l, w in enumerate(edges):
        parts = [bs[k] for k, _, _ in lay.blocks(l)] + ([jnp.ones((1, 1), w.dtype)] if lay.bias else [])
        c = w.shape[-1]
        src = jnp.concatenate([jnp.broadcast_to(p, (p.shape[0], c)) for p in parts])
        b = jnp.sum(jnp.abs(w) * src[None], axis=1) * jnp.float32(scale)  # (n_out, C)
        if l < lay.n_layers - 1:
            b = {"sigmoid": jnp.ones_like(b), "tanh": jnp.minimum(b, 1.0)}.get(act, b)
        bs.append(b)
    return jnp.max(bs[-1], axis=0)


def train_chunk(
    static: TrainConfig,
    x: Array,
    y: Array,
    keys: PRNGKeyArray,
    hyper: Hyper,
    kernel: str,
    init=None,
) -> TrainResult:
    """Train C configs at once: `keys` and `hyper` of shape `(C,)`, shared data `(x, y)`.

    Args:
      static: the shared static settings (`config.static_part()`).
      x: inputs `(n, n_in)` float32; y: targets `(n, n_out)` float32, or `(n,)` int32 labels.
      keys: one PRNG key per config (initial edges, dropout masks; the minibatch order is the
        shuffle seed's, `loop.epoch_batches`, shared by the configs).
      hyper: λ, lr, ε, each `(C,)` float32.
      kernel: the gradient kernel, one of `GRADIENT_KERNELS` (see `kernels.select`).
      init: per-config start states (`TrainState`s) or start edges (a fresh optimizer, epoch 0),
        leading axis C (default: edges drawn from each key inside this program).
    Returns:
      what `jax.vmap(reference.train_core)` returns: a `TrainResult` with the
      config axis first (edges `(C, n_out, n_in)`, history `(C, n_records)`,
      `diverged_at` `(C,)`, `state` the final `TrainState`s).
    """
    lay = static.layout
    C = keys.shape[0]
    grads_fn = _GRADS[kernel]
    fresh = not isinstance(init, TrainState)  # every config starts at epoch 0
    if fresh:
        init = jax.vmap(lambda k, h, e: start_state(static, k, h, e))(keys, hyper, init)
    state = to_last(init)
    update = jax.vmap(lambda h, g, s, e: optimizer(static, h).update(g, s, e), in_axes=(0, -1, -1, -1),
                      out_axes=-1)
    penalty_of = jax.vmap(lambda h, s, e: applied_penalty(static, h.lam, h.eps, s, e), in_axes=(0, -1, -1))
    n = x.shape[0]
    n_batches, _ = minibatch_plan(n, static.batch_size)
    x3 = x[:, :, None]
    y3 = y[:, None] if y.ndim == 1 else y[:, :, None]
    p = static.dropout
    streams = jax.vmap(dropout_key, out_axes=-1)(keys) if p > 0 else None  # (2, C) uint32

    def masks_of(edges, epoch):
        return None if p == 0 else dropout_masks(streams, epoch, edges, p)

    def apply(edges, opt_state, drop, xb, yb, wts):
        """One Adam step on the batch `(xb, yb)` (weights `wts`); its task loss `(C,)`."""
        if drop is not None:  # the dropped-out net, materialised once (XLA would re-fuse the mask hash
            # into every per-unit product that reads a weight)
            drop, eff = jax.lax.optimization_barrier((drop, dropped_out(edges, drop)))
        task, grads = grads_fn(static, lay, edges if drop is None else eff, xb, yb, wts)
        if drop is not None:
            grads = [g * m for g, m in zip(grads, drop)]
        updates, opt_state = update(hyper, tuple(grads), opt_state, edges)
        return optax.apply_updates(edges, updates), opt_state, task

    def minibatches(edges, opt_state, epoch, drop, shared, cheap=False):
        """One epoch of ceil(n/b) Adam steps, with its task loss `(C,)` (`cheap`: instead, whether the
        bound of the edges before some step is suspicious, `(C,)` bool; see `plain`). `shared`: every
        config is at the same epoch, so one order serves them all and the batches are shared data
        `(b, n_in, 1)` (the fast layout); else each config's batches `(b, n_in, C)` from its own order."""
        if shared:
            idx, weights = epoch_batches(static.shuffle_seed, epoch[0], n, static.batch_size)
            xs, ys = x3[idx], y3[idx]  # (n_batches, b, n_in, 1), the same for y
        else:
            idx, weights = jax.vmap(epoch_batches, in_axes=(None, 0, None, None), out_axes=-1)(
                static.shuffle_seed, epoch, n, static.batch_size)  # (n_batches, b, C)
            weights = weights[..., 0]
            xs = jnp.swapaxes(x[idx], -1, -2)  # (n_batches, b, n_in, C)
            ys = y[idx] if y.ndim == 1 else jnp.swapaxes(y[idx], -1, -2)

        def body(carry, following):  # a step on the batch in the carry; the following one goes into it, so
            # no fusion reads a dynamic slice of `batches` (XLA fused one into addition's transposing
            # fusion: 2x slower epochs, benchmarks/README.md)
            edges, opt_state, (xb, yb, wb) = carry
            new_edges, opt_state, task = apply(edges, opt_state, drop, xb, yb, wb[:, None])
            return (new_edges, opt_state, following), suspicious(edges) if cheap else task

        batches = (xs, ys, weights)
        first, following = jax.tree.map(lambda a: a[0], batches), jax.tree.map(lambda a: jnp.roll(a, -1, 0), batches)
        (edges, opt_state, _), tasks = jax.lax.scan(body, (edges, opt_state, first), following)
        if cheap:
            return edges, opt_state, jnp.any(tasks, axis=0)
        # times 1/n, not / n: XLA turns a division by a constant into this in some programs only,
        # which broke the bitwise equality of one- and two-device sweeps
        return edges, opt_state, jnp.sum(tasks * jnp.sum(weights, axis=1)[:, None], axis=0) * (1.0 / n)

    def step(carry, shared=True):
        """One epoch, with its task loss `(C,)`."""
        (edges, opt_state, epoch), diverged_at = carry
        drop = masks_of(edges, epoch)
        if n_batches == 1:
            edges, opt_state, task = apply(edges, opt_state, drop, x3, y3, None)
        else:
            edges, opt_state, task = minibatches(edges, opt_state, epoch, drop, shared)
        diverged_at = jnp.where((diverged_at < 0) & ~jnp.isfinite(task), epoch, diverged_at)
        return (TrainState(edges, opt_state, epoch + 1), diverged_at), task

    xmax = jnp.max(jnp.abs(x), axis=0)
    threshold = _bound_threshold(x, y, static.loss, static.layers[-1])  # of all n samples: holds for any batch

    def suspicious(edges):
        return ~(_output_bound(edges, xmax, lay, static.hidden_activation, 1.0 / (1.0 - p)) < threshold)

    def plain(carry, shared=True):
        """An epoch that records nothing; `diverged_at` by the cheap check (the bound of the edges each
        step starts from; minibatch epochs then skip the per-step task loss: XOR 1.7x, addition 1.2x)."""
        (edges, opt_state, epoch), diverged_at = carry
        drop = masks_of(edges, epoch)
        if n_batches == 1:
            new_edges, new_opt, _ = apply(edges, opt_state, drop, x3, y3, None)
            flagged = suspicious(edges)
        else:
            new_edges, new_opt, flagged = minibatches(edges, opt_state, epoch, drop, shared, cheap=True)

        def exact(d):  # the epoch's task loss (minibatches: its steps again), as the reference computes it
            if n_batches == 1:
                task = weighted_task_loss_from_logits(forward(dropped_out(edges, drop), x3, static.hidden_activation,
                                                              lay), y3, None, static.loss)
            else:
                task = minibatches(edges, opt_state, epoch, drop, shared)[2]
            return jnp.where((d < 0) & ~jnp.isfinite(task), epoch, d)

        diverged_at = jax.lax.cond(jnp.any(flagged & (diverged_at < 0)), exact, lambda d: d, diverged_at)
        return TrainState(new_edges, new_opt, epoch + 1), diverged_at

    def record(before, after, task):
        edges = before[0].edges
        penalty = penalty_of(hyper, after[0].opt_state, edges)
        active = sum(jnp.sum(jnp.abs(w) >= hyper.eps[None, None], axis=(0, 1), dtype=jnp.int32) for w in edges)
        return History(task + penalty, task, penalty, active)

    def run(shared, carry):
        return run_epochs(functools.partial(step, shared=shared), carry, static.epochs, static.history_every,
                          record, plain=functools.partial(plain, shared=shared))

    carry = (state, jnp.full((C,), -1, jnp.int32))
    if n_batches == 1 or fresh or C == 1:  # every config at the same epoch
        (state, diverged_at), history = run(True, carry)
    else:  # warm starts may be at different epochs (never within one sweep's states): decided at run time
        uniform = jnp.all(state.epoch == state.epoch[0])
        (state, diverged_at), history = jax.lax.cond(uniform, functools.partial(run, True),
                                                     functools.partial(run, False), carry)
    history = History.empty(C) if history is None else History(*(jnp.moveaxis(h, 0, -1) for h in history))
    state = to_first(state)
    return TrainResult(state.edges, history, diverged_at, state)
