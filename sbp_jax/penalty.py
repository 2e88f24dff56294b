"""The L1 penalty as an optax gradient transformation, and the paper's optimizer.

The paper's update is `w ← w − η·Adam(∂L_task/∂w + λ·sign(w))`: the
subgradient of λ·Σ|w| is added to the task gradient *before* Adam, so
`optax.chain(add_l1_subgradient(λ), optax.adam(lr))` is exactly that rule.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int


# Adam's constants: the one place they are set (optax.adam's defaults). Every
# kernel runs Adam through `make_optimizer`, so none writes them again.
B1, B2, ADAM_EPS = 0.9, 0.999, 1e-8


def _bias_correction(count) -> tuple:
    """1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ) for the step count t (float32 scalars)."""
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
    (tests/test_penalty.py)."""

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(jnp.zeros([], jnp.int32), zeros, jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        mu = jax.tree.map(lambda g, m: (1 - B1) * g + B1 * m, updates, state.mu)
        nu = jax.tree.map(lambda g, v: (1 - B2) * (g * g) + B2 * v, updates, state.nu)
        c1, c2 = _bias_correction(count)
        updates = jax.tree.map(lambda m, v: (m * c1) / (jnp.sqrt(v * c2) + ADAM_EPS), mu, nu)
        return updates, optax.ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def adam(lr) -> optax.GradientTransformation:
    """Adam with learning rate `lr` (a float or a traced scalar): `scale_by_adam`
    then `optax.scale_by_learning_rate`, as `optax.adam` chains them."""
    return optax.chain(scale_by_adam(), optax.scale_by_learning_rate(lr))


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


def make_optimizer(lam, lr, config=None, eps=None) -> optax.GradientTransformation:
    """The paper's optimizer: `chain(add_l1_subgradient(lam), adam(lr))`.

    `lam`, `lr` (and `eps`) may be traced scalars (what `train` passes). With a
    `config` whose penalty options differ from the paper's (`penalty`,
    `layer_lams`, `lam_schedule`, `target_active`), the variant it asks for
    (see `make_optimizer_from`); `eps` is needed by the target controller."""
    if config is None:
        return optax.chain(add_l1_subgradient(lam), adam(lr))
    return make_optimizer_from(config, lam, lr, eps)


# ---------------------------------------------------------------------------
# Beyond the paper: proximal L1, per-layer λ, λ schedules, target sparsity.
#
# Every variant below shares one way of deciding the λ of a step (`_LamRule`):
#   λ_t,l = base_t · schedule(t) · layer_lams[l]
# where base_t is the traced λ (what a sweep vmaps) or, with a target-sparsity
# controller, a value held in the optimizer state and adjusted every step.
# ---------------------------------------------------------------------------

from .config import PENALTIES  # noqa: E402  (validated in TrainConfig)
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


class L1State(NamedTuple):
    """State of an L1 transform with a schedule or a target-sparsity controller."""

    count: Int[Array, ""]  # optimizer steps taken so far, int32
    lam: Float[Array, ""]  # base λ used by the last step (controller: the λ it chose), float32
    integral: Float[Array, ""]  # controller: its integral term I (0 without a controller), float32


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


class _LamRule(NamedTuple):
    """How an L1 transform picks λ per step and per layer (all static but `lam`/`eps`)."""

    lam: Any  # base λ, float or traced scalar
    layer_lams: tuple[float, ...] | None = None  # per-layer multipliers of λ
    schedule: optax.Schedule | None = None  # step -> multiplier of λ
    target_active: float | None = None  # requested fraction of active edges
    eps: Any = None  # ε at which the controller measures the active fraction
    gain: float = 0.01  # controller: log λ changes by gain·(fraction − target) per step

    def plain(self) -> bool:
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
        """The target-sparsity controller: λ = q·e^I (see `make_optimizer_from`)."""
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


def _per_leaf(fn, lams, *trees):
    """`jax.tree.map(fn, lam_l, *leaves_l)` with one λ per leaf (layer)."""
    treedef = jax.tree.structure(trees[0])
    leaves = [jax.tree.leaves(t) for t in trees]
    return jax.tree.unflatten(treedef, [fn(lam, *ls) for lam, *ls in zip(lams, *leaves)])


def add_l1_subgradient_adaptive(rule: _LamRule) -> optax.GradientTransformation:
    """`add_l1_subgradient` with per-layer λ, a λ schedule and/or a target-sparsity
    controller (see `make_optimizer`); state `L1State`."""

    def init_fn(params):
        del params
        return rule.init()

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError("add_l1_subgradient needs params: call update(g, state, params)")
        lams, state = rule.step(state, params, updates)
        updates = _per_leaf(lambda lam, g, w: g + lam.astype(g.dtype) * jnp.sign(w), lams, updates, params)
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)


