"""Task metrics: accuracy for classification; MSE, MAE, R² for regression.

Pure jnp (vmap-able). `z` is the raw network output `(n, n_out)`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from .network import Edges, forward

CLASSIFICATION_METRICS = ("accuracy",)
REGRESSION_METRICS = ("mse", "mae", "r2")


def accuracy(z: Float[Array, "n n_out"], y: Array, loss: str) -> Float[Array, ""]:
    """Fraction correct: sign of each logit vs y ∈ {0,1} for 'bce' (mean over
    outputs too), argmax vs integer labels for 'cross_entropy'."""
    if loss == "cross_entropy":
        return jnp.mean(jnp.argmax(z, axis=-1) == y)
    return jnp.mean((z > 0) == (y > 0.5))


def regression_metrics(z: Float[Array, "n n_out"], y: Float[Array, "n n_out"]) -> dict:
    """MSE, MAE and R² = 1 − SS_res/SS_tot (SS over all outputs, each output
    centred on its own mean)."""
    err = z - y
    ss_res = jnp.sum(jnp.square(err))
    ss_tot = jnp.sum(jnp.square(y - jnp.mean(y, axis=0, keepdims=True)))
    return {
        "mse": jnp.mean(jnp.square(err)),
        "mae": jnp.mean(jnp.abs(err)),
        "r2": 1.0 - ss_res / ss_tot,
    }


def evaluate(edges: Edges, x, y, *, loss: str, hidden_activation: str) -> dict:
    """Metrics of the net `edges` on `(x, y)`: {'accuracy'} or {'mse','mae','r2'}."""
    z = forward(edges, x, hidden_activation)
    if loss == "mse":
        return regression_metrics(z, y)
    return {"accuracy": accuracy(z, y, loss)}


def metric_names(loss: str) -> tuple[str, ...]:
    return REGRESSION_METRICS if loss == "mse" else CLASSIFICATION_METRICS
