"""Numerical check of the minimal XOR graph with bias edges (the proof is in
the README, "Beyond the paper"): no sparsity pattern with 6 edges of a [2,2,1] or [2,3,1]
net with bias nodes classifies the noisy XOR training set (tasks.xor(0), 100
points) without error, while the 7-edge pattern relu(x1−x2), relu(x2−x1) →
output + bias does. (On the four *bare* corners 6 bias-free edges suffice:
the logit is exactly 0 at (0,0) and (1,1), which the z > 0 rule reads as
class 0; noisy points around those corners need strict signs.)

    python docs/beyond/check_xor_minimum.py [--starts 8] [--epochs 3000] [--skip]

With `--skip`: nets with skip *and* bias edges, [2,1,1] and [2,2,1], 5- and 6-edge patterns.

Every pattern is trained from `--starts` random initial values (he_normal,
bias columns too) with Adam (lr 0.05) on the bce loss of the noisy training set,
the mask fixed (`finetune.finetune_masked`, vmapped over patterns × starts);
a pattern "solves" XOR when some start classifies every training point.
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from sbp_jax import finetune, tasks
from sbp_jax.layout import Layout
from sbp_jax.metrics import evaluate
from sbp_jax.network import init_edges


def patterns(lay: Layout, n_edges: int) -> np.ndarray:
    """All 0/1 masks with `n_edges` edges over the positions of a net with layout `lay`
    (layers' arrays flattened in order): `(P, n_positions)`."""
    n = lay.total_edges
    return np.array([np.isin(np.arange(n), c) for c in itertools.combinations(range(n), n_edges)], bool)


def solved(lay: Layout, pats: np.ndarray, starts: int, epochs: int) -> np.ndarray:
    d = tasks.xor(0)
    x, y = jnp.asarray(d.x_train, jnp.float32), jnp.asarray(d.y_train, jnp.float32)
    P = len(pats)
    keys = jax.random.split(jax.random.key(0), P * starts)
    init = jax.vmap(lambda k: init_edges(k, lay.widths, bias=True, bias_init="same", skip=lay.skip))(keys)
    flat = np.repeat(pats, starts, axis=0)
    shapes = [lay.shape(l) for l in range(lay.n_layers)]
    cuts = np.cumsum([0] + [r * c for r, c in shapes])
    masks = tuple(jnp.asarray(flat[:, cuts[l]:cuts[l + 1]].reshape(-1, *sh)) for l, sh in enumerate(shapes))
    with jax.numpy_dtype_promotion("standard"):
        ft = jax.vmap(lambda e, m: finetune.finetune_masked(e, m, x, y, 0.05, epochs=epochs, loss="bce",
                                                            hidden_activation="relu"))
        out = ft(init, masks)
    acc = jax.vmap(lambda e: evaluate(e, x, y, loss="bce", hidden_activation="relu")["accuracy"])(out)
    return np.asarray(acc == 1.0).reshape(P, starts).any(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--starts", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3000)
    p.add_argument("--skip", action="store_true", help="nets with skip and bias edges (5 and 6 edges)")
    a = p.parse_args()
    for hidden in (1, 2) if a.skip else (2, 3):
        lay = Layout((2, hidden, 1), bias=True, skip=a.skip)
        for k in (5, 6) if a.skip else (6, 7):
            pats = patterns(lay, k)
            ok = solved(lay, pats, a.starts, a.epochs)
            print(f"[2,{hidden},1]+bias{'+skip' if a.skip else ''}, {k} edges: {len(pats)} patterns, "
                  f"{int(ok.sum())} classify all noisy training points", flush=True)


if __name__ == "__main__":
    main()