class ProximalL1State(NamedTuple):
    """State of `proximal_l1`: the inner optimizer's state and the λ rule's."""

    inner: Any  # state of the wrapped optimizer (e.g. adam's ScaleByAdamState, ...)
    l1: L1State


def soft_threshold(w, tau):
    """sign(w)·max(|w| − τ, 0): the proximal operator of τ·|w| (exact zeros)."""
    return jnp.sign(w) * jnp.maximum(jnp.abs(w) - tau, 0.0)


def proximal_l1(
    inner: optax.GradientTransformation,
    lam,
    lr,
    *,
    preconditioned: bool = True,
    adam_eps: float = ADAM_EPS,
    rule: _LamRule | None = None,
) -> optax.GradientTransformation:
    """Wrap `inner` (Adam) with an L1 proximal step applied after its update.

    With `z = w + inner_update`, the new weights are `soft_threshold(z, τ)`:

    * `preconditioned=True` (`penalty='proximal'`): τ = lr·λ / (sqrt(v̂) + eps),
      the proximal step of λ·|w| in Adam's own diagonal metric (v̂ the
      bias-corrected second moment read from `inner`'s state, field `nu`).
      A weight at zero stays there unless its task gradient beats λ —
      the L1 optimality condition — and inactive weights land on exact zeros.
    * `preconditioned=False` (`penalty='proximal_plain'`): τ = lr·λ, the
      textbook proximal-gradient threshold. Beside Adam's normalised step
      (≈ lr per step whatever the gradient scale) this shrink is tiny, so it
      prunes almost nothing (DESIGN.md); kept to show that.

    Args:
      inner: the optimizer producing the task step (`optax.adam(lr)`); with
        `preconditioned=True` its state must hold Adam's `nu` and `count`.
      lam, lr: λ and the learning rate (floats or traced scalars).
      preconditioned: see above.
      adam_eps: the `eps` of `inner`'s Adam (optax's default 1e-8).
      rule: per-layer λ / schedule / controller (default: constant λ).
    Returns:
      an `optax.GradientTransformation` with state `ProximalL1State`; the
      updates it returns satisfy `w + u == soft_threshold(...)`, exactly 0
      where thresholded (w + (−w) == 0 in IEEE arithmetic).

    Example:
      >>> opt = proximal_l1(optax.adam(1e-3), 1e-2, 1e-3)
    """
    rule = rule if rule is not None else _LamRule(lam)

    def init_fn(params):
        return ProximalL1State(inner.init(params), rule.init())

    def update_fn(updates, state, params):
        if params is None:
            raise ValueError("proximal_l1 needs params: call update(g, state, params)")
        lams, l1_state = rule.step(state.l1, params, updates)  # `updates` is still the task gradient here
        updates, inner_state = inner.update(updates, state.inner, params)
        lr_ = jnp.asarray(lr, jnp.float32)
        if preconditioned:
            nu = optax.tree_utils.tree_get(inner_state, "nu")
            c2 = _bias_correction(optax.tree_utils.tree_get(inner_state, "count"))[1]
            nu_hat = jax.tree.map(lambda v: v * c2, nu)
        else:
            nu_hat = jax.tree.map(jnp.ones_like, params)

        def prox(lam, u, w, v):
            # matched metric: sqrt(v̂ + λ²) is the scale the coupled rule's Adam
            # sees when λ·sign(w) is part of the gradient, so the shrink per step
            # matches the paper's (at most lr) but lands on exact zeros.
            d = jnp.sqrt(v + jnp.square(lam)) + adam_eps if preconditioned else 1.0
            return soft_threshold(w + u, lr_ * lam / d) - w

        updates = _per_leaf(prox, lams, updates, params, nu_hat)
        return updates, ProximalL1State(inner_state, l1_state)

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer_from(config, lam, lr, eps) -> optax.GradientTransformation:
    """The optimizer `config` asks for, with traced λ, lr, ε.

    * `penalty='subgradient'` (default, the paper): `chain(add_l1(λ), adam(lr))`.
    * `'proximal'` / `'proximal_plain'`: `proximal_l1(adam(lr), ...)`.
    * `layer_lams`: λ of layer l is λ·layer_lams[l] (multipliers, so λ stays
      the one swept scalar).
    * `lam_schedule='warmup_ramp'`: λ·s(t), s = 0 for `lam_warmup` steps, then
      linear to 1 over `lam_ramp` steps.
    * `target_active`: a target-sparsity controller replaces λ (the
      configured λ is not used): every step λ = q·e^I, q the (1 − target)
      quantile of the task gradient's |g| over all edges (an edge with
      |g| < λ is driven to zero, so about (1 − target) of the edges are pushed
      at once: no lag, no wind-up), and an integral term I += gain·(active
      fraction at ε − target), clipped to ±2, corrects what the quantile
      alone misses. The λ applied is kept in the state (`L1State.lam`).
    """
    rule = _rule_of(config, lam, eps)
    penalty = getattr(config, "penalty", "subgradient")
    if penalty == "subgradient":
        return optax.chain(l1_subgradient_of(config, lam, eps), adam(lr))
    if penalty in ("proximal", "proximal_plain"):
        return proximal_l1(adam(lr), lam, lr, preconditioned=penalty == "proximal", rule=rule)
    raise ValueError(f"penalty={penalty!r} is invalid: allowed one of {', '.join(map(repr, PENALTIES))}")


