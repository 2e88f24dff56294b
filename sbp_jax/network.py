"""The network: edges as a pytree, explicit-key initialisation, a pure forward pass.

A net with layer widths `(n_0, ..., n_L)` has one edge array per layer,
`edges[l]` of shape `(n_{l+1}, n_l)`: `edges[l][i, j]` is the weight of the
edge from node j of layer l to node i of layer l+1. There are no biases
(the paper's faithful model): `h_{l+1} = σ(edges[l] @ h_l)`.

Bias as an edge (`TrainConfig.bias`): every non-output layer gets a constant-1
node, stored as one extra last column, `edges[l]` of shape `(n_{l+1}, n_l + 1)`:
`h_{l+1} = σ(edges[l][:, :n_l] @ h_l + edges[l][:, n_l])`. Its out-edges are
ordinary leaves of the pytree, so the penalty, the threshold, pruning and the
counts treat them like any other edge.

Skip connections (`TrainConfig.skip`): layer l+1 is fed by every earlier
layer, `h_{l+1} = σ(edges[l] @ [h_0; h_1; …; h_l])` with `edges[l]` of shape
`(n_{l+1}, n_0 + … + n_l)` (plus the bias column): a layered DAG in which
the penalty decides which skip edges, and so how much depth, the net keeps.

`forward` reads the layout from the shapes and the input width
(`layout.layout_of`), so metrics, sweeps and fine-tuning need no flag.
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .layout import Layout, layout_of

Edges = tuple[Float[Array, "n_out n_in"], ...]

_HIDDEN = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "identity": lambda z: z,
}
_OUTPUT = {
    "sigmoid": jax.nn.sigmoid,
    "identity": lambda z: z,
    "softmax": lambda z: jax.nn.softmax(z, axis=-1),
}

# Layers with at most this many edges are unrolled into per-unit multiply-adds
# on `(n,)` columns: XLA fuses them into a few elementwise loops, which under
# `vmap` run over all configs at once (10x faster than a broadcast-and-sum and
# ~2x faster than a batched matmul for XOR [2,4,1] at 1k configs on a 2-core
# CPU; see benchmarks/README.md). Larger layers use a matrix product.
SMALL_LAYER_EDGES = 64


def is_wide(lay: Layout) -> bool:
    """Some layer of `lay` has more than `SMALL_LAYER_EDGES` edges (a matrix product there, not
    per-unit multiply-adds; the `wide` kernel's nets rather than `two_layer`'s)."""
    return any(r * c > SMALL_LAYER_EDGES for r, c in map(lay.shape, range(lay.n_layers)))


def init_edges(
    key: PRNGKeyArray,
    layers: Sequence[int],
    scheme: str = "he_normal",
    *,
    bias: bool = False,
    bias_init: str = "zeros",
    skip: bool = False,
) -> Edges:
    """Initial edge weights, one `(n_out, n_in)` float32 array per layer.

    Schemes (fan_in = n_in of the layer: with `skip`, all its source nodes
    n_0 + … + n_l):
      * `he_normal` (the `TrainConfig` default): N(0, 2/fan_in), the standard
        scale for ReLU nets. The README shows why it is the default: with the
        smaller PyTorch default below, λ=1e-2 prunes almost every XOR net.
      * `uniform`: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's `nn.Linear`
        default (variance 1/(3·fan_in), six times smaller than He).
      * `glorot_uniform`: U(-a, a), a = sqrt(6/(fan_in+fan_out)).

    With `bias`, the weights of the ordinary edges are exactly those drawn
    without bias (same key, same shape), and the bias column comes from
    `fold_in(layer key, 1)`: 'same' draws it from the layer's scheme (same
    fan_in), 'zeros' sets it to 0. Without `skip` the edges are bitwise those
    of earlier versions; with it every layer draws its wider array at once.

    Args:
      key: PRNG key; split once per layer.
      layers: widths `(n_0, ..., n_L)`.
      scheme: one of the above.
      bias: add a bias column (a constant-1 node) to every layer.
      bias_init: 'same' or 'zeros' (only read when `bias`).
      skip: feed every layer from all earlier layers (see the module docstring).
    Returns:
      tuple of L arrays, `edges[l]` of shape `Layout(layers, bias, skip).shape(l)`.
    """
    _check_init(scheme, bias, bias_init)
    return _init_edges(key, tuple(int(n) for n in layers), scheme, bias, bias_init, skip)


def _check_init(scheme: str, bias: bool, bias_init: str) -> None:
    if scheme not in ("uniform", "he_normal", "glorot_uniform"):
        raise ValueError(f"scheme={scheme!r} is invalid: allowed 'uniform', 'he_normal', 'glorot_uniform'")
    if bias and bias_init not in ("same", "zeros"):
        raise ValueError(f"bias_init={bias_init!r} is invalid: allowed 'same', 'zeros'")


def init_edges_batch(seeds, layers: Sequence[int], scheme: str = "he_normal", *, bias: bool = False,
                     bias_init: str = "zeros", skip: bool = False, timing: dict | None = None) -> tuple[np.ndarray, ...]:
    """`init_edges(jax.random.key(s), ...)` for every seed `s` of `seeds` `(C,)`: numpy arrays
    `(C, n_out, n_in)`, bitwise the single draws.

    One compiled program per net shape and scheme, whatever C (it draws `INIT_BLOCK` seeds per
    call), shared by every sweep and path of that shape in the process: the training programs
    take these edges instead of drawing them (the draws inside a sweep's program took about half
    of its compile time). `timing`, if a dict, gets the seconds spent compiling that program now
    added to `timing['compile_s']`."""
    _check_init(scheme, bias, bias_init)
    seeds = np.asarray(seeds).astype(np.uint32).reshape(-1)
    static = (tuple(int(n) for n in layers), scheme, bool(bias), bias_init, bool(skip))
    if static not in _INIT_PROGRAMS:
        t0 = time.perf_counter()
        block = jax.ShapeDtypeStruct((INIT_BLOCK,), jnp.uint32)
        _INIT_PROGRAMS[static] = _init_batch.lower(block, *static).compile()
        if timing is not None:
            timing["compile_s"] = timing.get("compile_s", 0.0) + time.perf_counter() - t0
    padded = np.concatenate([seeds, np.zeros(-len(seeds) % INIT_BLOCK, np.uint32)])
    blocks = [_INIT_PROGRAMS[static](padded[i:i + INIT_BLOCK]) for i in range(0, len(padded), INIT_BLOCK)]
    return tuple(np.concatenate([np.asarray(b[l]) for b in blocks])[:len(seeds)] for l in range(len(layers) - 1))


INIT_BLOCK = 64  # seeds per call of the compiled draw
_INIT_PROGRAMS: dict = {}  # (layers, scheme, bias, bias_init, skip) -> compiled draw of INIT_BLOCK seeds


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _init_batch(seeds, layers: tuple[int, ...], scheme: str, bias: bool, bias_init: str, skip: bool) -> Edges:
    return jax.vmap(lambda s: _init_edges(jax.random.key(s), layers, scheme, bias, bias_init, skip))(seeds)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _init_edges(key, layers: tuple[int, ...], scheme: str, bias: bool, bias_init: str, skip: bool) -> Edges:
    """`init_edges` as one compiled program per net shape and scheme (eager
    callers would otherwise compile each small random op on its own; inside
    a traced caller it inlines)."""
    keys = jax.random.split(key, len(layers) - 1)
    lay = Layout(layers, False, skip)
    edges = []
    for l, (k, n_out) in enumerate(zip(keys, layers[1:])):
        n_in = lay.n_cols(l)
        w = _draw(k, (n_out, n_in), n_in, n_out, scheme)
        if bias:
            if bias_init == "zeros":
                b = jnp.zeros((n_out, 1), jnp.float32)
            else:
                b = _draw(jax.random.fold_in(k, 1), (n_out, 1), n_in, n_out, scheme)
            w = jnp.concatenate([w, b], axis=1)
        edges.append(w)
    return tuple(edges)


def _draw(k, shape, n_in: int, n_out: int, scheme: str):
    """Weights of `shape` from `scheme` with the layer's fan-in/out."""
    if scheme == "uniform":
        a = 1.0 / n_in**0.5
        return jax.random.uniform(k, shape, jnp.float32, -a, a)
    if scheme == "he_normal":
        return jax.random.normal(k, shape, jnp.float32) * (2.0 / n_in) ** 0.5
    a = (6.0 / (n_in + n_out)) ** 0.5  # glorot_uniform
    return jax.random.uniform(k, shape, jnp.float32, -a, a)


