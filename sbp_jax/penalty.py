"""The L1 penalty as an optax gradient transformation, and the paper's optimizer.

The paper's update is `w ← w − η·Adam(∂L_task/∂w + λ·sign(w))`: the
subgradient of λ·Σ|w| is added to the task gradient *before* Adam, so
`optax.chain(add_l1_subgradient(λ), optax.adam(lr))` is exactly that rule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float


def l1_norm(edges) -> Float[Array, ""]:
    """Σ|w| over every leaf of `edges` (a scalar)."""
    return sum(jnp.sum(jnp.abs(w)) for w in jax.tree.leaves(edges))


def add_l1_subgradient(lam: float | Float[Array, ""]) -> optax.GradientTransformation:
    """Add λ·sign(w) to the updates: the subgradient of λ·Σ|w| (sign(0) = 0).

    Args:
      lam: λ >= 0; a Python float or a traced scalar array (pass an array
        inside `jit` so one compiled program serves every λ).
    Returns:
      an `optax.GradientTransformation` with empty state.

    Example:
      >>> opt = optax.chain(add_l1_subgradient(1e-2), optax.adam(1e-3))
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError("add_l1_subgradient needs params: call update(g, state, params)")
        updates = jax.tree.map(
            lambda g, w: g + jnp.asarray(lam, g.dtype) * jnp.sign(w), updates, params
        )
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(lam, lr) -> optax.GradientTransformation:
    """The paper's optimizer: `chain(add_l1_subgradient(lam), adam(lr))`.

    `lam` and `lr` may be traced scalars (what `train` passes)."""
    return optax.chain(add_l1_subgradient(lam), optax.adam(lr))
