"""The nets the benchmarks time: a `TrainConfig` for each, and its data from `sbp_jax.sources`.

The data always come from the library's registry (`sources.load_source(net)` with the
source's own defaults): the benchmarks keep no data loaders of their own.

* `xor`: the paper's XOR, [2,4,1], bce, 1000 epochs (100 training points);
* `addition`: the paper's a + b, [2,8,1], mse, 2000 epochs (200 training points);
* `breast_cancer`: a wider tabular net, [30,64,1], bce (341 training rows of 30
  standardised inputs; used by the per-option table, `benchmarks.options`).
"""

from __future__ import annotations

from sbp_jax.config import TrainConfig
from sbp_jax.datasets import Dataset
from sbp_jax.sources import load_source

# The two paper tasks: the single runs, the sweeps, the agreement check and the profiler use these.
TASK_CONFIGS = {
    "xor": TrainConfig(layers=(2, 4, 1), loss="bce", lam=1e-2, lr=1e-3, eps=1e-2, epochs=1000),
    "addition": TrainConfig(layers=(2, 8, 1), loss="mse", lam=1e-2, lr=1e-3, eps=1e-2, epochs=2000),
}

# Every net (the sweeps replace `epochs` with their own count).
NETS = {
    **TASK_CONFIGS,
    "breast_cancer": TrainConfig(layers=(30, 64, 1), loss="bce", lam=1e-2, lr=1e-3, eps=1e-2, epochs=300),
}


def load(net: str) -> Dataset:
    """The data of `net` (a key of `NETS`): `sources.load_source(net)`, the source's default splits."""
    if net not in NETS:
        raise ValueError(f"net={net!r} is invalid: allowed one of {', '.join(map(repr, NETS))}")
    return load_source(net)
