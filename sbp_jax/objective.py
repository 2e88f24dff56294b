"""The paper's objective: task loss + λ·Σ|w|, and the task loss's output delta.

The per-sample loss terms and their derivative in the output pre-activation
(`pointwise_loss`, `output_delta`) are the one definition every training
kernel uses: the reference path differentiates `task_loss_from_logits` with
`jax.grad`, the hand-written gradients of `engine.py` start from
`output_delta` (pinned against `jax.grad` in the tests).

Shapes: `z` is `(n, n_out, *B)` with optional trailing config axes B (none
for one run, `(C,)` with configs last); `y` is `(n, n_out, *B1)` floats for
'bce' and 'mse', `(n, *B1)` integer labels for 'cross_entropy', B1 = B or
ones (data shared by every config).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .config import LOSSES
from .network import Edges, forward
from .penalty import l1_norm


def pointwise_loss(z, y, loss: str):
    """Per-sample loss terms before the mean: `(n, n_out, *B)` for 'bce'
    (softplus(z) − y·z, the stable form of the sigmoid cross-entropy) and 'mse'
    ((z − y)²); `(n, 1, *B)` for 'cross_entropy' (−log softmax(z)[y])."""
    if loss == "bce":
        return jax.nn.softplus(z) - y * z
    if loss == "mse":
        return jnp.square(z - y)
    if loss == "cross_entropy":
        logp = jax.nn.log_softmax(z, axis=1)
        return -jnp.take_along_axis(logp, y[:, None], axis=1)
    raise ValueError(f"loss={loss!r} is invalid: allowed {', '.join(map(repr, LOSSES))}")


def output_delta(z, y, loss: str):
    """∂(pointwise_loss summed over outputs)/∂z, shaped like `z`:
    σ(z) − y ('bce'), 2(z − y) ('mse'), softmax(z) − onehot(y) ('cross_entropy')."""
    if loss == "bce":
        return jax.nn.sigmoid(z) - y
    if loss == "mse":
        return 2.0 * (z - y)
    if loss == "cross_entropy":
        k = jnp.arange(z.shape[1]).reshape((1, -1) + (1,) * (z.ndim - 2))
        return jax.nn.softmax(z, axis=1) - (y[:, None] == k).astype(z.dtype)
    raise ValueError(f"loss={loss!r} is invalid: allowed {', '.join(map(repr, LOSSES))}")


def task_loss_from_logits(z: Float[Array, "n n_out"], y: Array, loss: str) -> Float[Array, ""]:
    """Mean task loss of raw outputs `z` against targets `y` (one value per
    config: a scalar for one run, `B` with trailing config axes).

    * `bce`: binary cross-entropy of sigmoid(z) vs `y` in {0, 1}, shape
      `(n, n_out)`, computed stably from logits, mean over all entries.
    * `mse`: mean over all entries of (z − y)², `y` of shape `(n, n_out)`.
    * `cross_entropy`: softmax cross-entropy, `y` integer labels of shape `(n,)`.
    """
    return jnp.mean(pointwise_loss(z, y, loss), axis=(0, 1))


def weighted_task_loss_from_logits(z, y, wts, loss: str):
    """`task_loss_from_logits` over the samples of weight 1 only: `wts` `(S, 1)`
    (or `(S,)` for one run) a 0/1 mask (the padding of a ragged minibatch is
    0); None means every sample. Mean over outputs, then the weighted mean
    over samples, as the sum times the reciprocal of the weights' sum."""
    if wts is None:
        return task_loss_from_logits(z, y, loss)
    per = jnp.mean(pointwise_loss(z, y, loss), axis=1)  # (S,) or (S, C)
    wts = wts.reshape(wts.shape[:1] + (1,) * (per.ndim - 1))
    return jnp.sum(per * wts, axis=0) * (1 / jnp.sum(wts))


def task_loss(edges: Edges, x, y, *, loss: str, hidden_activation: str) -> Float[Array, ""]:
    """Task loss of the net `edges` on `(x, y)` (see `task_loss_from_logits`)."""
    return task_loss_from_logits(forward(edges, x, hidden_activation), y, loss)


def objective(edges: Edges, x, y, lam, *, loss: str, hidden_activation: str) -> Float[Array, ""]:
    """The paper's full objective `L_task + λ·Σ|w|` (a scalar)."""
    return task_loss(edges, x, y, loss=loss, hidden_activation=hidden_activation) + lam * l1_norm(
        edges
    )
