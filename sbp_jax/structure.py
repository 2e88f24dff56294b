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

Skip connections (`TrainConfig.skip`): `edges[l]` has a column block per
earlier layer (`layout.Layout.blocks`); a path may jump layers, so a hidden
layer can be dead while inputs still reach outputs directly.

The layout is read from the shapes (`layout.layout_of`); the `bias`
argument, where a function has one, is needed only for nets with skip edges
and for one-layer nets with bias nodes (pass the config's flag).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int

from .layout import Layout, layout_of
from .network import Edges

Masks = tuple[Bool[Array, "n_out n_in"], ...]


class Structure(NamedTuple):
    """Structure of one net (add a leading axis under `vmap`)."""

    active_per_layer: Int[Array, " L"]  # #{|w| >= ε} per layer, int32
    effective_per_layer: Int[Array, " L"]  # active edges on an input→output path
    live_per_layer: Int[Array, " L+1"]  # live nodes per layer, inputs and outputs included, bias nodes not
    live_bias_per_layer: Int[Array, " L"]  # 1 where layer l's bias node is live (0 without bias)


def masks(edges: Edges, eps) -> Masks:
    """Boolean masks `|w| >= ε`, one per layer, shaped like `edges`."""
    return tuple(jnp.abs(w) >= eps for w in edges)


def reachability(m: Masks, bias: bool | None = None) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """(forward, backward) reachability per layer: `fwd[l][i]` is True when
    node i of layer l is reached from an input by active edges (all inputs
    and bias nodes are), `bwd[l][i]` when it reaches an output (all outputs
    do). Layers with a bias node have one more entry, last."""
    lay = layout_of(m, bias=bias)
    L, n = lay.n_layers, lay.widths
    true1 = jnp.ones(1, bool)
    with_bias = lambda v, b=true1: jnp.concatenate([v, b]) if lay.bias else v  # append the bias node's entry
    fwd = [with_bias(jnp.ones(n[0], bool))]
    for l, mk in enumerate(m):
        src = lay.gather(l, fwd, true1, jnp.concatenate)
        f = jnp.any(mk & src[None, :], axis=1)
        fwd.append(with_bias(f) if l + 1 < L else f)
    # backward: a node reaches an output through any of the layers it feeds
    node = [jnp.zeros(k, bool) for k in n[:-1]] + [jnp.ones(n[-1], bool)]
    bwd = [None] * (L + 1)
    bwd[L] = node[L]
    for l in reversed(range(L)):
        g = jnp.any(m[l] & node[l + 1][:, None], axis=0)
        for k, start, w in lay.blocks(l):
            node[k] = node[k] | g[start:start + w]
        bwd[l] = with_bias(node[l], g[-1:])  # layer l's in-edges come from edges[l-1]: node[l] is final
    return tuple(fwd), tuple(bwd)


def live_nodes(m: Masks, bias: bool | None = None) -> tuple[Bool[Array, " n_l"], ...]:
    """Per layer (inputs first, outputs last): node lies on an active
    input→output path (bias nodes, where present, last in their layer)."""
    fwd, bwd = reachability(m, bias)
    return tuple(f & b for f, b in zip(fwd, bwd))


def effective_masks(m: Masks, bias: bool | None = None) -> Masks:
    """Active edges that lie on some input→output path of active edges."""
    lay = layout_of(m, bias=bias)
    fwd, bwd = reachability(m, bias)
    true1 = jnp.ones(1, bool)
    return tuple(mk & lay.gather(l, fwd, true1, jnp.concatenate)[None, :] & bwd[l + 1][: mk.shape[0]][:, None]
                 for l, mk in enumerate(m))


def analyse(edges: Edges, eps, bias: bool | None = None) -> Structure:
    """Counts of active edges, effective edges and live nodes of `edges` at ε."""
    m = masks(edges, eps)
    lay = layout_of(m, bias=bias)
    count = lambda ms: jnp.stack([jnp.sum(a, dtype=jnp.int32) for a in ms])
    live = live_nodes(m, bias)
    nodes = [v[:k] for v, k in zip(live, lay.widths)]
    live_bias = jnp.stack([(v[-1] if lay.bias else jnp.zeros((), bool)).astype(jnp.int32) for v in live[:-1]])
    return Structure(count(m), count(effective_masks(m, bias)), count(nodes), live_bias)


def structure_dict(s: Structure, layout: Layout) -> dict:
    """A JSON-ready summary of one run's `Structure` (numpy/python values).

    `total_edges` counts every possible edge of `layout` (bias and skip
    edges included, e.g. `TrainConfig.layout`); `live_nodes` and
    `compact_layers` count ordinary nodes only, `live_bias_nodes` (per
    non-output layer, 0/1) the bias nodes."""
    active = [int(v) for v in np.asarray(s.active_per_layer)]
    live = [int(v) for v in np.asarray(s.live_per_layer)]
    d = {
        "active_edges": sum(active),
        "total_edges": layout.total_edges,
        "active_per_layer": active,
        "effective_edges": int(np.sum(np.asarray(s.effective_per_layer))),
        "live_nodes": live,
        "compact_layers": live,
    }
    if layout.bias:
        d["live_bias_nodes"] = [int(v) for v in np.asarray(s.live_bias_per_layer)]
    return d


def prune(edges: Edges, eps, bias: bool | None = None) -> Edges:
    """Compact net: inactive edges zeroed, then every dead node removed.

    Returns edges of the compact architecture `(live_0, ..., live_L)` in the
    same layout (layers with no live node keep width 0). A bias column is
    always kept (zeroed when the bias node is dead) so the compact net keeps
    the bias layout. Its outputs equal the masked full net's on the live
    outputs whenever σ(0) = 0 (relu, tanh, identity); with a sigmoid hidden
    layer a node without live inputs still emits σ(0) = 0.5, so use `masked`
    instead. Works on concrete (non-traced) arrays.
    """
    m = masks(edges, eps)
    lay = layout_of(m, bias=bias)
    live = [np.asarray(v[:k]) for v, k in zip(live_nodes(m, bias), lay.widths)]
    out = []
    for l, (w, mk) in enumerate(zip(edges, m)):
        w = np.where(np.asarray(mk), np.asarray(w), 0.0)
        cols = lay.gather(l, live, np.ones(1, bool), np.concatenate)
        out.append(jnp.asarray(w[np.ix_(live[l + 1], cols)]))
    return tuple(out)


def masked(edges: Edges, eps) -> Edges:
    """`edges` with every inactive edge (|w| < ε) set to exactly zero."""
    return tuple(jnp.where(mk, w, 0.0) for w, mk in zip(edges, masks(edges, eps)))


@functools.partial(jax.jit, static_argnames="bias")
def _live_inputs(edges: Edges, eps, bias: bool | None):
    return jax.vmap(lambda e, t: live_nodes(masks(e, t), bias)[0])(edges, eps)


def live_inputs(edges: Edges, eps, bias: bool | None = None) -> np.ndarray:
    """Per run, which inputs lie on a path of active edges to an output: `(C, n_in)` bool.

    `edges`: per layer `(C, n_out, n_in)` (a leading run axis); `eps`: `(C,)` or one ε.
    One compiled call for every run (`selected_features_per_run` names them)."""
    edges = tuple(jnp.asarray(w) for w in edges)
    eps = jnp.broadcast_to(jnp.asarray(eps, edges[0].dtype), edges[0].shape[:1])
    n_in = layout_of(tuple(w[0] for w in edges), bias=bias).widths[0]
    return np.asarray(_live_inputs(edges, eps, bias))[:, :n_in]


def selected_features(edges: Edges, eps, names, bias: bool | None = None) -> list[str]:
    """Names of the input features the pruned net still uses: the live input
    nodes (on a path of active edges, |w| >= ε, to some output), in input order.

    Args:
      edges: one run's edges (concrete arrays, no sweep axis).
      eps: threshold ε.
      names: `layers[0]` feature names.
      bias: the net's bias flag (see the module docstring).
    Returns:
      list of the selected names (empty when every input is cut off).
    """
    return selected_features_per_run(tuple(jnp.asarray(w)[None] for w in edges), eps, names, bias)[0]


def selected_features_per_run(edges: Edges, eps, names, bias: bool | None = None) -> list[list[str]]:
    """`selected_features` of every run of `edges` (per layer `(C, n_out, n_in)`; `eps` `(C,)` or
    one ε), from one `live_inputs` call."""
    names = list(names)
    live = live_inputs(edges, eps, bias)
    if len(names) != live.shape[1]:
        raise ValueError(f"len(names)={len(names)} is invalid: allowed {live.shape[1]} (the input width)")
    return [[n for n, keep in zip(names, row) if keep] for row in live]