def _columns_affine(w, cols: list) -> list:
    """`w @ h` on a list of n_in columns, returning n_out columns; with one
    column more in `w` than in `cols`, the last is a bias (`+ w[i, -1]`).

    Columns are `(n, *B)`; `w` is `(n_out, n_in, *B)` with the same trailing
    config axes B (none for one run, `(C,)` for C configs, configs last), so
    `w[i, j][None]` broadcasts against a column without rank promotion."""
    k = len(cols)
    out = [sum(w[i, j][None] * cols[j] for j in range(k)) for i in range(w.shape[0])]
    if w.shape[1] == k + 1:
        out = [o + w[i, k][None] for i, o in enumerate(out)]
    return out


def _dense(h, w):
    """`h @ w.T` for `h` `(n, n_in, *B1)` and `w` `(n_out, n_in, *B)`: `(n, n_out, *B)`.
    B = () is one run (a matrix product); with configs last, inputs shared by
    all configs (B1 = (1,)) make one matrix product over every config's units."""
    if w.ndim == 2:
        return h @ w.T
    if h.shape[2] == 1:
        return jnp.einsum("sj,ijc->sic", h[:, :, 0], w)
    return jnp.einsum("sjc,ijc->sic", h, w)


def forward_layers(edges: Edges, x, hidden_activation: str = "relu", lay: Layout | None = None):
    """The forward pass, layer by layer: `(hs, zs)`, `hs[l]` the activations of
    layer l (`hs[0]` the inputs) and `zs[l]` the pre-activations of layer l+1.

    Each entry is a list of `(n, *B)` columns (layers with at most
    `SMALL_LAYER_EDGES` edges, unrolled into per-unit multiply-adds) or an
    array `(n, width, *B)` (larger layers, a matrix product). B are trailing
    config axes: none for one run (`edges[l]` `(n_out, n_in)`, `x` `(n, n_0)`);
    C configs at once carry them last (`edges[l]` `(n_out, n_in, C)`, `x`
    `(n, n_0, 1)` when the configs share the data or `(n, n_0, C)`). This is
    the one definition of the net that every training kernel runs.
    """
    act = _HIDDEN[hidden_activation]
    if lay is None:
        lay = layout_of(edges, n_in=x.shape[1])
    n, trail = x.shape[0], x.shape[2:]
    hs, zs = [x], []
    for l, w in enumerate(edges):
        srcs = [hs[k] for k in lay.sources(l)]
        width = w.shape[1] - lay.bias
        # per-unit columns for small layers fed by the inputs or other small layers; a small layer
        # after a large one reads the large one's array (64 column slices of it measured 2.6x slower)
        if 0 < w.shape[0] * w.shape[1] <= SMALL_LAYER_EDGES and all(isinstance(h, list) or k == 0 for k, h in
                                                                  zip(lay.sources(l), srcs)):
            cols = [c for h in srcs for c in (h if isinstance(h, list) else [h[:, j] for j in range(h.shape[1])])]
            z = _columns_affine(w, cols)
        else:  # large layers, and empty ones (a fully pruned net)
            parts = [as_array(h, n, trail, x.dtype) for h in srcs]
            if len(parts) > 1:
                tail = jnp.broadcast_shapes(*(p.shape[2:] for p in parts))
                parts = [jnp.broadcast_to(p, (*p.shape[:2], *tail)) for p in parts]
            inp = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)
            z = _dense(inp, w[:, :width])
            if lay.bias:
                z = z + w[:, width][None]
        zs.append(z)
        if l < len(edges) - 1:
            hs.append([act(c) for c in z] if isinstance(z, list) else act(z))
    return hs, zs


