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

from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
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
    keys = jax.random.split(key, len(layers) - 1)
    lay = Layout(tuple(layers), False, skip)
    edges = []
    for l, (k, n_out) in enumerate(zip(keys, layers[1:])):
        n_in = lay.n_cols(l)
        w = _draw(k, (n_out, n_in), n_in, n_out, scheme)
        if bias:
            if bias_init == "zeros":
                b = jnp.zeros((n_out, 1), jnp.float32)
            elif bias_init == "same":
                b = _draw(jax.random.fold_in(k, 1), (n_out, 1), n_in, n_out, scheme)
            else:
                raise ValueError(f"bias_init={bias_init!r} is invalid: allowed 'same', 'zeros'")
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
    if scheme == "glorot_uniform":
        a = (6.0 / (n_in + n_out)) ** 0.5
        return jax.random.uniform(k, shape, jnp.float32, -a, a)
    raise ValueError(f"scheme={scheme!r} is invalid: allowed 'uniform', 'he_normal', 'glorot_uniform'")


def _columns_affine(w: Float[Array, "n_out n_in"], cols: list) -> list:
    """`w @ h` on a list of n_in columns `(n,)`, returning n_out columns; with
    one column more in `w` than in `cols`, the last is a bias (`+ w[i, -1]`)."""
    k = len(cols)
    out = [sum(w[i, j] * cols[j] for j in range(k)) for i in range(w.shape[0])]
    if w.shape[1] == k + 1:
        out = [o + w[i, k] for i, o in enumerate(out)]
    return out


def forward(
    edges: Edges, x: Float[Array, "n n_in"], hidden_activation: str = "relu"
) -> Float[Array, "n n_out"]:
    """Raw network output (logits for classification, values for regression).

    Args:
      edges: tuple of `(n_{l+1}, n_l)` arrays, with a bias column and/or skip
        columns where the net has them (see the module docstring; the layout
        is read from the shapes and `x`).
      x: inputs, shape `(n_samples, n_0)`.
      hidden_activation: σ applied after every layer but the last.
    Returns:
      shape `(n_samples, n_L)`: the last layer's pre-activation.
    """
    act = _HIDDEN[hidden_activation]
    n = x.shape[0]
    lay = layout_of(edges, n_in=x.shape[1])

    def as_array(h):
        if not isinstance(h, list):
            return h
        return jnp.stack(h, axis=-1) if h else jnp.zeros((n, 0), x.dtype)

    # per layer: a `(n, width)` array, or a list of width `(n,)` columns for small layers
    hs = [x]
    for l, w in enumerate(edges):
        srcs = [hs[k] for k in lay.sources(l)]
        width = w.shape[1] - lay.bias
        if 0 < w.size <= SMALL_LAYER_EDGES:
            cols = [c for h in srcs for c in (h if isinstance(h, list) else [h[:, j] for j in range(h.shape[1])])]
            h = _columns_affine(w, cols)
        else:  # large layers, and empty ones (a fully pruned net)
            inp = srcs[0] if len(srcs) == 1 and not isinstance(srcs[0], list) else \
                jnp.concatenate([as_array(h) for h in srcs], axis=1)
            h = inp @ w[:, :width].T
            if lay.bias:
                h = h + w[:, width][None, :]
        if l < len(edges) - 1:
            h = [act(c) for c in h] if isinstance(h, list) else act(h)
        hs.append(h)
    return as_array(hs[-1])


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
