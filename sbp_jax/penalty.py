"""The L1 penalty as optax gradient transformations, and the optimizer a config asks for.

The paper's update is `w ← w − η·Adam(∂L_task/∂w + λ·sign(w))`: the
subgradient of λ·Σ|w| is added to the task gradient *before* Adam, so
`optax.chain(add_l1_subgradient(λ), adam(lr))` is exactly that rule. Beyond
the paper: a proximal L1 step (`proximal_l1`), and λ per step and layer from a
`lam_rule.LamRule` (schedules, per-layer multipliers, a target-sparsity
controller). Adam itself lives in `adam.py`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from .adam import ADAM_EPS, adam, bias_correction
from .config import PENALTIES  # validated in TrainConfig
from .lam_rule import L1State, LamRule, rule_of


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


def _per_leaf(fn, lams, *trees):
    """`jax.tree.map(fn, lam_l, *leaves_l)` with one λ per leaf (layer)."""
    treedef = jax.tree.structure(trees[0])
    leaves = [jax.tree.leaves(t) for t in trees]
    return jax.tree.unflatten(treedef, [fn(lam, *ls) for lam, *ls in zip(lams, *leaves)])


def add_l1_subgradient_adaptive(rule: LamRule) -> optax.GradientTransformation:
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
    rule: LamRule | None = None,
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
    rule = rule if rule is not None else LamRule(lam)

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
            c2 = bias_correction(optax.tree_utils.tree_get(inner_state, "count"))[1]
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
    rule = rule_of(config, lam, eps)
    penalty = getattr(config, "penalty", "subgradient")
    if penalty == "subgradient":
        return optax.chain(l1_subgradient_of(config, lam, eps), adam(lr))
    if penalty in ("proximal", "proximal_plain"):
        return proximal_l1(adam(lr), lam, lr, preconditioned=penalty == "proximal", rule=rule)
    raise ValueError(f"penalty={penalty!r} is invalid: allowed one of {', '.join(map(repr, PENALTIES))}")


def l1_subgradient_of(config, lam, eps) -> optax.GradientTransformation:
    """The subgradient L1 transform `config` asks for (the paper's when no option is set)."""
    rule = rule_of(config, lam, eps)
    return add_l1_subgradient(lam) if rule.plain() else add_l1_subgradient_adaptive(rule)


def applied_penalty(config, lam, eps, opt_state, edges) -> Float[Array, ""]:
    """Σ_l λ_l·Σ|w_l| of `edges` with the λ the optimizer's last step used.

    The paper's constant λ gives λ·Σ|w|. With a schedule, per-layer
    multipliers or the target-sparsity controller, λ_l is what that step
    applied to layer l (read from the `L1State` in `opt_state`), so a history
    shows the penalty that was actually acting, not the base λ."""
    rule = rule_of(config, lam, eps)
    if rule.plain():
        return lam * l1_norm(edges)
    (state,) = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, L1State))
                if isinstance(s, L1State)]
    lams = rule.last_lams(state, edges)
    return sum(lam_l * jnp.sum(jnp.abs(w)) for lam_l, w in zip(lams, jax.tree.leaves(edges)))
