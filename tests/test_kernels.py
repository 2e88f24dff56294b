"""Which kernel runs (`sbp_jax.kernels.select`): the choice, the reason logged, forced kernels."""

from __future__ import annotations

import jax
import pytest

from sbp_jax import TrainConfig, make_grid, run_grid, tasks, train

XOR = TrainConfig(layers=(2, 4, 1), loss="bce", epochs=100, history_every=0)


def test_forcing_a_kernel_that_does_not_fit_is_an_error():
    d = tasks.xor(data_seed=0)
    with pytest.raises(ValueError, match=r"kernel='single' is invalid for this config \(dropout=0.1.*allowed 'auto'"):
        train(XOR.replace(dropout=0.1), d.x_train, d.y_train, jax.random.key(0), kernel="single")
    with pytest.raises(ValueError, match=r"kernel='two_layer' is invalid.*one hidden layer"):
        run_grid(XOR.replace(layers=(2, 3, 3, 1)), d, make_grid(XOR, seeds=1), kernel="two_layer")
    with pytest.raises(ValueError, match=r"kernel='fast' is invalid: allowed one of 'auto', 'single'"):
        train(XOR, d.x_train, d.y_train, jax.random.key(0), kernel="fast")
    with pytest.raises(ValueError, match=r"kernel='single' is invalid for this config \(a sweep"):
        run_grid(XOR, d, make_grid(XOR, seeds=1), kernel="single")


def test_select_names_the_field_that_keeps_a_config_off_the_fastest_kernel(caplog):
    from sbp_jax.kernels import select as select_kernel

    with caplog.at_level("INFO", logger="sbp_jax"):
        c = select_kernel(XOR.replace(hidden_activation="tanh", lam=0.5).static_part(), single=False)
        assert c == ("autodiff", "not two_layer: hidden_activation='tanh': the hand-written gradients cover "
                                 "relu and identity")
        assert select_kernel(XOR.replace(bias=True).static_part(), single=False) == ("two_layer", None)
        assert select_kernel(XOR.static_part(), single=True) == ("single", None)
        c = select_kernel(XOR.replace(batch_size=8).static_part(), single=True)
        assert c.kernel == "two_layer" and c.why_not_faster.startswith("not single: batch_size=8")
    lines = [r.getMessage() for r in caplog.records if r.name == "sbp_jax"]
    assert any("kernel autodiff (not two_layer: hidden_activation='tanh'" in m for m in lines)
    assert any("kernel two_layer (not single: batch_size=8" in m for m in lines)
