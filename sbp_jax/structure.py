"""Structure analysis: which edges are active, which nodes are live, what remains.

All functions are pure jnp over one run's edges and so `vmap` over a sweep.
An edge is *active* when |w| >= ε (the paper's count). A node is *live* when
it lies on a path of active edges from some input to some output; an active
edge is *effective* when it lies on such a path. Inputs and outputs are
judged the same way (an input with no path to an output is unused).

Bias nodes (`TrainConfig.bias`, the last column of `edges[l]`): a bias node
is a source, always "reached from an input", so a hidden node fed only by a
bias edge is live when it reaches an output. Its edges count in the active,
effective and total edge counts like any edge; bias nodes are *not* counted
in `live_per_layer` (which stays the compact architecture's widths) but in
`live_bias_per_layer` (1 when the layer's bias node has an effective edge).
Which layers have a bias node is read from the shapes (`bias_flags`).
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
    live_per_layer: Int[Array, " L+1"]  # live nodes per layer, inputs and outputs included, bias nodes not
    live_bias_per_layer: Int[Array, " L"]  # 1 where layer l's bias node is live (0 without bias)


def bias_flags(edges, bias: bool | None = None) -> tuple[bool, ...]:
    """Per layer, whether `edges[l]` has a bias column (a static, shape-level fact).

    Layer l >= 1 has one when its edge array has one column more than layer
    l−1 has rows. Layer 0 cannot tell by itself: it follows layer 1 (the
    config puts a bias node in every layer or in none) or, for a one-layer
    net, `bias` (default False)."""
    L = len(edges)
    flags = [edges[l].shape[1] == edges[l - 1].shape[0] + 1 for l in range(1, L)]
    first = flags[0] if flags else bool(bias)
    if bias is not None and flags and first != bias:
        raise ValueError(f"bias={bias!r} is invalid: the edge shapes say bias={first}")
    return (first, *flags)


def masks(edges: Edges, eps) -> Masks:
    """Boolean masks `|w| >= ε`, one per layer, shaped like `edges`."""
    return tuple(jnp.abs(w) >= eps for w in edges)


def reachability(m: Masks, bias: bool | None = None) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """(forward, backward) reachability per layer: `fwd[l][i]` is True when
    node i of layer l is reached from an input by active edges (all inputs
    and bias nodes are), `bwd[l][i]` when it reaches an output (all outputs
    do). Layers with a bias node (`bias_flags`) have one more entry, last."""
    flags = bias_flags(m, bias)
    fwd = [jnp.ones(m[0].shape[1], bool)]
    for l, mk in enumerate(m):
        f = jnp.any(mk & fwd[-1][None, :], axis=1)
        if l + 1 < len(m) and flags[l + 1]:
            f = jnp.concatenate([f, jnp.ones(1, bool)])
        fwd.append(f)
    bwd = [jnp.ones(m[-1].shape[0], bool)]
    for mk in reversed(m):
        bwd.append(jnp.any(mk & bwd[-1][: mk.shape[0]][:, None], axis=0))
    return tuple(fwd), tuple(reversed(bwd))


def live_nodes(m: Masks, bias: bool | None = None) -> tuple[Bool[Array, " n_l"], ...]:
    """Per layer (inputs first, outputs last): node lies on an active
    input→output path (bias nodes, where present, last in their layer)."""
    fwd, bwd = reachability(m, bias)
    return tuple(f & b for f, b in zip(fwd, bwd))


def effective_masks(m: Masks, bias: bool | None = None) -> Masks:
    """Active edges that lie on some input→output path of active edges."""
    fwd, bwd = reachability(m, bias)
    return tuple(mk & fwd[l][None, :] & bwd[l + 1][: mk.shape[0]][:, None] for l, mk in enumerate(m))


def analyse(edges: Edges, eps, bias: bool | None = None) -> Structure:
    """Counts of active edges, effective edges and live nodes of `edges` at ε."""
    m = masks(edges, eps)
    flags = bias_flags(m, bias)
    count = lambda ms: jnp.stack([jnp.sum(a, dtype=jnp.int32) for a in ms])
    live = live_nodes(m, bias)
    widths = [mk.shape[0] for mk in m]
    nodes = [live[0][: m[0].shape[1] - flags[0]]] + [v[:n] for v, n in zip(live[1:], widths)]
    live_bias = jnp.stack([(v[-1] if b else jnp.zeros((), bool)).astype(jnp.int32)
                           for v, b in zip(live[:-1], flags)])
    return Structure(count(m), count(effective_masks(m, bias)), count(nodes), live_bias)


def structure_dict(s: Structure, layers, bias: bool = False) -> dict:
    """A JSON-ready summary of one run's `Structure` (numpy/python values).

    `total_edges` counts the bias edges when `bias`; `live_nodes` and
    `compact_layers` count ordinary nodes only, `live_bias_nodes` (per
    non-output layer, 0/1) the bias nodes."""
    active = [int(v) for v in np.asarray(s.active_per_layer)]
    live = [int(v) for v in np.asarray(s.live_per_layer)]
    d = {
        "active_edges": sum(active),
        "total_edges": int(sum((a + bias) * b for a, b in zip(layers[:-1], layers[1:]))),
        "active_per_layer": active,
        "effective_edges": int(np.sum(np.asarray(s.effective_per_layer))),
        "live_nodes": live,
        "compact_layers": live,
    }
    if bias:
        d["live_bias_nodes"] = [int(v) for v in np.asarray(s.live_bias_per_layer)]
    return d


def prune(edges: Edges, eps) -> Edges:
    """Compact net: inactive edges zeroed, then every dead node removed.

    Returns edges of the compact architecture `(live_0, ..., live_L)` (layers
    with no live node keep width 0). A bias column is always kept (zeroed
    when the bias node is dead) so the compact net keeps the bias layout. Its outputs equal the masked full net's
    on the live outputs whenever σ(0) = 0 (relu, tanh, identity); with a
    sigmoid hidden layer a node without live inputs still emits σ(0) = 0.5,
    so use `masked` instead. Works on concrete (non-traced) arrays.
    """
    m = masks(edges, eps)
    flags = bias_flags(m)
    live = [np.asarray(v).copy() for v in live_nodes(m)]
    for l, b in enumerate(flags):
        if b:
            live[l][-1] = True
    out = []
    for l, (w, mk) in enumerate(zip(edges, m)):
        w = np.where(np.asarray(mk), np.asarray(w), 0.0)
        out.append(jnp.asarray(w[np.ix_(live[l + 1][: w.shape[0]], live[l])]))
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
    n_in = edges[0].shape[1] - bias_flags(edges)[0]
    if len(names) != n_in:
        raise ValueError(f"len(names)={len(names)} is invalid: allowed {n_in} (the input width)")
    live = np.asarray(live_nodes(masks(edges, eps))[0])[:n_in]
    return [n for n, keep in zip(names, live) if keep]
