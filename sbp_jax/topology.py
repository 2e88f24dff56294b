"""Topology statistics across seeds: which graphs does the method learn, and how often?

A learned graph is put in a canonical form so that two nets that differ only
by a permutation of hidden units (or by dead nodes and inactive edges) compare
equal:

1. keep the active edges (|w| >= ε) and the live nodes
   (`structure.live_nodes`); every edge that survives lies on an
   input→output path;
2. order the hidden units of every layer canonically: colour refinement
   (1-dimensional Weisfeiler–Lehman) on the layered graph, starting from
   inputs and outputs labelled by their index and hidden units by their layer,
   sorts units by their connectivity signature; units still tied are ordered
   by trying every permutation within each tie class and keeping the
   lexicographically smallest adjacency. Colours are isomorphism-invariant,
   so the result is exact: two graphs have the same form if and only if one
   is a hidden-unit permutation of the other. (The brute-force step is
   bounded by `MAX_TIE_PERMUTATIONS`; beyond it the refinement order is used
   and the form is flagged `exact=False`.)

Inputs and outputs keep their identity (x1 ≠ x2). With `signed=True` an
edge's sign is part of the graph.

Bias nodes (`TrainConfig.bias`) are fixed, labelled sources like the inputs:
a hidden unit's bias edge is part of its initial colour, and each layer's
adjacency carries the bias edges as a last column (only effective ones, i.e.
into live nodes); `CanonicalGraph.bias` says so and `widths` count ordinary
nodes only.

Skip connections (`TrainConfig.skip`): colour refinement runs over every
edge of the DAG (a unit's in- and out-neighbours may lie several layers
away), and each layer's adjacency row lists the unit's edges from all
earlier layers (blocks in layer order, `layout.Layout.blocks`), each block
in its layer's canonical order.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import math
from typing import NamedTuple, Sequence

import numpy as np

from .layout import Layout, layout_of
from .structure import live_nodes, masks

MAX_TIE_PERMUTATIONS = 40320  # 8!


class CanonicalGraph(NamedTuple):
    """A learned graph up to hidden-unit permutation (hashable, comparable)."""

    widths: tuple[int, ...]  # live nodes per layer (inputs and outputs: all of them)
    inputs: tuple[int, ...]  # indices of the inputs that are used
    outputs: tuple[int, ...]  # indices of the outputs that are reached
    adjacency: tuple[tuple[tuple[int, ...], ...], ...]  # per layer `(n_out, n_in)` in {0, 1} (or {-1, 0, 1})
    exact: bool  # False if the tie-breaking search was cut short
    bias: bool = False  # adjacency rows end with the bias node's edge (one extra column per layer)
    skip: bool = False  # adjacency rows hold the edges from every earlier layer (see the module docstring)

    @property
    def n_edges(self) -> int:
        return sum(int(np.count_nonzero(np.asarray(a))) for a in self.adjacency if len(a))

    @property
    def key(self) -> str:
        """A short stable hash of the form (12 hex digits)."""
        return hashlib.sha1(repr((self.widths, self.inputs, self.outputs, self.adjacency)).encode()).hexdigest()[:12]

    @property
    def layout(self) -> Layout:
        return Layout(self.widths, self.bias, self.skip)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Adjacency as int8 arrays, `layout.shape(l)` (`(widths[l+1], widths[l] [+ 1])` without skip edges)."""
        return tuple(np.asarray(a, np.int8).reshape(self.layout.shape(l)) for l, a in enumerate(self.adjacency))

    def to_dict(self) -> dict:
        return {"key": self.key, "widths": list(self.widths), "inputs": list(self.inputs),
                "outputs": list(self.outputs), "n_edges": self.n_edges,
                "adjacency": [[list(r) for r in a] for a in self.adjacency], "exact": self.exact,
                **({"bias": True} if self.bias else {}), **({"skip": True} if self.skip else {})}


def _live_adjacency(edges, eps, signed: bool, bias: bool | None):
    """Adjacency restricted to live ordinary nodes: `adj[l]` maps each source
    layer k of `edges[l]` to its block `(kept of layer l+1, kept of layer k)`;
    `keep[l]` = kept node indices; `badj[l]` = the bias node's edges into the
    kept nodes of layer l+1 (None without bias); and the full net's layout."""
    m = [np.asarray(a) for a in masks(tuple(np.asarray(w) for w in edges), eps)]
    lay = layout_of(m, bias=bias)
    live = [np.asarray(v) for v in live_nodes(tuple(m), lay.bias)]
    keep = [np.flatnonzero(v[:n]) for v, n in zip(live, lay.widths)]
    adj, badj = [], []
    for l, (w, mk) in enumerate(zip(edges, m)):
        a = mk.astype(np.int8) * (np.sign(np.asarray(w)).astype(np.int8) if signed else 1)
        adj.append({k: a[:, s:s + n][np.ix_(keep[l + 1], keep[k])] for k, s, n in lay.blocks(l)})
        badj.append(a[keep[l + 1], -1] if lay.bias else None)
    return adj, keep, badj, lay


