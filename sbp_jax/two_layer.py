"""The hand-written gradient kernel of the engine (`kernel='two_layer'`): nets
with one hidden layer of relu or identity units and one output (bce or mse),
bias and skip edges included — the paper's nets.

It computes the task loss and its gradients with half the per-sample sums of
the generic backward pass, configs on the last axis like the rest of
`engine.py`. It is kept because a profile shows it pays (1.9–2.5x over
`jax.grad` of the same forward pass, benchmarks/README.md), and it is pinned
against `jax.grad` (tests/test_two_layer.py) and the reference
(tests/test_conformance.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .config import TrainConfig
from .layout import Layout
from .network import SMALL_LAYER_EDGES, forward_layers, is_wide
from .objective import output_delta, weighted_task_loss_from_logits

# Hidden units from which a two-layer relu mse net takes the batched matrix product (`_product_grads`)
# (measured, 2-core CPU, `run_grid` 8,192 configs x 300 epochs, config-epochs/s, per-unit sums vs
# batched product: [2,8,1] mse 200 samples 1.1e6 vs 1.7e6, 100 samples 2.0e6 vs 2.8e6; [2,4,1] mse
# 2.7e6 vs 2.3e6; bce [2,4,1] 6.2e6 vs 2.9e6, [2,8,1] 3.2e6 vs 2.1e6, [2,16,1] 1.6e6 vs 1.0e6). That
# was the earlier configs-last product; the configs-first one runs addition 1.5x faster, while XOR
# [2,4,1] bce stays on per-unit sums (one device, 256 configs, loaded: plain 1.81e6 either way, with
# bias 1.81e6 per-unit vs 1.45e6 product; the rule was not re-measured for mse [2,4,1]).
GEMM_MIN_HIDDEN = 8



def net_ok(static: TrainConfig) -> str | None:
    """None when the hand-written gradients (`two_layer` here, `wide.py` for wide layers) cover `static`'s
    net — one hidden layer of relu or identity units, one output, bce or mse — else the reason (naming the field)."""
    lay = static.layout
    if lay.n_layers != 2:
        return f"layers={static.layers}: the hand-written gradients cover one hidden layer"
    if static.layers[-1] != 1:
        return f"layers={static.layers}: the hand-written gradients cover one output"
    if static.hidden_activation not in ("relu", "identity"):
        return f"hidden_activation={static.hidden_activation!r}: the hand-written gradients cover relu and identity"
    if static.loss not in ("bce", "mse"):
        return f"loss={static.loss!r}: the hand-written gradients cover bce and mse"
    return None


def two_layer_ok(static: TrainConfig) -> str | None:
    """None when `two_layer_grads` implements `static`, else the reason (naming the field)."""
    if (reason := net_ok(static)) is None and is_wide(static.layout):
        reason = (f"layers={static.layers}: a layer has more than {SMALL_LAYER_EDGES} edges "
                  "(the wide kernel's matrix products take it)")
    return reason


def two_layer_grads(static: TrainConfig, lay: Layout, edges, x, y, wts):
    """Task loss `(C,)` and gradients of nets with one hidden layer of relu or
    identity units and ONE output (bias and skip edges allowed), with half the
    per-sample sums of the generic backward pass.

    With x̃ the input columns (plus a constant-1 column when the hidden layer has
    a bias node), hidden unit j is h_j = m_j·z_j, z_j = Σ_k w0[j,k]·x̃_k and
    m_j = 1[z_j > 0] (relu; 1 for identity). With the output delta δ (per
    sample, `objective.output_delta` over the mean's denominator) and
    A[j,k] = Σ_s δ·m_j·x̃_k (H·K̃ sums over the samples):
    dW0[j,k] = w1[j]·A[j,k], dW1[j] = Σ_s δ·h_j = Σ_k w0[j,k]·A[j,k]; a skip
    edge from input k gets Σ_s δ·x_k, the output's bias edge Σ_s δ. A is
    computed per config: H·K̃ reductions over the samples of `(S, C)` products,
    or, for relu mse nets with >= `GEMM_MIN_HIDDEN` hidden units, one `(H, S) x
    (S, K̃)` product per config (`_product_grads`)."""
    w0, w1 = edges  # (H, K̃, C), (1, cols, C)
    H = w0.shape[0]
    if static.hidden_activation == "relu" and static.loss == "mse" and H >= GEMM_MIN_HIDDEN:
        return _product_grads(static, lay, edges, x, y, wts)
    hs, zs = forward_layers(edges, x, static.hidden_activation, lay)
    z, out = zs[0], zs[1][0]  # hidden pre-activations (S, C) each; output (S, C)
    if static.dropout > 0:  # materialise them once: with dropped-out weights XLA otherwise recomputes them
        z = list(jax.lax.optimization_barrier(z))  # in every consumer (XOR: 174 -> 146 us per epoch of 256
        # configs; without dropout the barrier costs: 109 -> 131 us)
    xc = [hs[0][:, k] for k in range(hs[0].shape[1])]  # (S, 1) or (S, C)
    d = output_delta(out[:, None], y[:, :1], static.loss)[:, 0]
    d = d * (1.0 / x.shape[0]) if wts is None else d * (wts * (1 / jnp.sum(wts)))
    task = weighted_task_loss_from_logits(out[:, None], y, wts, static.loss)
    xt = xc + ([jnp.ones_like(xc[0])] if lay.bias else [])
    if static.hidden_activation != "relu":  # m_j = 1: A[j, k] = Σ_s δ·x̃_k for every j
        A = jnp.broadcast_to(jnp.stack([jnp.sum(d * c, axis=0) for c in xt])[None], w0.shape)
    else:
        if static.loss == "mse":  # materialise δ: XLA re-fuses the cheap mse δ (and the whole forward
            d = jax.lax.optimization_barrier(d)  # pass behind it) into each of the H·K̃ sums otherwise
        g = [jnp.where(c > 0, d, 0.0) for c in z]
        A = jnp.stack([jnp.stack([jnp.sum(gj * c, axis=0) for c in xt]) for gj in g])  # (H, K̃, C)
    hid = lay.start(1, 1)  # first column of the hidden block in edges[1]
    cols = [None] * w1.shape[1]
    cols[hid:hid + H] = list(jnp.sum(w0 * A, axis=1))
    if lay.skip:
        cols[:len(xc)] = [jnp.sum(d * c, axis=0) for c in xc]
    if lay.bias:
        cols[-1] = jnp.sum(d, axis=0)
    return task, [w1[0, hid:hid + H][:, None, :] * A, jnp.stack(cols)[None]]


def _product_grads(static: TrainConfig, lay: Layout, edges, x, y, wts):
    """`two_layer_grads` for relu nets with mse loss: A as one `(H, S) x (S, K̃)`
    product per config, its operands built with the configs FIRST and the
    samples last, so that no `(S, C)` array is transposed.

    The hidden pre-activations z `(C, H, S)` are recomputed here from the
    weights and the `(S, n_in)` inputs (two or three multiply-adds an element,
    in the fusions that need them), the output as a product of relu(z) with
    w1 per config, which XLA writes to memory once: the cheap mse δ computed
    elementwise from per-unit columns was re-fused, with the whole forward
    pass behind it, into every fusion that read it, once per column of δ·x̃
    (so a bias column cost one more forward pass; an optimization_barrier on δ
    was removed by XLA and did not stop it). The operands: the masks
    1[z > 0] `(C, H, S)` and δ·x̃ `(C, K̃, S)`, x̃'s rows the inputs and, with
    a bias node, a row of ones. The earlier configs-last operands `(H, S, C)`
    and `(S, C, K̃)` needed transposes, 10x slower with the bias column (557 vs
    53 us per epoch of 128 addition configs), so bias nets took per-unit sums;
    this form runs addition 1.5x (plain) and 2.6x (bias edges) faster, bias at
    0.83x plain (benchmarks/README.md). The task loss comes from
    `forward_layers` as in `two_layer_grads` (XLA drops it on the epochs that
    do not record it)."""
    w0, w1 = edges  # (H, K̃, C), (1, cols, C)
    H, n_in = w0.shape[0], x.shape[1]
    hid = lay.start(1, 1)  # first column of the hidden block in edges[1]
    xT = jnp.moveaxis(x, 0, -1)  # (n_in, 1 or C, S)
    w0c = jnp.moveaxis(w0, -1, 0)[..., None]  # (C, H, K̃, 1)
    w1c = jnp.moveaxis(w1[0], -1, 0)  # (C, cols)
    z = sum(w0c[:, :, k] * xT[k][:, None] for k in range(n_in))  # (C, H, S)
    if lay.bias:
        z = z + w0c[:, :, n_in]
    out = jnp.einsum("chs,ch->cs", jnp.maximum(z, 0.0), w1c[:, hid:hid + H], precision=jax.lax.Precision.HIGHEST)
    if lay.skip:
        out = out + sum(w1c[:, k, None] * xT[k] for k in range(n_in))
    if lay.bias:
        out = out + w1c[:, -1, None]
    d = output_delta(out, jnp.moveaxis(y[:, 0], 0, -1), static.loss)  # (C, S)
    d = d * (1.0 / x.shape[0]) if wts is None else d * (wts[:, 0] * (1 / jnp.sum(wts)))[None]
    _, zs = forward_layers(edges, x, static.hidden_activation, lay)
    task = weighted_task_loss_from_logits(zs[1][0][:, None], y, wts, static.loss)
    xt = jnp.concatenate([xT, jnp.ones_like(xT[:1])]) if lay.bias else xT  # (K̃, 1 or C, S)
    dx = d[:, None, :] * jnp.moveaxis(xt, 1, 0)  # (C, K̃, S)
    A = jnp.einsum("chs,cks->hkc", (z > 0).astype(d.dtype), dx, precision=jax.lax.Precision.HIGHEST)
    cols = [None] * w1.shape[1]
    cols[hid:hid + H] = list(jnp.sum(w0 * A, axis=1))
    if lay.skip:
        cols[:n_in] = [jnp.sum(d * xT[k], axis=-1) for k in range(n_in)]
    if lay.bias:
        cols[-1] = jnp.sum(d, axis=-1)
    return task, [w1[0, hid:hid + H][:, None, :] * A, jnp.stack(cols)[None]]
