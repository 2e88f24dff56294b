"""The hand-written gradient kernel of the engine for WIDE one-hidden-layer nets
(`kernel='wide'`): relu or identity hidden units, one output, bce or mse,
bias and skip edges included, with a layer above `SMALL_LAYER_EDGES` edges
(e.g. `[30,64,1]`; smaller nets take `two_layer`).

Everything stays configs last, `(S, H, C)`, and the two matrix products run
over every config's units at once: with the inputs x `(S, n_in)` shared by the
chunk and W0 laid out as `(n_in, H·C)` (a transpose of the small weight
array), the hidden pre-activations are ONE product z = x·W0 `(S, H·C)`, and the
input-layer gradient ONE product dW0 = xᵀ·G `(n_in, H·C)`, G = δ·w1·1[z > 0]
`(S, H, C)`. The output layer (H → 1) and the output layer's gradient
(Σ_s δ·h) are elementwise products reduced over an axis. `jax.grad` of the same
forward pass vmapped over the configs (`engine._vmapped_grads`) put the configs
first inside and spent ~half of its epoch on layout copies of `(S, H, C)`-sized
arrays (benchmarks/README.md, "Wide nets"). Pinned against `jax.grad` by
tests/test_wide.py and the reference by the conformance tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .config import TrainConfig
from .layout import Layout
from .network import SMALL_LAYER_EDGES, is_wide
from .objective import output_delta, weighted_task_loss_from_logits
from .two_layer import net_ok

_HI = jax.lax.Precision.HIGHEST


def wide_ok(static: TrainConfig) -> str | None:
    """None when `wide_grads` implements `static`, else the reason (naming the field)."""
    if (reason := net_ok(static)) is None and not is_wide(static.layout):
        reason = f"layers={static.layers}: every layer has at most {SMALL_LAYER_EDGES} edges (two_layer's nets)"
    return reason


def wide_grads(static: TrainConfig, lay: Layout, edges, x, y, wts, fallback=None):
    """Task loss `(C,)` and gradients (configs last) of a one-hidden-layer net
    with one output; `x` `(S, n_in, 1)` shared by the configs (per-config data
    `(S, n_in, C)`, from minibatches of warm starts at different epochs, go to
    `fallback`, the generic kernel, with the same arguments).

    With x̃ the inputs plus, when the hidden layer has a bias node, a column of
    ones `(S, K̃)`, z = x̃·W0 `(S, H, C)` (one product), the output
    Σ_j relu(z_j)·w1[j] (+ skip and bias terms), δ its delta and
    M = δ·1[z > 0] `(S, H, C)`, A = x̃ᵀ·M `(K̃, H, C)` is one product and
    dW0[j,k] = w1[j]·A[k,j], dW1[j] = Σ_s δ·h_j = Σ_k w0[j,k]·A[k,j]
    (`two_layer`'s formulas), so no reduction over the samples reads an
    `(S, H, C)` array but the product."""
    if x.shape[-1] != 1:
        return fallback(static, lay, edges, x, y, wts)
    w0, w1 = edges  # (H, K̃, C), (1, cols, C)
    H, K, C = w0.shape
    S, n_in = x.shape[0], x.shape[1]
    hid = lay.start(1, 1)  # first column of the hidden block in edges[1]
    xs = x[:, :, 0]  # (S, n_in)
    xt = jnp.concatenate([xs, jnp.ones((S, 1), xs.dtype)], axis=1) if lay.bias else xs  # (S, K̃)
    z = jnp.dot(xt, jnp.transpose(w0, (1, 0, 2)).reshape(K, H * C), precision=_HI).reshape(S, H, C)
    relu = static.hidden_activation == "relu"
    v = w1[0, hid:hid + H]  # (H, C)
    # the output as H multiply-adds of (S, C) slices: one loop fusion reading z once (a sum over axis 1
    # became a YNNPACK reduction of materialised (S, H, C) broadcasts, 2x slower end to end)
    out = sum((jnp.maximum(z[:, j], 0.0) if relu else z[:, j]) * v[j][None] for j in range(H))  # (S, C)
    if lay.skip:  # multiply-adds, not a product: a small one's order depended on the chunk size
        out = out + sum(xs[:, k, None] * w1[0, k][None] for k in range(n_in))
    if lay.bias:
        out = out + w1[0, -1][None]
    task = weighted_task_loss_from_logits(out[:, None], y, wts, static.loss)
    d = output_delta(out, y[:, 0], static.loss)  # (S, C)
    d = d * (1.0 / S) if wts is None else d * (wts * (1 / jnp.sum(wts)))
    m = jnp.where(z > 0, d[:, None], 0.0) if relu else jnp.broadcast_to(d[:, None], z.shape)
    if lay.skip:  # one more unit, δ itself: its row of A is Σ_s δ·x̃ (the skip edges' gradients)
        m = jnp.concatenate([m, d[:, None]], axis=1)
    A = jnp.dot(xt.T, m.reshape(S, -1), precision=_HI).reshape(K, -1, C)
    A = jnp.transpose(A, (1, 0, 2))  # (H (+1), K̃, C)
    cols = []
    if lay.skip:
        cols.append(A[H, :n_in])
        A = A[:H]
    cols.append(jnp.sum(w0 * A, axis=1))  # (H, C)
    if lay.bias:
        cols.append(jnp.sum(d, axis=0)[None])
    return task, [v[:, None] * A, jnp.concatenate(cols)[None]]
