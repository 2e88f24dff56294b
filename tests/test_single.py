"""The single-run kernel (`sbp_jax.single`); agreement with the reference: tests/test_conformance.py."""

from __future__ import annotations

import jax

from conftest import assert_tree_bitwise_equal

from sbp_jax import TrainConfig, tasks, train

XOR = TrainConfig(layers=(2, 4, 1), loss="bce", epochs=100, history_every=0)


def test_single_kernel_is_deterministic_and_flags_divergence():
    d = tasks.xor(data_seed=0)
    cfg = XOR.replace(epochs=60, history_every=1)
    a = train(cfg, d.x_train, d.y_train, jax.random.key(0), kernel="single")
    b = train(cfg, d.x_train, d.y_train, jax.random.key(0))
    assert_tree_bitwise_equal(a, b)  # `train` picks it for the plain setting
    for loss, data in (("bce", d), ("mse", tasks.addition())):
        bad = cfg.replace(loss=loss, lr=1e20, layers=(2, 8, 1))
        ref = train(bad, data.x_train, data.y_train, jax.random.key(1), kernel="reference")
        fast = train(bad, data.x_train, data.y_train, jax.random.key(1), kernel="single")
        assert int(fast.diverged_at) == int(ref.diverged_at) >= 0