def l1_subgradient_of(config, lam, eps) -> optax.GradientTransformation:
    """The subgradient L1 transform `config` asks for (the paper's when no option is set)."""
    rule = _rule_of(config, lam, eps)
    return add_l1_subgradient(lam) if rule.plain() else add_l1_subgradient_adaptive(rule)


def applied_penalty(config, lam, eps, opt_state, edges) -> Float[Array, ""]:
    """Σ_l λ_l·Σ|w_l| of `edges` with the λ the optimizer's last step used.

    The paper's constant λ gives λ·Σ|w|. With a schedule, per-layer
    multipliers or the target-sparsity controller, λ_l is what that step
    applied to layer l (read from the `L1State` in `opt_state`), so a history
    shows the penalty that was actually acting, not the base λ."""
    rule = _rule_of(config, lam, eps)
    if rule.plain():
        return lam * l1_norm(edges)
    (state,) = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, L1State))
                if isinstance(s, L1State)]
    lams = rule.last_lams(state, edges)
    return sum(lam_l * jnp.sum(jnp.abs(w)) for lam_l, w in zip(lams, jax.tree.leaves(edges)))


def _rule_of(config, lam, eps) -> _LamRule:
    schedule = None
    if getattr(config, "lam_schedule", "constant") == "warmup_ramp":
        schedule = warmup_ramp(config.lam_warmup, config.lam_ramp)
    return _LamRule(
        lam,
        layer_lams=getattr(config, "layer_lams", None),
        schedule=schedule,
        target_active=getattr(config, "target_active", None),
        eps=eps,
        gain=getattr(config, "target_gain", 0.01),
    )
