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
"""

from __future__ import annotations

import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .network import SparseMLP, forward
from .structure import bias_flags, live_nodes, masked, masks, reachability

FORMAT = "sbp_jax.graph/1"


class CompactGraph(NamedTuple):
    """A compact net and where its nodes came from."""

    edges: tuple[np.ndarray, ...]  # `(n_{l+1}, n_l)` float32 of the compact widths
    nodes: tuple[tuple[int, ...], ...]  # per layer: original indices of the kept nodes
    hidden_activation: str
    output_activation: str
    bias: bool = False  # every non-output layer's last node is its bias node

    @property
    def layers(self) -> tuple[int, ...]:
        """Widths of ordinary nodes (bias nodes not counted)."""
        L = len(self.edges)
        return tuple(len(n) - (self.bias and l < L) for l, n in enumerate(self.nodes))

    def module(self) -> SparseMLP:
        """The compact net as a runnable `network.SparseMLP`."""
        return SparseMLP(tuple(jnp.asarray(w) for w in self.edges), self.hidden_activation, self.output_activation)


def compact(edges, eps: float, hidden_activation: str, output_activation: str) -> CompactGraph:
    """Remove inactive edges and dead hidden nodes; keep all inputs and outputs.

    Raises:
      ValueError: with a sigmoid hidden activation, if a removed hidden node
        (no live input) feeds a kept node through an active edge.
    """
    edges = tuple(np.asarray(w, np.float32) for w in edges)
    m = tuple(np.asarray(a) for a in masks(edges, eps))
    flags = bias_flags(edges)
    live = [np.asarray(v).copy() for v in live_nodes(m)]
    L = len(edges)
    for l in range(1, L):
        if flags[l]:
            live[l][-1] = True  # the bias column stays (its dead edges are zeroed)
    keep = [np.ones(edges[0].shape[1], bool)] + [live[l] for l in range(1, L)] + [np.ones(edges[-1].shape[0], bool)]
    if hidden_activation == "sigmoid":
        fwd, _ = reachability(m)
        for l in range(1, L):
            for j in np.flatnonzero(~np.asarray(fwd[l])):
                feeds = np.flatnonzero(m[l][:, j] & keep[l + 1][: m[l].shape[0]])
                if feeds.size:
                    raise ValueError(
                        f"hidden_activation='sigmoid': hidden node {j} of layer {l} has no active input path "
                        f"but feeds node(s) {feeds.tolist()} of layer {l + 1}; it emits sigmoid(0)=0.5, a constant "
                        "a bias-free compact graph cannot represent. Export the masked full net "
                        "(structure.masked) instead, or train with a relu/tanh/identity hidden activation.")
    out = []
    for l, (w, mk) in enumerate(zip(edges, m)):
        w = np.where(mk, w, np.float32(0))
        out.append(w[np.ix_(keep[l + 1][: w.shape[0]], keep[l])].astype(np.float32))
    nodes = tuple(tuple(int(i) for i in np.flatnonzero(k)) for k in keep)
    return CompactGraph(tuple(out), nodes, hidden_activation, output_activation, bool(flags[0]))


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
    widths = g.layers
    for l, w in enumerate(g.edges):
        for i, j in zip(*np.nonzero(w)):
            src = "bias" if g.bias and j == widths[l] else int(j)
            edge_list.append({"layer": l, "from": src, "to": int(i), "weight": float(w[i, j]),
                              "from_original": g.nodes[l][j], "to_original": g.nodes[l + 1][i]})
    return {
        "format": FORMAT,
        "layers": list(g.layers),
        "nodes": [list(n) for n in g.nodes],
        "hidden_activation": g.hidden_activation,
        "output_activation": g.output_activation,
        "n_edges": len(edge_list),
        **({"bias": True} if g.bias else {}),
        "edges": edge_list,
        **({"meta": meta} if meta else {}),
    }


def from_json(d: dict | str) -> CompactGraph:
    """Load a graph written by `to_json` (a dict or JSON text)."""
    if isinstance(d, str):
        d = json.loads(d)
    if d.get("format") != FORMAT:
        raise ValueError(f"format={d.get('format')!r} is invalid: allowed {FORMAT!r}")
    layers = d["layers"]
    bias = bool(d.get("bias", False))
    edges = [np.zeros((layers[l + 1], layers[l] + bias), np.float32) for l in range(len(layers) - 1)]
    for e in d["edges"]:
        src = layers[e["layer"]] if e["from"] == "bias" else e["from"]
        edges[e["layer"]][e["to"], src] = np.float32(e["weight"])
    return CompactGraph(tuple(edges), tuple(tuple(n) for n in d["nodes"]), d["hidden_activation"],
                        d["output_activation"], bias)


def to_dot(g: CompactGraph, name: str = "sbp") -> str:
    """Graphviz DOT text: one rank per layer, edges labelled with their weight
    (blue positive, red negative, pen width ∝ |w|)."""
    L = len(g.edges)
    lines = [f"digraph {name} {{", "  rankdir=LR;", "  node [shape=circle, fontsize=10];"]
    wmax = max((float(np.abs(w).max()) for w in g.edges if w.size), default=1.0) or 1.0
    widths = g.layers
    name_of = lambda l, k: (f"b{l}" if g.bias and l < L and k == widths[l] else
                            ("x" if l == 0 else "y" if l == L else f"h{l}_") + str(g.nodes[l][k]))
    for l, nodes in enumerate(g.nodes):
        lines.append(f"  subgraph layer{l} {{ rank=same; " + " ".join(f'"{name_of(l, k)}";' for k in range(len(nodes))) + " }")
        if g.bias and l < L:
            lines.append(f'  "b{l}" [shape=box, label="1"];')
    for l, w in enumerate(g.edges):
        for i, j in zip(*np.nonzero(w)):
            v = float(w[i, j])
            lines.append(f'  "{name_of(l, j)}" -> "{name_of(l + 1, i)}" '
                         f'[label="{v:.3g}", color="{"blue" if v > 0 else "red"}", penwidth={0.5 + 3 * abs(v) / wmax:.2f}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
