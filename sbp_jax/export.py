"""Verified minimal-graph export: the learned graph as JSON and Graphviz DOT.

`compact` removes inactive edges (|w| < ε) and dead hidden nodes (off every
active input→output path, `structure.live_nodes`). Unlike `structure.prune`
it keeps every input and output, so the exported net is a drop-in
replacement with the same interface; unused inputs and unreached outputs are
listed in the JSON. `verify` checks that the compact net reproduces the full
masked net's outputs on the data and reports the largest deviation.

A removed hidden node contributes exactly 0 downstream when σ(0) = 0 (relu,
tanh, identity). With a sigmoid hidden activation a node without live inputs
still emits σ(0) = 0.5 into its active out-edges, a constant a bias-free
graph cannot carry; `compact` refuses such a net with a clear error.

Bias nodes (`TrainConfig.bias`): the bias column of every layer is kept (its
dead edges zeroed), so the compact net keeps the bias layout; in `nodes` a
layer's bias node appears last with index `n_l` (one past its ordinary
nodes), in the JSON as `"bias": true` with edges `"from": "bias"`, and in DOT
as a box node `b<l>` labelled 1.

Skip connections (`TrainConfig.skip`): the compact net keeps the layered-DAG
layout (`layout.Layout`); in the JSON `"skip": true` and every edge carries
`"from_layer"` (the layer of its source node; without skip edges it is
always `layer`).
"""

from __future__ import annotations

import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .network import SparseMLP, forward
from .layout import Layout, layout_of
from .structure import live_nodes, masked, masks, reachability

FORMAT = "sbp_jax.graph/1"


class CompactGraph(NamedTuple):
    """A compact net and where its nodes came from."""

    edges: tuple[np.ndarray, ...]  # `(n_{l+1}, n_l)` float32 of the compact widths
    nodes: tuple[tuple[int, ...], ...]  # per layer: original indices of the kept nodes
    hidden_activation: str
    output_activation: str
    bias: bool = False  # every non-output layer's last node is its bias node
    skip: bool = False  # every layer is fed by all earlier layers (see `layout.py`)

    @property
    def layers(self) -> tuple[int, ...]:
        """Widths of ordinary nodes (bias nodes not counted)."""
        L = len(self.edges)
        return tuple(len(n) - (self.bias and l < L) for l, n in enumerate(self.nodes))

    @property
    def layout(self) -> Layout:
        return Layout(self.layers, self.bias, self.skip)

    def module(self) -> SparseMLP:
        """The compact net as a runnable `network.SparseMLP`."""
        return SparseMLP(tuple(jnp.asarray(w) for w in self.edges), self.hidden_activation, self.output_activation,
                         self.bias)


def compact(edges, eps: float, hidden_activation: str, output_activation: str,
            bias: bool | None = None) -> CompactGraph:
    """Remove inactive edges and dead hidden nodes; keep all inputs and outputs.

    `bias` is the net's bias flag (needed with skip edges, see `layout_of`).

    Raises:
      ValueError: with a sigmoid hidden activation, if a removed hidden node
        (no live input) feeds a kept node through an active edge.
    """
    edges = tuple(np.asarray(w, np.float32) for w in edges)
    m = tuple(np.asarray(a) for a in masks(edges, eps))
    lay = layout_of(edges, bias=bias)
    n, L = lay.widths, lay.n_layers
    live = [np.asarray(v[:k]) for v, k in zip(live_nodes(m, lay.bias), n)]
    keep = [np.ones(n[0], bool)] + live[1:L] + [np.ones(n[L], bool)]
    if hidden_activation == "sigmoid":
        fwd, _ = reachability(m, lay.bias)
        for l in range(1, L):
            dead = ~np.asarray(fwd[l][: n[l]])
            for t in range(l, L):  # the layers node (l, j) feeds: l+1 only, or all later ones with skip edges
                start = lay.start(t, l)
                if start is None:
                    continue
                for j in np.flatnonzero(dead):
                    feeds = np.flatnonzero(m[t][:, start + j] & keep[t + 1])
                    if feeds.size:
                        raise ValueError(
                            f"hidden_activation='sigmoid': hidden node {j} of layer {l} has no active input path "
                            f"but feeds node(s) {feeds.tolist()} of layer {t + 1}; it emits sigmoid(0)=0.5, a "
                            "constant a bias-free compact graph cannot represent. Export the masked full net "
                            "(structure.masked) instead, or train with a relu/tanh/identity hidden activation.")
    out = []
    for l, (w, mk) in enumerate(zip(edges, m)):
        w = np.where(mk, w, np.float32(0))
        cols = lay.gather(l, keep, np.ones(1, bool), np.concatenate)  # the bias column stays (dead edges zeroed)
        out.append(w[np.ix_(keep[l + 1], cols)].astype(np.float32))
    nodes = tuple(tuple(int(i) for i in np.flatnonzero(k)) + ((n[l],) if lay.bias and l < L else ())
                  for l, k in enumerate(keep))
    return CompactGraph(tuple(out), nodes, hidden_activation, output_activation, lay.bias, lay.skip)


