"""The single-run kernel (`sbp_jax.single`); agreement with the reference: tests/test_conformance.py."""

from __future__ import annotations

import jax

from conftest import SMALL, adam_promotion, assert_tree_bitwise_equal

from sbp_jax import TrainConfig, tasks, train

XOR = TrainConfig(layers=(2, 4, 1), loss="bce", epochs=100, history_every=0)


def test_single_kernel_is_deterministic_and_flags_divergence():
    # bce: conftest's SMALL (the plain setting), whose single-kernel and reference programs test_network,
    # test_reference and test_train compile too (under adam_promotion, as here: the same jit cache entries);
    # mse stays under strict promotion (both kernels run without adam_promotion there).
    d = tasks.xor(data_seed=0)
    with adam_promotion():
        a = train(SMALL, d.x_train, d.y_train, jax.random.key(0), kernel="single")
        b = train(SMALL, d.x_train, d.y_train, jax.random.key(0))
        assert_tree_bitwise_equal(a, b)  # `train` picks it for the plain setting
        _flags_divergence(SMALL.replace(lr=1e20), d)
    _flags_divergence(XOR.replace(epochs=60, history_every=1, loss="mse", lr=1e20, layers=(2, 8, 1)), tasks.addition())


def _flags_divergence(bad, data):
    ref = train(bad, data.x_train, data.y_train, jax.random.key(1), kernel="reference")
    fast = train(bad, data.x_train, data.y_train, jax.random.key(1), kernel="single")
    assert int(fast.diverged_at) == int(ref.diverged_at) >= 0