def as_array(z, n: int, trail=(), dtype=jnp.float32):
    """A layer from `forward_layers` as one array `(n, width, *trail)`."""
    if not isinstance(z, list):
        return z
    return jnp.stack(z, axis=1) if z else jnp.zeros((n, 0, *trail), dtype)


def forward(
    edges: Edges, x: Float[Array, "n n_in"], hidden_activation: str = "relu", lay: Layout | None = None
) -> Float[Array, "n n_out"]:
    """Raw network output (logits for classification, values for regression).

    Args:
      edges: tuple of `(n_{l+1}, n_l)` arrays, with a bias column and/or skip
        columns where the net has them (see the module docstring; the layout
        is read from the shapes and `x`, or given as `lay`). Trailing config
        axes are allowed (see `forward_layers`).
      x: inputs, shape `(n_samples, n_0)` (`(n_samples, n_0, 1 or C)` with
        config axes).
      hidden_activation: σ applied after every layer but the last.
      lay: the net's `Layout` (needed when `edges` carry config axes).
    Returns:
      shape `(n_samples, n_L)` (`(n_samples, n_L, C)`): the last layer's pre-activation.
    """
    _, zs = forward_layers(edges, x, hidden_activation, lay)
    return as_array(zs[-1], x.shape[0], x.shape[2:], x.dtype)


def output_activation(z: Float[Array, "n n_out"], name: str) -> Float[Array, "n n_out"]:
    """Apply the output activation `name` ('sigmoid', 'identity' or 'softmax')."""
    return _OUTPUT[name](z)


class SparseMLP(eqx.Module):
    """A trained (or pruned) net as an equinox module (any layout: plain, bias, skip).

    Drop it into other JAX code: it is a pytree whose leaves are the edge
    arrays; `__call__` maps one example `(n_in,)` to its prediction `(n_out,)`
    (after the output activation); use `jax.vmap` for batches. `mask`, when
    given, zeroes inactive edges (`|w| < eps`) in the forward pass.
    """

    edges: Edges
    hidden_activation: str = eqx.field(static=True)
    output_activation: str = eqx.field(static=True)
    bias: bool | None = eqx.field(static=True, default=None)  # known bias flag (needed by `layers` with skip edges)

    @property
    def layers(self) -> tuple[int, ...]:
        """Widths of ordinary nodes `(n_0, ..., n_L)` (see `layout.layout_of`)."""
        return layout_of(self.edges, bias=self.bias).widths

    def logits(self, x: Float[Array, " n_in"]) -> Float[Array, " n_out"]:
        """The raw output for one example (before the output activation)."""
        return forward(self.edges, x[None, :], self.hidden_activation)[0]

    def __call__(self, x: Float[Array, " n_in"]) -> Float[Array, " n_out"]:
        return output_activation(self.logits(x)[None, :], self.output_activation)[0]