def _refine(adj: list[dict], badj=None) -> list[np.ndarray]:
    """Stable colour-refinement colours (ints, canonical across isomorphic graphs) per layer."""
    L = len(adj)
    widths = [adj[0][0].shape[1]] + [next(iter(a.values())).shape[0] for a in adj]
    badj = badj if badj is not None else [None] * L
    b_in = lambda l, j: int(badj[l - 1][j]) if l > 0 and badj[l - 1] is not None else 0
    # initial colours: inputs/outputs by index (they are labelled), hidden by layer and bias edge
    col = [[("i", j) if l == 0 else ("o", j, b_in(l, j)) if l == L else ("h", l, b_in(l, j)) for j in range(n)]
           for l, n in enumerate(widths)]
    ranks = _rank(col)
    for _ in range(sum(widths) + 1):
        sig = []
        for l, n in enumerate(widths):
            layer = []
            for j in range(n):
                ins = tuple(sorted((int(ranks[s][k]), int(a[j, k])) for s, a in adj[l - 1].items()
                                   for k in range(widths[s]) if a[j, k])) if l > 0 else ()
                outs = tuple(sorted((int(ranks[t + 1][k]), int(adj[t][l][k, j])) for t in range(l, L) if l in adj[t]
                                    for k in range(widths[t + 1]) if adj[t][l][k, j]))
                layer.append((int(ranks[l][j]), ins, outs))
            sig.append(layer)
        new = _rank(sig)
        if all(np.array_equal(a, b) for a, b in zip(new, ranks)) or \
                len({v for r in new for v in r}) == len({v for r in ranks for v in r}):
            ranks = new
            break
        ranks = new
    return ranks


def _rank(per_layer: list[list]) -> list[np.ndarray]:
    """Replace every (layer, label) by its rank among all labels (sorted by (layer, label))."""
    allv = sorted({(l, repr(v)) for l, layer in enumerate(per_layer) for v in layer})
    idx = {v: i for i, v in enumerate(allv)}
    return [np.array([idx[(l, repr(v))] for v in layer], np.int64) for l, layer in enumerate(per_layer)]


def canonical_form(edges, eps: float, *, signed: bool = False, bias: bool | None = None) -> CanonicalGraph:
    """The canonical form of the graph of `edges` at threshold ε (see the module docstring).

    Args:
      edges: one net's edges (tuple of `(n_{l+1}, n_l)` arrays).
      eps: activity threshold.
      signed: keep the sign of each active edge as part of the graph.
      bias: the net's bias flag (needed with skip edges, see `layout.layout_of`).
    Returns:
      a `CanonicalGraph`; equal for hidden-unit-permuted copies of one net.
    """
    adj, keep, badj, lay = _live_adjacency(edges, eps, signed, bias)
    L = len(adj)
    ranks = _refine(adj, badj)
    orders, tie_groups = [], []
    for l in range(1, L):
        order = list(np.argsort(ranks[l], kind="stable"))
        groups = [list(g) for _, g in itertools.groupby(order, key=lambda j: ranks[l][j])]
        orders.append(order)
        tie_groups.append([g for g in groups if len(g) > 1])
    n_perm = math.prod(math.factorial(len(g)) for gs in tie_groups for g in gs)
    exact = n_perm <= MAX_TIE_PERMUTATIONS

    def encode(hidden_orders):
        perm = [list(range(len(keep[0])))] + hidden_orders + [list(range(len(keep[-1])))]
        blocks = []
        for l, parts in enumerate(adj):
            a = [b[np.ix_(perm[l + 1], perm[k])] for k, b in parts.items()]
            if lay.bias:
                a.append(np.asarray(badj[l], np.int8)[perm[l + 1]][:, None])
            a = np.concatenate(a, axis=1)
            blocks.append(tuple(tuple(int(v) for v in row) for row in a))
        return tuple(blocks)

    def candidates():
        if not exact or n_perm == 1:
            yield orders
            return
        per_layer = []
        for l in range(1, L):
            groups = [list(g) for _, g in itertools.groupby(orders[l - 1], key=lambda j: ranks[l][j])]
            per_layer.append([list(itertools.permutations(g)) for g in groups])
        for choice in itertools.product(*(itertools.product(*gs) for gs in per_layer)):
            yield [[j for g in layer for j in g] for layer in choice]

    best = min(encode(c) for c in candidates())
    widths = (len(keep[0]),) + tuple(len(k) for k in keep[1:])
    return CanonicalGraph(widths, tuple(int(v) for v in keep[0]), tuple(int(v) for v in keep[-1]), best, exact,
                          lay.bias, lay.skip)


