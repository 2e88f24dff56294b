"""The paper's objective: task loss + λ·Σ|w|."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .network import Edges, forward
from .penalty import l1_norm


def task_loss_from_logits(z: Float[Array, "n n_out"], y: Array, loss: str) -> Float[Array, ""]:
    """Mean task loss of raw outputs `z` against targets `y`.

    * `bce`: binary cross-entropy of sigmoid(z) vs `y` in {0, 1}, shape
      `(n, n_out)`, computed stably from logits, mean over all entries.
    * `mse`: mean over all entries of (z − y)², `y` of shape `(n, n_out)`.
    * `cross_entropy`: softmax cross-entropy, `y` integer labels of shape `(n,)`.
    """
    if loss == "bce":
        return jnp.mean(jax.nn.softplus(z) - y * z)
    if loss == "mse":
        return jnp.mean(jnp.square(z - y))
    if loss == "cross_entropy":
        logp = jax.nn.log_softmax(z, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))
    raise ValueError(f"loss={loss!r} is invalid: allowed 'bce', 'mse', 'cross_entropy'")


def task_loss(edges: Edges, x, y, *, loss: str, hidden_activation: str) -> Float[Array, ""]:
    """Task loss of the net `edges` on `(x, y)` (see `task_loss_from_logits`)."""
    return task_loss_from_logits(forward(edges, x, hidden_activation), y, loss)


def objective(edges: Edges, x, y, lam, *, loss: str, hidden_activation: str) -> Float[Array, ""]:
    """The paper's full objective `L_task + λ·Σ|w|` (a scalar)."""
    return task_loss(edges, x, y, loss=loss, hidden_activation=hidden_activation) + lam * l1_norm(
        edges
    )
