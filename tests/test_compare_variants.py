"""experiments.compare_variants: its check of the minimal graphs per net family."""

import jax.numpy as jnp
import numpy as np
from conftest import XOR7

from sbp_jax import TrainConfig, tasks


def test_compare_variants_recognises_the_five_edge_skip_xor_net():
    from experiments.compare_variants import assess

    # −2·x1 + x2 + 3·relu(x1 − x2): corners (1,0) → 1, (0,1) → 1, (1,1) → −1, (0,0) → 0 (class 0)
    net = (jnp.array([[1.0, -1.0]]), jnp.array([[-2.0, 1.0, 3.0]]))
    mirror = (jnp.array([[-1.0, 1.0]]), jnp.array([[1.0, -2.0, 3.0]]))
    stacked = tuple(jnp.stack(ws) for ws in zip(net, mirror))
    cfg = TrainConfig(layers=(2, 1, 1), skip=True)
    out = assess(stacked, cfg, tasks.xor(0), "accuracy")
    assert out["effective"].tolist() == [5, 5] and out["corners"].tolist() == [1.0, 1.0]
    assert out["found"].all()
    # without the hidden unit the net is linear: z(1,1) = z(1,0) + z(0,1) > 0, so the corners fail
    linear = (jnp.zeros((1, 2)), jnp.array([[1.0, 1.0, 0.0]]))
    out = assess(tuple(w[None] for w in linear), cfg, tasks.xor(0), "accuracy")
    assert out["corners"].tolist() == [0.75] and not out["found"].any()


def test_compare_variants_assess_recognises_the_minimal_xor_graph():
    from experiments.compare_variants import assess

    data = tasks.xor(0)
    cfg = TrainConfig(layers=(2, 2, 1), bias=True)
    # the second net has one edge more: a small bias on hidden unit 0 (still computes XOR)
    stacked = (jnp.stack([XOR7[0], XOR7[0].at[0, 2].set(0.05)]), jnp.stack([XOR7[1], XOR7[1]]))
    out = assess(stacked, cfg, data, "accuracy")
    assert out["effective"].tolist() == [7, 8] and out["found"].tolist() == [True, False]
    assert out["near"].tolist() == [True, True]
    assert np.all(out["robust"] < out["test"])  # removing any edge of the minimal net hurts


def test_minimal_structure_sizes_per_net_family():
    from experiments.compare_variants import minimal_structure

    ok = {"train": np.array([1.0]), "corners": np.array([1.0]), "test": np.array([0.995])}
    sizes = {(b, s): minimal_structure(TrainConfig(bias=b, skip=s), ok)[0] for b in (False, True) for s in (False, True)}
    assert sizes == {(False, False): 6, (True, False): 7, (False, True): 5, (True, True): 6}
    add = TrainConfig(layers=(2, 8, 1), loss="mse")
    assert [minimal_structure(add.replace(skip=s), ok)[0] for s in (False, True)] == [3, 2]