def canonical_forms(stacked_edges, eps, *, signed: bool = False, bias: bool | None = None) -> list[CanonicalGraph]:
    """Canonical forms of every run of a sweep (`stacked_edges[l]` of shape `(C, n_{l+1}, n_l)`);
    `eps` a scalar or one value per run."""
    stacked = [np.asarray(w) for w in stacked_edges]
    C = stacked[0].shape[0]
    eps = np.broadcast_to(np.asarray(eps, np.float32), (C,))
    return [canonical_form(tuple(w[i] for w in stacked), float(eps[i]), signed=signed, bias=bias) for i in range(C)]


class TopologyStats(NamedTuple):
    n_runs: int
    counts: list[tuple[CanonicalGraph, int]]  # distinct graphs, most frequent first
    survival: tuple[np.ndarray, ...]  # per raw edge position: fraction of runs where it is active
    aligned_survival: tuple[np.ndarray, ...]  # per edge in canonical hidden order (padded to full width)
    consensus: tuple[np.ndarray, ...]  # aligned_survival >= 0.5 (bool)

    @property
    def n_distinct(self) -> int:
        return len(self.counts)


def _aligned(form: CanonicalGraph, layers: Sequence[int]) -> tuple[np.ndarray, ...]:
    """The canonical adjacency (|·|) padded to the full widths: inputs/outputs at their own
    index, hidden units in canonical order first, dead units last."""
    arrs = [np.abs(a) for a in form.arrays()]
    pos = [list(form.inputs)] + [list(range(w)) for w in form.widths[1:-1]] + [list(form.outputs)]
    full_lay = Layout(tuple(layers), form.bias, form.skip)
    out = []
    for l, a in enumerate(arrs):
        full = np.zeros(full_lay.shape(l), np.float64)
        cols = [s + p for k, s, _ in full_lay.blocks(l) for p in pos[k]] + ([full_lay.n_cols(l) - 1] if form.bias else [])
        if a.size:
            full[np.ix_(pos[l + 1], cols)] = a
        out.append(full)
    return tuple(out)


def topology_stats(stacked_edges, eps, layers: Sequence[int], *, signed: bool = False,
                   bias: bool | None = None) -> TopologyStats:
    """Distinct graphs, their frequencies, per-edge survival and the consensus graph of a sweep.

    Args:
      stacked_edges: per layer `(C, n_{l+1}, n_l)` edges of C runs.
      eps: threshold (scalar or `(C,)`).
      layers: the full layer widths.
      bias: the runs' bias flag (needed with skip edges).
    """
    forms = canonical_forms(stacked_edges, eps, signed=signed, bias=bias)
    C = len(forms)
    counts = collections.Counter(forms)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].n_edges, kv[0].key))
    stacked = [np.asarray(w) for w in stacked_edges]
    e = np.broadcast_to(np.asarray(eps, np.float32), (C,))
    survival = tuple(np.mean(np.abs(w) >= e[:, None, None], axis=0) for w in stacked)
    aligned = [_aligned(f, layers) for f in forms]
    aligned_survival = tuple(np.mean([a[l] for a in aligned], axis=0) for l in range(len(layers) - 1))
    consensus = tuple(s >= 0.5 for s in aligned_survival)
    return TopologyStats(C, ordered, survival, aligned_survival, consensus)


def stats_dict(st: TopologyStats, top: int = 10) -> dict:
    """JSON-ready summary of `TopologyStats`."""
    return {
        "n_runs": st.n_runs,
        "n_distinct_graphs": st.n_distinct,
        "top_graphs": [dict(f.to_dict(), count=c, frequency=c / st.n_runs) for f, c in st.counts[:top]],
        "edge_survival": [s.tolist() for s in st.survival],
        "aligned_edge_survival": [s.tolist() for s in st.aligned_survival],
        "consensus_graph": [c.astype(int).tolist() for c in st.consensus],
        "consensus_edges": int(sum(int(c.sum()) for c in st.consensus)),
    }
