"""Which node feeds which column: the layout of a net's edge arrays.

`edges[l]` holds every edge *into* layer l+1, one row per node of layer l+1
and one column per source node, in this order:

* plain (the paper): the nodes of layer l, `(n_{l+1}, n_l)`;
* skip connections (`TrainConfig.skip`, a layered DAG): the nodes of every
  earlier layer, inputs first, `(n_{l+1}, n_0 + … + n_l)`;
* with a bias node (`TrainConfig.bias`): one more, last, column: layer l's
  constant-1 node.

So `edges[l]` is always "all edges into layer l+1", which keeps per-layer λ,
per-layer counts and the magnitude baseline meaningful with skip edges.

The layout is a static, shape-level fact. `layout_of` reads it back from the
edge shapes: the skip flag always (for nets with a hidden layer), the bias
flag of a plain net too, but *not* the bias flag of a skip net — `[3, 4, 1]`
with skip edges and `[2, 4, 1]` with skip edges and bias nodes have the same
shapes — so there the caller passes `bias` or the input width `n_in`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence


class Layout(NamedTuple):
    """Widths and flags of a net; `blocks(l)` says what feeds `edges[l]`."""

    widths: tuple[int, ...]  # ordinary nodes per layer, inputs first, outputs last (bias nodes not counted)
    bias: bool = False  # every non-output layer has a constant-1 node (the last column of its edges)
    skip: bool = False  # layer l+1 is fed by all layers 0..l (else by layer l only)

    @property
    def n_layers(self) -> int:
        """Number of edge arrays L (= len(widths) − 1)."""
        return len(self.widths) - 1

    def sources(self, l: int) -> tuple[int, ...]:
        """Layers whose ordinary nodes feed `edges[l]`, in column order."""
        return tuple(range(l + 1)) if self.skip else (l,)

    def blocks(self, l: int) -> tuple[tuple[int, int, int], ...]:
        """`(source layer k, first column, n_k)` of each column block of `edges[l]`."""
        out, start = [], 0
        for k in self.sources(l):
            out.append((k, start, self.widths[k]))
            start += self.widths[k]
        return tuple(out)

    def start(self, l: int, k: int) -> int | None:
        """First column of layer k's block in `edges[l]` (None when layer k does not feed it)."""
        return next((s for kk, s, _ in self.blocks(l) if kk == k), None)

    def columns(self, l: int) -> tuple[tuple[int, int], ...]:
        """`(layer, node)` of every column of `edges[l]`; the bias node of layer l is node
        `widths[l]` (one past its ordinary nodes)."""
        return tuple((k, j) for k, _, n in self.blocks(l) for j in range(n)) + (((l, self.widths[l]),) if self.bias else ())

    def n_cols(self, l: int) -> int:
        """Columns of `edges[l]` (its bias column included)."""
        return sum(self.widths[k] for k in self.sources(l)) + self.bias

    def shape(self, l: int) -> tuple[int, int]:
        """Shape of `edges[l]`."""
        return (self.widths[l + 1], self.n_cols(l))

    @property
    def total_edges(self) -> int:
        """All possible edges (bias and skip edges included)."""
        return sum(r * c for r, c in map(self.shape, range(self.n_layers)))

    def gather(self, l: int, per_layer: Sequence, bias_value, concat):
        """Per-column values of `edges[l]`: `per_layer[k][:n_k]` of every source k,
        then `bias_value` (a length-1 sequence) when the net has bias nodes,
        joined by `concat` (e.g. `jnp.concatenate` or `np.concatenate`)."""
        parts = [per_layer[k][: n] for k, _, n in self.blocks(l)]
        return concat(parts + ([bias_value] if self.bias else []))


def layout_of(edges, *, n_in: int | None = None, bias: bool | None = None) -> Layout:
    """The `Layout` of `edges` (arrays or masks; only shapes are read).

    Args:
      edges: tuple of L two-dimensional arrays, `edges[l]` of shape
        `(n_{l+1}, columns)`.
      n_in: the input width, when known (e.g. from the data): fixes `bias`.
      bias: whether the net has bias nodes, when known. Needed for nets with
        skip edges when `n_in` is not given (see the module docstring). A
        one-layer net without either is taken as bias-free.
    Raises:
      ValueError: the shapes fit no layout (naming them), contradict `n_in` /
        `bias`, or leave the bias flag of a skip net undetermined.
    """
    shapes = [tuple(int(s) for s in w.shape) for w in edges]
    if not shapes or any(len(s) != 2 for s in shapes):
        raise ValueError(f"edges with shapes {shapes} are invalid: allowed a non-empty tuple of 2-D arrays")
    rows = [r for r, _ in shapes]
    cols = [c for _, c in shapes]
    L = len(shapes)

    def fits(b: int, skip: bool) -> bool:  # an unknown input width must be >= 1
        lay = Layout((cols[0] - b, *rows), bool(b), skip)
        return cols[0] - b >= (0 if n_in is not None else 1) and all(lay.shape(l) == shapes[l] for l in range(L))

    if n_in is not None:
        b = cols[0] - n_in
        if b not in (0, 1):
            raise ValueError(f"n_in={n_in} is invalid for edges[0] of shape {shapes[0]}: "
                             f"allowed {cols[0]} (no bias node) or {cols[0] - 1} (with one)")
        if bias is not None and bool(b) != bias:
            raise ValueError(f"bias={bias!r} is invalid: n_in={n_in} and edges[0] of shape {shapes[0]} say bias={bool(b)}")
        candidates = [b]
    elif bias is not None:
        candidates = [int(bias)]
    elif L == 1:
        candidates = [0]
    else:
        candidates = [b for b in (0, 1) if fits(b, False)] or [0, 1]
    found = [(b, s) for b in candidates for s in (False, True) if fits(b, s)]
    if not found:
        raise ValueError(f"edges with shapes {shapes} are invalid: they fit no layout (plain or skip, with or "
                         f"without bias nodes{'' if n_in is None else f', n_in={n_in}'}"
                         f"{'' if bias is None else f', bias={bias}'})")
    if len({b for b, _ in found}) > 1:
        raise ValueError(f"bias=None is ambiguous for edges with shapes {shapes} (skip edges): pass bias=True/False "
                         "or n_in")
    b, skip = found[0]  # plain before skip: both fit only when every earlier layer is empty (same net)
    return Layout((cols[0] - b, *rows), bool(b), skip and L > 1)