class Verification(NamedTuple):
    max_abs_deviation: float  # max |compact(x) − masked_full(x)| over data and outputs (raw outputs)
    n_samples: int


def verify(g: CompactGraph, edges, eps: float, x) -> Verification:
    """Compare the compact net's raw outputs with the full net's with inactive edges zeroed, on `x`."""
    x = jnp.asarray(x, jnp.float32)
    full = forward(masked(tuple(jnp.asarray(w) for w in edges), eps), x, g.hidden_activation)
    mine = jax.vmap(g.module().logits)(x)
    return Verification(float(jnp.max(jnp.abs(full - mine))) if x.shape[0] else 0.0, int(x.shape[0]))


def to_json(g: CompactGraph, *, meta: dict | None = None) -> dict:
    """A JSON-ready dict: layers, node provenance, edges with weights, activations."""
    edge_list = []
    lay = g.layout
    for l, w in enumerate(g.edges):
        for i, j in zip(*np.nonzero(w)):
            k, src = lay.columns(l)[j]
            edge_list.append({"layer": l, "from_layer": k, "from": "bias" if src == lay.widths[k] else src,
                              "to": int(i), "weight": float(w[i, j]), "from_original": g.nodes[k][src],
                              "to_original": g.nodes[l + 1][i]})
    return {
        "format": FORMAT,
        "layers": list(g.layers),
        "nodes": [list(n) for n in g.nodes],
        "hidden_activation": g.hidden_activation,
        "output_activation": g.output_activation,
        "n_edges": len(edge_list),
        **({"bias": True} if g.bias else {}),
        **({"skip": True} if g.skip else {}),
        "edges": edge_list,
        **({"meta": meta} if meta else {}),
    }


def from_json(d: dict | str) -> CompactGraph:
    """Load a graph written by `to_json` (a dict or JSON text)."""
    if isinstance(d, str):
        d = json.loads(d)
    if d.get("format") != FORMAT:
        raise ValueError(f"format={d.get('format')!r} is invalid: allowed {FORMAT!r}")
    lay = Layout(tuple(d["layers"]), bool(d.get("bias", False)), bool(d.get("skip", False)))
    edges = [np.zeros(lay.shape(l), np.float32) for l in range(lay.n_layers)]
    for e in d["edges"]:
        l = e["layer"]
        if e["from"] == "bias":
            col = lay.n_cols(l) - 1
        else:
            col = lay.start(l, e.get("from_layer", l)) + e["from"]
        edges[l][e["to"], col] = np.float32(e["weight"])
    return CompactGraph(tuple(edges), tuple(tuple(n) for n in d["nodes"]), d["hidden_activation"],
                        d["output_activation"], lay.bias, lay.skip)


def to_dot(g: CompactGraph, name: str = "sbp") -> str:
    """Graphviz DOT text: one rank per layer, edges labelled with their weight
    (blue positive, red negative, pen width ∝ |w|)."""
    L = len(g.edges)
    lines = [f"digraph {name} {{", "  rankdir=LR;", "  node [shape=circle, fontsize=10];"]
    wmax = max((float(np.abs(w).max()) for w in g.edges if w.size), default=1.0) or 1.0
    lay = g.layout
    widths = lay.widths
    name_of = lambda l, k: (f"b{l}" if g.bias and l < L and k == widths[l] else
                            ("x" if l == 0 else "y" if l == L else f"h{l}_") + str(g.nodes[l][k]))
    for l, nodes in enumerate(g.nodes):
        lines.append(f"  subgraph layer{l} {{ rank=same; " + " ".join(f'"{name_of(l, k)}";' for k in range(len(nodes))) + " }")
        if g.bias and l < L:
            lines.append(f'  "b{l}" [shape=box, label="1"];')
    for l, w in enumerate(g.edges):
        for i, j in zip(*np.nonzero(w)):
            v = float(w[i, j])
            lines.append(f'  "{name_of(*lay.columns(l)[j])}" -> "{name_of(l + 1, i)}" '
                         f'[label="{v:.3g}", color="{"blue" if v > 0 else "red"}", penwidth={0.5 + 3 * abs(v) / wmax:.2f}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
