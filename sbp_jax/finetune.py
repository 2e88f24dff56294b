"""The baseline the method is compared with: magnitude pruning + masked fine-tuning.

`magnitude_masks(edges, k)` keeps the k largest |w| over the whole net (global
magnitude pruning), `magnitude_masks_per_layer(edges, ks)` the ks[l] largest
in each layer l; `finetune_masked` then trains the kept edges with plain
Adam (no penalty) while the pruned ones stay exactly zero: the mask is applied
to the gradients, to Adam's updates and to the weights. Both are pure and
vmap over runs (k and lr may be traced).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

from .network import Edges
from .objective import task_loss
from .structure import Masks


def magnitude_masks(edges: Edges, k: Int[Array, ""] | int) -> Masks:
    """Masks keeping the `k` edges of largest |w| over all layers (ties at the
    threshold are all kept; k = 0 keeps none)."""
    flat = jnp.concatenate([jnp.abs(w).ravel() for w in edges])
    k = jnp.clip(jnp.asarray(k, jnp.int32), 0, flat.size)
    desc = jnp.sort(flat)[::-1]
    thr = jnp.where(k > 0, desc[jnp.maximum(k - 1, 0)], jnp.inf)
    return tuple(jnp.abs(w) >= thr for w in edges)


def magnitude_masks_per_layer(edges: Edges, ks: Int[Array, " L"]) -> Masks:
    """Masks keeping, in each layer l, the `ks[l]` edges of largest |w| (layer-wise
    magnitude pruning: the same per-layer budget as a given sparse net)."""
    return tuple(magnitude_masks((w,), k)[0] for w, k in zip(edges, jnp.asarray(ks, jnp.int32)))


@functools.partial(jax.jit, static_argnames=("epochs", "loss", "hidden_activation"))
def finetune_masked(
    edges: Edges,
    masks: Masks,
    x: Float[Array, "n n_in"],
    y: Array,
    lr: Float[Array, ""] | float,
    *,
    epochs: int,
    loss: str,
    hidden_activation: str,
) -> Edges:
    """Fine-tune `edges` with Adam(lr), full batch, for `epochs` steps with the
    sparsity pattern `masks` fixed. Returns edges that are exactly zero
    wherever the mask is False."""
    m = tuple(mk.astype(w.dtype) for w, mk in zip(edges, masks))
    mul = lambda a, b: jax.tree.map(jnp.multiply, a, b)
    edges = mul(edges, m)
    opt = optax.adam(lr)
    grad_fn = jax.grad(task_loss)

    def step(carry, _):
        e, s = carry
        g = mul(grad_fn(e, x, y, loss=loss, hidden_activation=hidden_activation), m)
        u, s = opt.update(g, s, e)
        e = mul(optax.apply_updates(e, mul(u, m)), m)
        return (e, s), None

    (edges, _), _ = jax.lax.scan(step, (edges, opt.init(edges)), length=epochs)
    return edges
