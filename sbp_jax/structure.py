"""Structure analysis: which edges are active, which nodes are live, what remains.

All functions are pure jnp over one run's edges and so `vmap` over a sweep.
An edge is *active* when |w| >= ε (the paper's count). A node is *live* when
it lies on a path of active edges from some input to some output; an active
edge is *effective* when it lies on such a path. Inputs and outputs are
judged the same way (an input with no path to an output is unused).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int

from .network import Edges

Masks = tuple[Bool[Array, "n_out n_in"], ...]


class Structure(NamedTuple):
    """Structure of one net (add a leading axis under `vmap`)."""

    active_per_layer: Int[Array, " L"]  # #{|w| >= ε} per layer, int32
    effective_per_layer: Int[Array, " L"]  # active edges on an input→output path
    live_per_layer: Int[Array, " L+1"]  # live nodes per layer, inputs and outputs included


def masks(edges: Edges, eps) -> Masks:
    """Boolean masks `|w| >= ε`, one per layer, shaped like `edges`."""
    return tuple(jnp.abs(w) >= eps for w in edges)


def reachability(m: Masks) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """(forward, backward) reachability per layer: `fwd[l][i]` is True when
    node i of layer l is reached from an input by active edges (all inputs
    are), `bwd[l][i]` when it reaches an output (all outputs do)."""
    fwd = [jnp.ones(m[0].shape[1], bool)]
    for mk in m:
        fwd.append(jnp.any(mk & fwd[-1][None, :], axis=1))
    bwd = [jnp.ones(m[-1].shape[0], bool)]
    for mk in reversed(m):
        bwd.append(jnp.any(mk & bwd[-1][:, None], axis=0))
    return tuple(fwd), tuple(reversed(bwd))


def live_nodes(m: Masks) -> tuple[Bool[Array, " n_l"], ...]:
    """Per layer (inputs first, outputs last): node lies on an active input→output path."""
    fwd, bwd = reachability(m)
    return tuple(f & b for f, b in zip(fwd, bwd))


def effective_masks(m: Masks) -> Masks:
    """Active edges that lie on some input→output path of active edges."""
    fwd, bwd = reachability(m)
    return tuple(mk & fwd[l][None, :] & bwd[l + 1][:, None] for l, mk in enumerate(m))


def analyse(edges: Edges, eps) -> Structure:
    """Counts of active edges, effective edges and live nodes of `edges` at ε."""
    m = masks(edges, eps)
    count = lambda ms: jnp.stack([jnp.sum(a, dtype=jnp.int32) for a in ms])
    return Structure(count(m), count(effective_masks(m)), count(live_nodes(m)))


def structure_dict(s: Structure, layers) -> dict:
    """A JSON-ready summary of one run's `Structure` (numpy/python values)."""
    active = [int(v) for v in np.asarray(s.active_per_layer)]
    live = [int(v) for v in np.asarray(s.live_per_layer)]
    return {
        "active_edges": sum(active),
        "total_edges": int(sum(a * b for a, b in zip(layers[:-1], layers[1:]))),
        "active_per_layer": active,
        "effective_edges": int(np.sum(np.asarray(s.effective_per_layer))),
        "live_nodes": live,
        "compact_layers": live,
    }


def prune(edges: Edges, eps) -> Edges:
    """Compact net: inactive edges zeroed, then every dead node removed.

    Returns edges of the compact architecture `(live_0, ..., live_L)` (layers
    with no live node keep width 0). Its outputs equal the masked full net's
    on the live outputs whenever σ(0) = 0 (relu, tanh, identity); with a
    sigmoid hidden layer a node without live inputs still emits σ(0) = 0.5,
    so use `masked` instead. Works on concrete (non-traced) arrays.
    """
    m = masks(edges, eps)
    live = [np.asarray(v) for v in live_nodes(m)]
    out = []
    for l, (w, mk) in enumerate(zip(edges, m)):
        w = np.where(np.asarray(mk), np.asarray(w), 0.0)
        out.append(jnp.asarray(w[np.ix_(live[l + 1], live[l])]))
    return tuple(out)


def masked(edges: Edges, eps) -> Edges:
    """`edges` with every inactive edge (|w| < ε) set to exactly zero."""
    return tuple(jnp.where(mk, w, 0.0) for w, mk in zip(edges, masks(edges, eps)))


def selected_features(edges: Edges, eps, names) -> list[str]:
    """Names of the input features the pruned net still uses: the live input
    nodes (on a path of active edges, |w| >= ε, to some output), in input order.

    Args:
      edges: one run's edges (concrete arrays, no sweep axis).
      eps: threshold ε.
      names: `layers[0]` feature names.
    Returns:
      list of the selected names (empty when every input is cut off).
    """
    names = list(names)
    if len(names) != edges[0].shape[1]:
        raise ValueError(f"len(names)={len(names)} is invalid: allowed {edges[0].shape[1]} (the input width)")
    live = np.asarray(live_nodes(masks(edges, eps))[0])
    return [n for n, keep in zip(names, live) if keep]
