"""What every training loop shares: traced hyper-parameters, the run state,
the history records, the epoch loop, the minibatch plan and the dropout masks.

The reference trainer (`reference.train_core`) and the fast engine
(`engine.py`) both build on these, so an epoch means the same thing in each:

* Minibatches (`config.batch_size = b`, 0 < b < n): an epoch is ceil(n/b)
  Adam steps over the order `jax.random.permutation(fold_in(fold_in(
  key(config.shuffle_seed), SHUFFLE_STREAM), epoch), n)` (`epoch_batches`), a
  pure function of the shuffle seed and the epoch: every run with the same
  shuffle seed sees the same batches (like the data; the run's key draws the
  initial edges and the dropout masks), so a sweep's configs share their batch
  data and a config's result does not depend on which run it is. The ragged
  last batch is padded to b with sample 0 and a weight mask of zeros: every
  sample is used exactly once per epoch and every step is the mean loss over
  its real samples. b = 0 or b >= n is full batch.
* Structural dropout (`config.dropout = p > 0`): in epoch t every edge is kept
  with probability 1 − p by a mask hashed from the run's dropout stream
  (`fold_in(key, DROPOUT_STREAM)`), t and the edge (`dropout_masks`); the loss and its gradient are those of the net with edges
  `w·mask/(1−p)`. Dropped edges get no task gradient that epoch; the penalty
  still acts on them. One mask per epoch, shared by its minibatches.
* Warm starts: a run starts from a `TrainState` (edges, optimizer state,
  epoch). A fresh run is `TrainState(init_edges(key), opt.init, 0)`;
  continuing a run passes its final state, so N epochs then N more equal 2N
  epochs (the epoch index drives the shuffles, the masks and Adam's count).
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .config import TrainConfig
from .network import Edges, init_edges
from .penalty import make_optimizer

SHUFFLE_STREAM = 0x5348  # fold_in tag: the minibatch-order stream of the shuffle seed's key
DROPOUT_STREAM = 0x4450  # fold_in tag: the structural-dropout stream of a run's key


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


class TrainState(NamedTuple):
    """Where a run stands: enough to continue it exactly (a leading config axis in a sweep)."""

    edges: Edges  # `(n_{l+1}, n_l)` float32 each
    opt_state: Any  # the state of `penalty.make_optimizer`'s transformation for the run's config
    epoch: Int[Array, ""]  # epochs done so far, int32


class TrainResult(NamedTuple):
    edges: Edges  # final edges, `(n_{l+1}, n_l)` float32 each
    history: History
    diverged_at: Int[Array, ""]  # first epoch (0-based) with a non-finite loss; -1 if none
    state: TrainState | None = None  # the final state (for warm starts), when asked for


def hyper_of(config: TrainConfig) -> Hyper:
    """`config`'s λ, lr, ε as float32 scalar arrays."""
    return Hyper(*(jnp.asarray(v, jnp.float32) for v in (config.lam, config.lr, config.eps)))


def count_active(edges: Edges, eps) -> Int[Array, ""]:
    """Number of edges with |w| >= ε (int32 scalar)."""
    return sum(jnp.sum(jnp.abs(w) >= eps, dtype=jnp.int32) for w in edges)


def minibatch_plan(n: int, batch_size: int) -> tuple[int, int]:
    """`(n_batches, batch)` of one epoch over n samples: `(1, n)` for full
    batch (batch_size 0 or >= n), else `(ceil(n / b), b)`."""
    if batch_size == 0 or batch_size >= n:
        return 1, n
    return -(-n // batch_size), batch_size


def epoch_batches(shuffle_seed: int, epoch, n: int, batch_size: int):
    """Sample indices `(n_batches, batch)` int32 of epoch `epoch` and their 0/1
    weights `(n_batches, batch)` float32 (0 on the padding of the last batch).

    The order is `jax.random.permutation` keyed by `fold_in(fold_in(
    key(shuffle_seed), SHUFFLE_STREAM), epoch)`: it depends on the shuffle seed
    (`config.shuffle_seed`, static) and the epoch (traced) only, never on a
    run's key, so C runs at the same epoch share it. One order per epoch for a
    whole sweep chunk instead of one per run: the per-run permutation was a
    sort per config-epoch (~12 µs for 100 samples on XLA:CPU, 40x an XOR
    config-epoch) and made the batch data per-config; benchmarks/README.md."""
    n_batches, batch = minibatch_plan(n, batch_size)
    pad = n_batches * batch - n
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(shuffle_seed), SHUFFLE_STREAM), epoch)
    perm = jax.random.permutation(key, n)
    idx = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)]).reshape(n_batches, batch)
    weights = (jnp.arange(n_batches * batch) < n).astype(jnp.float32).reshape(n_batches, batch)
    return idx, weights


