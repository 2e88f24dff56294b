"""The λ of each step and layer: schedules, per-layer multipliers, the target-sparsity controller.

Every L1 transform in `penalty.py` asks one `LamRule` for its λ:

    λ_t,l = base_t · schedule(t) · layer_lams[l]

where base_t is the traced λ (what a sweep vmaps) or, with a target-sparsity
controller, a value held in the optimizer state (`L1State`) and adjusted
every step. `rule_of(config, ...)` builds the rule a `TrainConfig` asks for.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

TARGET_GRAD_FLOOR = 1e-8  # the controller's gradient quantile is floored here (all-zero gradients)
TARGET_LOG_RANGE = 2.0  # the controller's integral term I stays in [−2, 2] (λ within e^±2 of the quantile)
COUNTING_QUANTILE_MAX = 64  # `quantile` counts instead of sorting up to this many values


def quantile(g: Float[Array, " n"], q: float) -> Float[Array, ""]:
    """`jnp.quantile(g, q)` (linear interpolation, NaN if any value is NaN) for a
    static q, equal to float32 rounding (the same order statistics and weights;
    XLA may fuse the interpolation differently). Up to `COUNTING_QUANTILE_MAX` values the order
    statistics come from counting (v_k = the least g_i with at least k+1 values
    <= g_i: n² comparisons, no sort; XLA:CPU sorts each short row at ~100 ns
    per value, which made the target-sparsity controller 3x slower than the
    rest of an XOR epoch), above it from `jnp.quantile`'s sort."""
    n = g.shape[0]
    if n > COUNTING_QUANTILE_MAX:
        return jnp.quantile(g, q)
    pos = np.float32(q) * np.float32(n - 1)  # what jnp.quantile computes, in float32
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    w_hi = np.float32(pos - np.float32(lo))
    w_lo = np.float32(np.float32(1) - w_hi)
    count_le = jnp.sum(g[None, :] <= g[:, None], axis=1)  # per value: how many are <= it

    def order(k):
        return jnp.min(jnp.where(count_le >= k + 1, g, jnp.inf))

    v = order(lo) * w_lo + order(hi) * w_hi
    return jnp.where(jnp.any(jnp.isnan(g)), jnp.nan, v)


def warmup_ramp(warmup: int, ramp: int) -> optax.Schedule:
    """λ multiplier: 0 for `warmup` steps, then linear 0 → 1 over `ramp` steps, then 1.

    Built from optax schedules (`join_schedules` of a constant and a linear one).
    Example:
      >>> s = warmup_ramp(100, 200); float(s(0)), float(s(200)), float(s(400))
      (0.0, 0.5, 1.0)
    """
    if ramp == 0:
        return lambda t: jnp.where(t < warmup, 0.0, 1.0).astype(jnp.float32)
    return optax.join_schedules(
        [optax.constant_schedule(0.0), optax.linear_schedule(0.0, 1.0, ramp)], [warmup]
    )


class L1State(NamedTuple):
    """State of an L1 transform with a schedule or a target-sparsity controller."""

    count: Int[Array, ""]  # optimizer steps taken so far, int32
    lam: Float[Array, ""]  # base λ used by the last step (controller: the λ it chose), float32
    integral: Float[Array, ""]  # controller: its integral term I (0 without a controller), float32


class LamRule(NamedTuple):
    """How an L1 transform picks λ per step and per layer (all static but `lam`/`eps`)."""

    lam: Any  # base λ, float or traced scalar
    layer_lams: tuple[float, ...] | None = None  # per-layer multipliers of λ
    schedule: optax.Schedule | None = None  # step -> multiplier of λ
    target_active: float | None = None  # requested fraction of active edges
    eps: Any = None  # ε at which the controller measures the active fraction
    gain: float = 0.01  # controller: log λ changes by gain·(fraction − target) per step

    def plain(self) -> bool:
        """True for the paper's constant λ (no schedule, multipliers or controller)."""
        return self.layer_lams is None and self.schedule is None and self.target_active is None

    def init(self) -> L1State:
        zero = jnp.zeros([], jnp.float32)
        return L1State(jnp.zeros([], jnp.int32), jnp.asarray(self.lam, jnp.float32), zero)

    def step(self, state: L1State, params, grads) -> tuple[list, L1State]:
        """Per-leaf λ for this step and the next state (`grads`: the task gradient)."""
        base, integral = jnp.asarray(self.lam, jnp.float32), state.integral
        if self.target_active is not None:
            base, integral = self._control(state, params, grads)
        lams = self._per_layer(base, state.count, params)
        return lams, L1State(optax.safe_increment(state.count), base, integral)

    def _control(self, state: L1State, params, grads):
        """The target-sparsity controller: λ = q·e^I (see `penalty.make_optimizer_from`)."""
        g = jnp.concatenate([jnp.abs(v).ravel() for v in jax.tree.leaves(grads)])
        q = jnp.maximum(quantile(g, 1.0 - self.target_active), TARGET_GRAD_FLOOR)
        leaves = jax.tree.leaves(params)
        active = sum(jnp.sum(jnp.abs(w) >= self.eps, dtype=jnp.int32) for w in leaves)
        frac = active.astype(jnp.float32) / sum(w.size for w in leaves)
        integral = jnp.clip(state.integral + self.gain * (frac - self.target_active), -TARGET_LOG_RANGE,
                            TARGET_LOG_RANGE)
        return q * jnp.exp(integral), integral

    def last_lams(self, state: L1State, params) -> list:
        """Per-leaf λ of the step that produced `state` (its base λ, the
        schedule at step count − 1, the per-layer multipliers)."""
        return self._per_layer(state.lam, jnp.maximum(state.count - 1, 0), params)

    def _per_layer(self, base, count, params) -> list:
        lam_t = base
        if self.schedule is not None:
            lam_t = lam_t * jnp.asarray(self.schedule(count), jnp.float32)
        n_leaves = len(jax.tree.leaves(params))
        scales = self.layer_lams if self.layer_lams is not None else (1.0,) * n_leaves
        if len(scales) != n_leaves:
            raise ValueError(f"layer_lams={self.layer_lams!r} is invalid: allowed one multiplier per layer ({n_leaves})")
        return [lam_t if s == 1.0 else lam_t * jnp.float32(s) for s in scales]


def rule_of(config, lam, eps) -> LamRule:
    """The λ rule `config` (a `TrainConfig`, or None for the paper's) asks for, with traced λ and ε."""
    schedule = None
    if getattr(config, "lam_schedule", "constant") == "warmup_ramp":
        schedule = warmup_ramp(config.lam_warmup, config.lam_ramp)
    return LamRule(
        lam,
        layer_lams=getattr(config, "layer_lams", None),
        schedule=schedule,
        target_active=getattr(config, "target_active", None),
        eps=eps,
        gain=getattr(config, "target_gain", 0.01),
    )
