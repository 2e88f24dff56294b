"""Threshold sensitivity: what one trained net looks like at every ε.

The paper fixes ε = 0.01. `sensitivity` evaluates the masked net (|w| < ε set
to 0) at a whole array of thresholds in one vectorised pass (`jax.vmap` over
ε), so the choice of ε can be judged after training; `margins` gives each
edge's distance |w| − ε from the threshold (negative: pruned).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .metrics import evaluate
from .network import Edges
from .structure import analyse, masked


class Sensitivity(NamedTuple):
    """Per-threshold results, leading axis `(n_eps,)`."""

    eps: Float[Array, " n_eps"]  # the thresholds, float32
    metrics: dict  # metric name -> `(n_eps,)` float32, masked net on (x, y)
    active_edges: Int[Array, " n_eps"]  # #{|w| >= ε}, int32
    effective_edges: Int[Array, " n_eps"]  # active edges on an input→output path
    live_hidden: Int[Array, " n_eps"]  # live hidden nodes


def sensitivity(edges: Edges, x, y, eps, *, loss: str, hidden_activation: str,
                bias: bool | None = None) -> Sensitivity:
    """Metrics and structure of `edges` masked at each ε of `eps`, in one `vmap`.

    Args:
      edges: one trained net (tuple of `(n_{l+1}, n_l)` arrays).
      x, y: data to evaluate on (as for `metrics.evaluate`).
      eps: thresholds, any 1-D array of finite values >= 0.
      loss, hidden_activation: the config's.
      bias: the config's bias flag (needed with skip edges, see `layout.layout_of`).
    Returns:
      `Sensitivity` with one entry per ε.
    """
    eps = np.asarray(eps, np.float32)
    if eps.ndim != 1 or eps.size == 0 or not np.all(np.isfinite(eps)) or np.any(eps < 0):
        raise ValueError(f"eps={eps!r} is invalid: allowed a non-empty 1-D array of finite values >= 0")
    edges = tuple(jnp.asarray(w, jnp.float32) for w in edges)

    def one(e):
        s = analyse(edges, e, bias)
        m = evaluate(masked(edges, e), x, y, loss=loss, hidden_activation=hidden_activation)
        return m, jnp.sum(s.active_per_layer), jnp.sum(s.effective_per_layer), jnp.sum(s.live_per_layer[1:-1])

    m, act, eff, live = jax.jit(jax.vmap(one))(jnp.asarray(eps))
    return Sensitivity(jnp.asarray(eps), m, act, eff, live)


def margins(edges: Edges, eps) -> tuple[np.ndarray, ...]:
    """|w| − ε per edge (same shapes as `edges`); >= 0 means active."""
    return tuple(np.abs(np.asarray(w, np.float32)) - np.float32(eps) for w in edges)


def default_eps_grid(edges: Edges, eps: float, n: int = 200) -> np.ndarray:
    """A log-spaced ε grid from 1e-4·ε_max to above the largest |w|, with `eps` and 0 included."""
    wmax = max(float(np.abs(np.asarray(w)).max()) for w in edges) or 1.0
    grid = np.geomspace(max(wmax * 1e-5, 1e-8), wmax * 1.01, n)
    return np.unique(np.concatenate([[0.0, eps], grid]).astype(np.float32))
