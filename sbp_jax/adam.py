"""Adam, written once: its constants, its bias correction, its optax transformation.

Every kernel and the fine-tuning run Adam through this module (via
`penalty.make_optimizer` or `adam`), so no other module sets β₁, β₂ or ε.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

# Adam's constants: the one place they are set (optax.adam's defaults, the paper's Adam).
B1, B2, ADAM_EPS = 0.9, 0.999, 1e-8


def bias_correction(count: Int[Array, ""]) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ) for the step count t (an int32 scalar; float32 scalars out)."""
    t = count.astype(jnp.float32)
    return 1 / (1 - B1**t), 1 / (1 - B2**t)


def scale_by_adam() -> optax.GradientTransformation:
    """`optax.scale_by_adam(B1, B2, ADAM_EPS)`, the same formulas and state
    (`optax.ScaleByAdamState(count, mu, nu)`), with the bias correction written
    as a multiplication by 1/(1 − βᵗ). optax divides by (1 − βᵗ), and XLA
    rewrites that division by a broadcast scalar into a reciprocal multiply in
    some programs and not in others (it did not under `shard_map`), which broke
    the bitwise equality of a sweep on one and on two devices. Written out,
    every program rounds the same way. Equal to optax's to float32 rounding
    (tests/test_adam.py)."""

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(jnp.zeros([], jnp.int32), zeros, jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        mu = jax.tree.map(lambda g, m: (1 - B1) * g + B1 * m, updates, state.mu)
        nu = jax.tree.map(lambda g, v: (1 - B2) * (g * g) + B2 * v, updates, state.nu)
        c1, c2 = bias_correction(count)
        updates = jax.tree.map(lambda m, v: (m * c1) / (jnp.sqrt(v * c2) + ADAM_EPS), mu, nu)
        return updates, optax.ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def adam(lr) -> optax.GradientTransformation:
    """Adam with learning rate `lr` (a float or a traced scalar): `scale_by_adam`
    then `optax.scale_by_learning_rate`, as `optax.adam` chains them."""
    return optax.chain(scale_by_adam(), optax.scale_by_learning_rate(lr))
