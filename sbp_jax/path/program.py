"""The compiled λ path: fresh runs, warm-up steps, then rising λ, one `lax.scan` around the engine.

A path trains C runs (one per seed) through a sequence of λ values, each
step `epochs_per_step` epochs of the ordinary method (`engine.train_chunk`,
configs last, every option) warm-started from the previous step's
`TrainState`. The steps are `rel[k]·top`: leading zeros are unpenalised
warm-up steps, then a geometric grid. λ is a traced array in `loop.Hyper` and
`top` is traced too (set inside the program from glmnet's estimate when not
given), so a path of any λ values is one compiled program per shape; the
runs' start (fresh from their keys, or given states to continue a path) is
chosen inside it as well, so a second call with the same shapes compiles
nothing.

Per step and run it keeps (`PathRecords`): λ, the metrics of the *pruned*
net (|w| < ε set to 0) on train / validation / test, active and effective
edges, live nodes per layer, the selected inputs (a boolean mask), glmnet's
estimate and the edges themselves. Memory: 4·S·C·E bytes of edges (S steps,
C runs, E possible edges: 105 × 300 × 17 ≈ 2 MB for XOR [2,4,1] with bias;
105 × 10 × 2,400 ≈ 10 MB for a [64,32,10] net) plus a few numbers per step
and run.

Adam between steps (`adam=`): 'reset' starts every step from a fresh Adam
state at the previous step's edges (the count restarts, so the first steps
of each λ are full-size); 'carry' keeps the moments and the count. The epoch
counter (minibatch order, dropout masks) always runs on.
"""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..chunks import spec_of
from ..config import TrainConfig
from ..engine import train_chunk
from ..loop import Hyper, TrainState, fresh_state, optimizer
from ..metrics import evaluate
from ..network import Edges, init_edges_batch
from ..objective import task_loss
from ..structure import analyse, live_nodes, masked, masks

ADAM_MODES = ("reset", "carry")


class PathRecords(NamedTuple):
    """What a path keeps per step (S) and run (C), all of the pruned net (|w| < ε zeroed)."""

    lam: np.ndarray  # (S,) float32, rising (0 on the warm-up steps)
    train: dict  # metric -> (S, C) float32, pruned net on the training split
    val: dict  # metric -> (S, C) float32 on the validation split ({} when there is none)
    test: dict  # metric -> (S, C) float32 on the test split
    active: np.ndarray  # (S, C) int32: #{|w| >= ε}
    effective: np.ndarray  # (S, C) int32: active edges on an input→output path
    live: np.ndarray  # (S, C, L+1) int32: live ordinary nodes per layer
    features: np.ndarray  # (S, C, n_in) bool: input i still on an active path to an output
    edges: tuple  # per layer (S, C, n_out, n_in) float32: the (unpruned) edges after each step
    diverged: np.ndarray  # (S, C) bool: the loss went non-finite at or before this step
    estimate: np.ndarray  # (S, C) float32: glmnet's rule (max |∂L_task/∂w|) at the step's start


def _evaluate_step(static: TrainConfig, data, edges: Edges, eps) -> dict:
    """The per-run record of one step (`edges` with a leading run axis C, `eps` `(C,)`)."""
    x, y, xv, yv, xt, yt = data
    ev = functools.partial(evaluate, loss=static.loss, hidden_activation=static.hidden_activation)
    n_in = static.layers[0]

    def one(e, ep):
        pruned = masked(e, ep)
        s = analyse(e, ep, static.bias)
        return dict(train=ev(pruned, x, y), val=ev(pruned, xv, yv) if xv.shape[0] else {}, test=ev(pruned, xt, yt),
                    active=jnp.sum(s.active_per_layer), effective=jnp.sum(s.effective_per_layer),
                    live=s.live_per_layer, features=live_nodes(masks(e, ep), static.bias)[0][:n_in])

    return jax.vmap(one)(edges, eps)


def _reset_adam(static: TrainConfig, state: TrainState, hyper: Hyper) -> TrainState:
    """`state` with a fresh optimizer state at its edges (the epoch counter kept)."""
    opt = jax.vmap(lambda h, e: optimizer(static, h).init(e))(hyper, state.edges)
    return state._replace(opt_state=opt)


def _estimate(static: TrainConfig, edges: Edges, x, y):
    """glmnet's rule per run, `(C,)`: max over edges of |∂L_task/∂w| at `edges` (leading axis C)."""
    loss = functools.partial(task_loss, loss=static.loss, hidden_activation=static.hidden_activation)
    grads = jax.vmap(jax.grad(loss), in_axes=(0, None, None))(edges, x, y)
    C = grads[0].shape[0]
    return jnp.max(jnp.stack([jnp.max(jnp.abs(g).reshape(C, -1), axis=1) for g in grads]), axis=0)


