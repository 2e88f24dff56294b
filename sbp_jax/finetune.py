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
import numpy as np
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

from .network import Edges, init_edges_batch
from .objective import task_loss
from .adam import adam
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
    opt = adam(lr)
    grad_fn = jax.grad(task_loss)

    def step(carry, _):
        e, s = carry
        g = mul(grad_fn(e, x, y, loss=loss, hidden_activation=hidden_activation), m)
        u, s = opt.update(g, s, e)
        e = mul(optax.apply_updates(e, mul(u, m)), m)
        return (e, s), None

    (edges, _), _ = jax.lax.scan(step, (edges, opt.init(edges)), length=epochs)
    return edges


# ---------------------------------------------------------------------------
# Retraining from the learned mask, the lottery-ticket rewind, and the
# magnitude baseline at equal edge counts -- all over a stacked sweep (a
# leading run axis on every leaf), as one vmapped call each.
# ---------------------------------------------------------------------------


def _finetune_stacked(edges, masks, x, y, lr, *, epochs: int, loss: str, hidden_activation: str) -> Edges:
    ft = functools.partial(finetune_masked, epochs=epochs, loss=loss, hidden_activation=hidden_activation)
    lr = jnp.asarray(lr, jnp.float32)
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam needs it (see tests/conftest.py)
        return jax.vmap(ft, in_axes=(0, 0, None, None, None))(tuple(edges), tuple(masks), x, y, lr)


def retrain_from_mask(
    edges: Edges, eps, x, y, lr, *, epochs: int, loss: str, hidden_activation: str
) -> Edges:
    """Fine-tune every run's surviving edges (|w| >= ε) without the penalty.

    Args:
      edges: a sweep's final edges, `edges[l]` of shape `(C, n_{l+1}, n_l[+1])`.
      eps: ε, a scalar or one per run `(C,)`.
      x, y: the training data (shared by all runs).
      lr: Adam learning rate (scalar).
      epochs, loss, hidden_activation: static settings of the fine-tune.
    Returns:
      fine-tuned edges shaped like `edges`; pruned edges are exactly 0.
    """
    eps = jnp.asarray(eps, jnp.float32)
    eps = jnp.broadcast_to(eps, (edges[0].shape[0],)) if eps.ndim == 0 else eps
    m = tuple(jnp.abs(w) >= eps.reshape((-1,) + (1,) * (w.ndim - 1)) for w in edges)
    return _finetune_stacked(edges, m, x, y, lr, epochs=epochs, loss=loss, hidden_activation=hidden_activation)


def rewind_and_retrain(
    edges: Edges, initial: Edges, eps, x, y, lr, *, epochs: int, loss: str, hidden_activation: str
) -> Edges:
    """The lottery-ticket variant: the survivors of `edges` (|w| >= ε) restart
    from their values in `initial` (the same runs' initial edges, e.g.
    `initial_edges`), the rest are 0; then fine-tune as `retrain_from_mask`."""
    eps = jnp.asarray(eps, jnp.float32)
    eps = jnp.broadcast_to(eps, (edges[0].shape[0],)) if eps.ndim == 0 else eps
    m = tuple(jnp.abs(w) >= eps.reshape((-1,) + (1,) * (w.ndim - 1)) for w in edges)
    return _finetune_stacked(initial, m, x, y, lr, epochs=epochs, loss=loss, hidden_activation=hidden_activation)


def initial_edges(config, seeds) -> Edges:
    """The initial edges of the runs with `seeds` `(C,)` (what `train` starts
    from with `jax.random.key(seed)`), stacked on a leading run axis."""
    return init_edges_batch(np.asarray(seeds), config.layers, config.init, bias=config.bias,
                            bias_init=config.bias_init, skip=config.skip)


def magnitude_baseline(
    dense: Edges, ks, x, y, lr, *, epochs: int, loss: str, hidden_activation: str
) -> tuple[Edges, Masks]:
    """Magnitude pruning at given edge counts: keep the `ks[c]` largest |w| of
    run c's dense net (global over layers), then fine-tune the kept edges.

    Args:
      dense: a sweep's dense (λ = 0) edges, leading run axis C.
      ks: edges to keep per run `(C,)` int (e.g. the sparse runs' active counts).
    Returns:
      (fine-tuned edges, the masks used).
    """
    m = jax.vmap(magnitude_masks)(tuple(dense), jnp.asarray(ks, jnp.int32))
    out = _finetune_stacked(dense, m, x, y, lr, epochs=epochs, loss=loss, hidden_activation=hidden_activation)
    return out, m
