"""Fast kernels: C small nets trained at once, configs on the LAST axis (sweeps), and one net (`train_single`).

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
  configs, and the only matrix product is batched over the configs (one small
  product per config, `_two_layer_grads`; a GEMM over the config axis is not
  used), so a config's result does not depend on which configs share its
  chunk (bitwise, and on 1 or 2 devices with the same chunk); across chunk
  sizes it is equal to float32 rounding (XLA may pick other kernels for other
  array shapes: bitwise for the sizes `tests/test_fast.py` checks, not all);
* nets with one hidden layer and one output (the paper's) take the gradients
  from H·K sums instead of H·K + H (`_two_layer_grads`);
* the task loss is computed only on epochs that record history; the other
  epochs set `diverged_at` by a cheap bound on the outputs, falling back to the
  exact loss when the bound cannot rule out a non-finite one (see
  `_output_bound`), so `diverged_at` and the weights are unchanged by this.

The results agree with `train_core` to float32 rounding (not bitwise: the
order of some floating-point operations differs).

`train_single` is the same method for ONE config (what `train.train` returns):
samples on the last axis, the edges and Adam moments as flat vectors, all
gradients and the task loss from one reduction over the samples, so an epoch
is ~15 small XLA kernels instead of the generic path's ~30 (2x faster on XOR,
see benchmarks/README.md). Deterministic run to run; another `unroll` is
another compiled program (float32 rounding apart). `fast_path_ok` says whether
a config is one this kernel implements exactly; any other setting, including
fields added to `TrainConfig` later, falls back to the generic path.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .config import TrainConfig
from .network import SMALL_LAYER_EDGES, init_edges
from .train import History, Hyper, TrainResult, run_epochs

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


def _forward(edges, x, act: str):
    """Per-unit activations `hs` (inputs of each layer) and pre-activations `zs` of C nets."""
    L = len(edges)
    hs = [[x[:, j:j + 1] for j in range(x.shape[1])]]  # (S, 1) columns, broadcast over C
    zs = []
    for l, w in enumerate(edges):
        z = [sum(_row(w[i, j]) * hs[l][j] for j in range(w.shape[1])) for i in range(w.shape[0])]
        if l < L - 1:
            z = list(jax.lax.optimization_barrier(z))  # materialise once, not in every consumer
            hs.append([jnp.maximum(c, 0.0) for c in z] if act == "relu" else z)
        zs.append(z)
    return hs, zs


def _pointwise(out, y, loss: str, part: str):
    """Per sample and output, elementwise (any layout, `y` broadcast like `out`): the
    task loss term (`part='loss'`) or its derivative in the output pre-activation
    (`part='delta'`), before the mean over samples and outputs."""
    if loss == "bce":
        return jax.nn.softplus(out) - y * out if part == "loss" else jax.nn.sigmoid(out) - y
    if loss == "mse":
        return jnp.square(out - y) if part == "loss" else 2.0 * (out - y)
    raise NotImplementedError(loss)


def _task_from_out(out, y, loss: str):
    """Mean task loss `(C,)` from the output pre-activations (a list of `(S, C)`)."""
    n = out[0].shape[0] * len(out)
    per = [_pointwise(o, y[:, k:k + 1], loss, "loss") for k, o in enumerate(out)]
    return sum(jnp.sum(p, axis=0) for p in per) / n


def _task_only(edges, x, y, loss: str, act: str):
    """Mean task loss `(C,)` of C nets (a forward pass, no gradients)."""
    return _task_from_out(_forward(edges, x, act)[1][-1], y, loss)


# Hidden units from which a two-layer mse net takes the batched matrix product in `_two_layer_grads`
# (measured, 2-core CPU, `run_grid` 8,192 configs x 300 epochs, config-epochs/s, per-unit sums vs
# batched product: [2,8,1] mse 200 samples 1.1e6 vs 1.7e6, 100 samples 2.0e6 vs 2.8e6; [2,4,1] mse
# 2.7e6 vs 2.3e6; bce [2,4,1] 6.2e6 vs 2.9e6, [2,8,1] 3.2e6 vs 2.1e6, [2,16,1] 1.6e6 vs 1.0e6).
GEMM_MIN_HIDDEN = 8


def _two_layer_grads(edges, x, y, loss: str, act: str, with_task: bool = True):
    """`_task_and_grads` for nets with one hidden layer and ONE output (the
    paper's XOR and addition nets), with half the per-sample sums. Hidden unit
    j is h_j = m_j·z_j with z_j = Σ_k w0[j,k]·x_k and m_j = 1[z_j > 0] (relu;
    1 for identity), so with the output delta δ (per sample) and
    A[j,k] = Σ_s δ·m_j·x_k (H·K sums over the samples) the gradients are
    dW0[j,k] = w1[j]·A[j,k] and dW1[j] = Σ_s δ·h_j = Σ_k w0[j,k]·A[j,k]
    (instead of H·K + H sums). Equal to `_task_and_grads` up to float32
    rounding. A is computed per config in either formulation (a config's
    result does not depend on the other configs of its chunk):

    * per unit: H·K reductions over the samples of `(S, C)` products;
    * mse with >= `GEMM_MIN_HIDDEN` hidden units: one matrix product per
      config, masks `(C, H, S)` times `δ·x` `(C, S, K)`, batched over the
      configs. XLA recomputes the cheap mse delta inside every fusion that
      reads it, so the per-unit form recomputes the forward pass H times;
      the product reads δ only through the K columns of δ·x (see the
      measurements at `GEMM_MIN_HIDDEN`). bce's delta (a sigmoid) is computed
      once, and there the per-unit sums are faster."""
    w0, w1 = edges  # (H, K, C), (1, H, C)
    H, K = w0.shape[:2]
    n = x.shape[0]
    hs, zs = _forward(edges, x, act)
    xc, z, out = hs[0], zs[0], zs[1][0]  # input columns (S, 1); hidden and output pre-activations (S, C)
    d = _pointwise(out, y[:, 0:1], loss, "delta") / n
    task = _task_from_out([out], y, loss) if with_task else None
    if act != "relu":  # m_j = 1: A[j, k] = Σ_s δ·x_k for every j
        A = jnp.broadcast_to(jnp.stack([jnp.sum(d * c, axis=0) for c in xc])[None], w0.shape)
    elif loss == "mse" and H >= GEMM_MIN_HIDDEN:
        masks = jnp.stack([(c > 0).astype(d.dtype) for c in z])  # (H, S, C)
        dx = jnp.stack([d * c for c in xc], axis=-1)  # (S, C, K)
        # one (H, S) x (S, K) product per config; this output order measured 1.15x faster than
        # "->hkc" with two devices (XLA's layouts for the batched operands differ)
        A = jnp.einsum("hsc,sck->chk", masks, dx, precision=jax.lax.Precision.HIGHEST).transpose(1, 2, 0)
    else:
        g = [jnp.where(c > 0, d, 0.0) for c in z]
        A = jnp.stack([jnp.stack([jnp.sum(gj * c, axis=0) for c in xc]) for gj in g])  # (H, K, C)
    return task, [w1[0][:, None, :] * A, jnp.sum(w0 * A, axis=1)[None]]


def _task_and_grads(edges, x, y, loss: str, act: str, with_task: bool = True):
    """Mean task loss `(C,)` (None unless `with_task`) and its gradients
    `(n_out, n_in, C)` for C nets. The gradients do not depend on `with_task`.
    One hidden layer and one output: `_two_layer_grads`."""
    L = len(edges)
    if L == 2 and edges[1].shape[0] == 1:
        return _two_layer_grads(edges, x, y, loss, act, with_task)
    hs, zs = _forward(edges, x, act)
    n_out = edges[-1].shape[0]
    n = x.shape[0] * n_out
    out = zs[-1]
    d = [_pointwise(out[k], y[:, k:k + 1], loss, "delta") / n for k in range(n_out)]
    task = _task_from_out(out, y, loss) if with_task else None
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


# Cheap divergence check (epochs that record no history). `diverged_at` is the first epoch whose
# task loss is non-finite (train_core's definition). Computing that loss every epoch (softplus of
# every sample for bce, a reduction over samples) cost about as much as the rest of the step, so
# on the other epochs the kernel only computes, per config, a bound B on the output
# pre-activations from the weights: with b_0[j] = max_s |x[s, j]| and
# b_{l+1}[i] = Σ_j |w_l[i, j]|·b_l[j] (|relu(z)| <= |z|), every |z_out| <= B = max_i b_L[i]
# (O(#edges) per config instead of O(#edges · #samples)). If B < T, where T is chosen so that
# #samples·#outputs per-sample terms of size at most T + 1 (bce: softplus(z) − y·z <= |z| + log 2)
# or (T + max|y|)² (mse) sum to at most float32-max / 16, every forward quantity and the loss are
# finite: the loss of that epoch would be finite, so the check cannot flag it. The factor 16
# covers float32 rounding of both z and B (relative errors ~1e-7 · depth · width). B >= T or B
# NaN/inf (NaN/inf weights) is only "suspicious": then, if any not-yet-diverged config of the
# chunk is suspicious, the exact task loss of that epoch is computed (`lax.cond`, the same
# forward pass and formula as on history epochs) and `diverged_at` is updated from it exactly as
# before. So `diverged_at` is the same as computing the loss every epoch; the cond only skips work
# whose outcome is known (it reads other configs of the chunk only to decide whether to do work,
# never to change a value). The weight updates do not read the task loss, so they are unchanged.
_F32_MAX = float(jnp.finfo(jnp.float32).max)


def _bound_threshold(x, y, loss: str, n_out: int):
    """The threshold T of the cheap divergence check (a float32 scalar), for the data `(x, y)`."""
    m = x.shape[0] * n_out
    if loss == "bce":
        return jnp.float32(_F32_MAX / (16.0 * m) - 1.0)
    if loss == "mse":
        return jnp.float32(math.sqrt(_F32_MAX / (16.0 * m))) - jnp.max(jnp.abs(y))
    raise NotImplementedError(loss)


def _output_bound(edges, xmax):
    """B `(C,)`: an upper bound on |output pre-activation| over the samples (see above)."""
    b = xmax[:, None]  # (n_in, 1)
    for w in edges:
        b = jnp.sum(jnp.abs(w) * b[None, :, :], axis=1)  # (n_out, C)
    return jnp.max(b, axis=0)


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

    xmax = jnp.max(jnp.abs(x), axis=0)
    threshold = _bound_threshold(x, y, static.loss, static.layers[-1])

    def step(carry):
        """One epoch, with the task loss (history epochs)."""
        edges, ms, vs, epoch, diverged_at = carry
        task, grads = _task_and_grads(edges, x, y, static.loss, static.hidden_activation)
        tf = (epoch + 1).astype(jnp.float32)
        new = [_adam_l1(w, g, m, v, tf, lam3, lr3) for w, g, m, v in zip(edges, grads, ms, vs)]
        diverged_at = jnp.where((diverged_at < 0) & ~jnp.isfinite(task), epoch, diverged_at)
        carry = (tuple(a[0] for a in new), tuple(a[1] for a in new), tuple(a[2] for a in new), epoch + 1,
                 diverged_at)
        return carry, task

    def plain(carry):
        """One epoch without the task loss; `diverged_at` by the cheap check (see `_output_bound`)."""
        edges, ms, vs, epoch, diverged_at = carry
        _, grads = _task_and_grads(edges, x, y, static.loss, static.hidden_activation, with_task=False)
        tf = (epoch + 1).astype(jnp.float32)
        new = [_adam_l1(w, g, m, v, tf, lam3, lr3) for w, g, m, v in zip(edges, grads, ms, vs)]
        suspicious = ~(_output_bound(edges, xmax) < threshold)

        def exact(d):
            task = _task_only(edges, x, y, static.loss, static.hidden_activation)
            return jnp.where((d < 0) & ~jnp.isfinite(task), epoch, d)

        diverged_at = jax.lax.cond(jnp.any(suspicious & (diverged_at < 0)), exact, lambda d: d, diverged_at)
        return (tuple(a[0] for a in new), tuple(a[1] for a in new), tuple(a[2] for a in new), epoch + 1,
                diverged_at)

    def record(before, after, task):
        edges = before[0]
        penalty = hyper.lam * sum(jnp.sum(jnp.abs(w), axis=(0, 1)) for w in edges)
        active = sum(jnp.sum(jnp.abs(w) >= eps3, axis=(0, 1), dtype=jnp.int32) for w in edges)
        return History(task + penalty, task, penalty, active)

    C = seeds.shape[0]
    carry = (edges, zeros, zeros, jnp.int32(0), jnp.full((C,), -1, jnp.int32))
    carry, history = run_epochs(step, carry, static.epochs, static.history_every, record, plain=plain)
    if history is None:
        history = History.empty(C)
    else:
        history = History(*(jnp.moveaxis(h, 0, -1) for h in history))
    return TrainResult(tuple(jnp.moveaxis(w, -1, 0) for w in carry[0]), history, carry[4])


# Epochs per loop iteration of `train_single` (lax.scan / fori_loop unroll): 2 measured ~10 % faster
# than 1 on XOR and no slower than 4 (2-core CPU).
SINGLE_UNROLL = 2


def _single_task_and_grads(edges, xt, yt, loss: str, act: str):
    """Task loss and gradient of ONE net, samples on the last axis: `xt`
    `(n_in, S)`, `yt` `(n_out, S)`, edges `(n_out, n_in)`. Returns
    `sums / n`: the gradient of every edge (layers flattened in order) and
    last the task loss, from one reduction over the samples of a
    `(n_edges + 1, S)` array, so an epoch is a handful of XLA kernels."""
    L = len(edges)
    n = xt.shape[1] * yt.shape[0]
    hs, zs = [xt], []
    for l, w in enumerate(edges):
        z = sum(w[:, j:j + 1] * hs[l][j:j + 1, :] for j in range(w.shape[1]))
        zs.append(z)
        if l < L - 1:
            hs.append(jnp.maximum(z, 0.0) if act == "relu" else z)
    out = zs[-1]
    delta, per = (_pointwise(out, yt, loss, part) for part in ("delta", "loss"))
    rows = [None] * L
    for l in range(L - 1, -1, -1):
        rows[l] = (delta[:, None, :] * hs[l][None, :, :]).reshape(-1, xt.shape[1])
        if l > 0:
            w = edges[l]
            back = sum(w[i:i + 1, :].T * delta[i:i + 1, :] for i in range(w.shape[0]))
            delta = jnp.where(zs[l - 1] > 0, back, 0.0) if act == "relu" else back
    return jnp.sum(jnp.concatenate(rows + [per]), axis=-1) / n


def _train_single_core(static: TrainConfig, x, y, key, hyper: Hyper, unroll: int) -> TrainResult:
    """`train_core` for one config on the fast path: samples-last, the parameters
    and Adam moments as flat `(n_edges,)` vectors, the task loss every epoch."""
    shapes = [(b, a) for a, b in zip(static.layers[:-1], static.layers[1:])]
    sizes = [a * b for a, b in shapes]
    offs = [sum(sizes[:l]) for l in range(len(sizes))]
    unflat = lambda p: tuple(p[o:o + m].reshape(sh) for o, m, sh in zip(offs, sizes, shapes))
    p0 = jnp.concatenate([w.reshape(-1) for w in init_edges(key, static.layers, static.init)])
    xt, yt = x.T, y.T
    lam, lr, eps = hyper
    P = p0.shape[0]

    def step(carry):
        p, m, v, epoch, diverged_at = carry
        sums = _single_task_and_grads(unflat(p), xt, yt, static.loss, static.hidden_activation)
        task = sums[P]
        tf = (epoch + 1).astype(jnp.float32)
        p, m, v = _adam_l1(p, sums[:P], m, v, tf, lam, lr)
        diverged_at = jnp.where((diverged_at < 0) & ~jnp.isfinite(task), epoch, diverged_at)
        return (p, m, v, epoch + 1, diverged_at), task

    def record(before, after, task):
        # penalty and active count of the weights the step started from; the
        # total loss is task + penalty, added after the loop (same float32 sum)
        p = before[0]
        penalty = lam * jnp.sum(jnp.abs(p))
        return jnp.stack([task, penalty]), jnp.sum(jnp.abs(p) >= eps, dtype=jnp.int32)

    zeros = jnp.zeros_like(p0)
    carry = (p0, zeros, zeros, jnp.int32(0), jnp.int32(-1))
    carry, records = run_epochs(step, carry, static.epochs, static.history_every, record, unroll=unroll)
    if records is None:
        history = History.empty()
    else:
        tp, active = records
        history = History(tp[:, 0] + tp[:, 1], tp[:, 0], tp[:, 1], active)
    return TrainResult(unflat(carry[0]), history, carry[4])


_train_single_jit = jax.jit(_train_single_core, static_argnums=(0, 5))


def train_single(config: TrainConfig, x, y, key, *, unroll: int | None = None) -> TrainResult:
    """`train.train(config, x, y, key)` for a config the fast kernel supports
    (`fast_path_ok`), through the samples-last single-run kernel
    (`_single_task_and_grads`: one reduction per epoch): the same `TrainResult`
    (edges `(n_out, n_in)`, history `(n_records,)`, scalar `diverged_at`), equal
    to the generic path to float32 rounding, deterministic run to run."""
    from .train import check_data, hyper_of

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config={config!r} is invalid: allowed a TrainConfig")
    static = config.static_part()
    if not fast_path_ok(static):
        raise ValueError(f"config={config!r} is invalid for train_single: allowed a config fast_path_ok accepts "
                         "(the paper's plain setting); use train.train")
    x, y = check_data(config, x, y)
    return _train_single_jit(static, x, y, key, hyper_of(config), SINGLE_UNROLL if unroll is None else unroll)