@functools.lru_cache(maxsize=None)
def path_program(static: TrainConfig, kernel: str, adam: str):
    """The jitted path `(data, keys, state, fresh, rel, top, headroom, lr, eps) -> (state, records dict)`.

    Args (C runs, S steps):
      data: `(x, y, x_val, y_val, x_test, y_test)` device arrays.
      keys: `(C,)` PRNG keys; state: the runs' start `TrainState`s (leading axis
        C); when `fresh` (a bool scalar) is True only its edges are read (the
        keys' initial edges, `start_template`) and each run starts from a fresh
        optimizer state there.
      rel: `(S,)` float32, step k trains at λ_k = rel[k]·top; rel = 0 is an
        unpenalised (warm-up) step.
      top: float32 scalar; <= 0 means "set it at the first step to headroom ×
        the median over the runs of glmnet's estimate at the starting edges" (`_estimate`).
      lr, eps: `(C,)` float32.
    Returns:
      the final states and the records (leading axis S): `lam` `(S,)`, the
      per-run `estimate` `(S, C)` (glmnet's rule at the step's start) and the
      `PathRecords` fields. `static` has `epochs` = epochs per step; one
      compile per (static, kernel, adam, shapes), whatever the values."""

    def sbp_path(data, keys, state, fresh, rel, top, headroom, lr, eps):
        x, y = data[0], data[1]
        C = keys.shape[0]
        zero = Hyper(jnp.zeros((C,), jnp.float32), lr, eps)
        state = jax.lax.cond(fresh, lambda s: jax.vmap(lambda k, h, e: fresh_state(static, k, h, e))(keys, zero, s.edges),
                             lambda s: s, state)

        def step(carry, r):
            state, diverged, top = carry
            est = _estimate(static, state.edges, x, y)
            top = jnp.where(top <= 0, headroom * jnp.median(est), top)  # first step: from the starting edges
            hyper = zero._replace(lam=jnp.broadcast_to(r * jnp.maximum(top, 0.0), (C,)))
            if adam == "reset":
                state = _reset_adam(static, state, hyper)
            res = train_chunk(static, x, y, keys, hyper, kernel, init=state)
            diverged = diverged | (res.diverged_at >= 0)
            rec = _evaluate_step(static, data, res.state.edges, eps)
            rec.update(edges=res.state.edges, diverged=diverged, lam=hyper.lam[0], estimate=est)
            return (res.state, diverged, top), rec

        (state, _, _), recs = jax.lax.scan(step, (state, jnp.zeros((C,), bool), top), rel)
        return state, recs

    return jax.jit(sbp_path)


def start_template(static: TrainConfig, seeds: np.ndarray, timing: dict | None = None) -> TrainState:
    """The `state` argument of a fresh path for `seeds` `(C,)`: the seeds' initial edges
    (`network.init_edges_batch`, drawn outside the path program; `timing` as there), zeros
    elsewhere."""
    edges = init_edges_batch(seeds, static.layers, static.init, bias=static.bias, bias_init=static.bias_init,
                             skip=static.skip, timing=timing)
    hyper = Hyper(*(jax.ShapeDtypeStruct((len(seeds),), jnp.float32),) * 3)
    shapes = jax.eval_shape(jax.vmap(lambda h, e: fresh_state(static, jax.random.key(0), h, e)), hyper, edges)
    return jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)._replace(edges=edges)


def relative_grid(n_steps: int, ratio: float, warmup_steps: int = 0, first: int = 0) -> np.ndarray:
    """`rel` of `path_program`: `warmup_steps` zeros, then `n_steps` values
    ratio^(j − n_steps + 1 + first) (float32): the top is reached at j = n_steps − 1
    of the first block (`first` = 0); later blocks (`first` = n_steps·b) continue upwards."""
    up = np.float64(ratio) ** (np.arange(n_steps) - (n_steps - 1) + first)
    return np.concatenate([np.zeros(warmup_steps), up]).astype(np.float32)


_COMPILED: dict = {}


def compiled_path(static: TrainConfig, kernel: str, adam: str, args: tuple):
    """`path_program(static, kernel, adam)` compiled ahead of time for `args`' shapes:
    `(executable, seconds spent compiling now)` (0 when this process compiled it before)."""
    key = (static, kernel, adam, spec_of(args))
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    t0 = time.perf_counter()
    _COMPILED[key] = path_program(static, kernel, adam).lower(*args).compile()
    return _COMPILED[key], time.perf_counter() - t0


def timed(fn, *args):
    """`(fn(*args) with every leaf on the host, seconds)`."""
    t0 = time.perf_counter()
    out = jax.tree.map(np.asarray, fn(*args))
    return out, time.perf_counter() - t0