def _fmix32(x):
    """MurmurHash3's 32-bit finaliser: a bijection of uint32 with full avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def dropout_key(key: PRNGKeyArray) -> Array:
    """The run's dropout stream, `(2,)` uint32: the key data of `fold_in(key, DROPOUT_STREAM)`
    (computed once per run; `dropout_masks` hashes it with the epoch and the edge index)."""
    return jax.random.key_data(jax.random.fold_in(key, DROPOUT_STREAM)).reshape(-1)[-2:]


def dropout_masks(stream: Array, epoch, edges: Edges, p: float) -> Edges:
    """Epoch `epoch`'s structural-dropout multipliers: per edge 1/(1−p) with
    probability 1 − p, else 0 (float32, shaped like `edges`).

    `stream` is `dropout_key(key)`, `(2,)`; C runs at once pass `(2, C)`
    streams, `(C,)` epochs and configs-last edges `(n_out, n_in, C)`. Each edge's draw is a counter-based hash
    of (stream, epoch, edge index): three rounds of `_fmix32` keyed by the
    stream's two words, compared with round((1−p)·2³²). The masks are a pure
    function of the run's key and the epoch, independent across edges and
    epochs to the hash's quality, and ~20x cheaper than drawing them with
    `jax.random.bernoulli` (0.016 vs 0.34 µs per config-epoch for XOR's 12
    edges on a 2-core CPU, where threefry would cost as much as the rest of
    the epoch; benchmarks/README.md)."""
    trail = stream.shape[1:]
    sizes = [w.shape[0] * w.shape[1] for w in edges]
    i = jnp.arange(sum(sizes), dtype=jnp.uint32).reshape((-1,) + (1,) * len(trail))
    k0, k1 = stream[0][None], stream[1][None]
    t = (jnp.asarray(epoch).astype(jnp.uint32) * jnp.uint32(0x9E3779B9))[None]
    x = _fmix32(i ^ k0)
    x = _fmix32(x ^ t ^ k1)
    x = _fmix32(x + k0)
    keep = x < jnp.uint32(min(round((1.0 - p) * 2.0**32), 2**32 - 1))
    scale = jnp.float32(1.0 / (1.0 - p))
    parts = jnp.split(keep.astype(jnp.float32) * scale, list(itertools.accumulate(sizes))[:-1])
    return tuple(m.reshape(w.shape) for m, w in zip(parts, edges))


def dropped_out(edges: Edges, drop: Edges | None) -> Edges:
    """The net an epoch's forward pass uses: `edges` times the dropout multipliers `drop` (None: `edges`)."""
    return edges if drop is None else tuple(w * m for w, m in zip(edges, drop))


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


def optimizer(static: TrainConfig, hyper: Hyper):
    """The run's optax transformation (`penalty.make_optimizer` with traced λ, lr, ε)."""
    return make_optimizer(hyper.lam, hyper.lr, static, hyper.eps)


def start_state(static: TrainConfig, key: PRNGKeyArray, hyper: Hyper, init: TrainState | Edges | None) -> TrainState:
    """The state a run starts from, for every kernel: `init` itself when it is a `TrainState` (a
    warm start that continues a run), else `fresh_state` from the edges `init` (None: drawn from
    `key`). Callers draw fresh edges outside their training program (`network.init_edges_batch`):
    a program without the random draws compiles in about half the time."""
    return init if isinstance(init, TrainState) else fresh_state(static, key, hyper, init)


def fresh_state(static: TrainConfig, key: PRNGKeyArray, hyper: Hyper, edges: Edges | None = None) -> TrainState:
    """The state a run starts from: `edges` (default: `init_edges(key)` of the
    config's layout and scheme), a fresh optimizer state, epoch 0."""
    if edges is None:
        edges = init_edges(key, static.layers, static.init, bias=static.bias, bias_init=static.bias_init,
                           skip=static.skip)
    return TrainState(tuple(edges), optimizer(static, hyper).init(tuple(edges)), jnp.int32(0))
