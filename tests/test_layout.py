"""Layout: shapes of plain, bias and skip nets, and reading the layout back from edge shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import adam_promotion

from sbp_jax import sweep
from sbp_jax.config import TrainConfig
from sbp_jax.layout import Layout, layout_of
from sbp_jax.network import init_edges


@pytest.mark.parametrize("layers", [(2, 4, 1), (3, 5, 2, 2), (1, 1, 1), (4, 3, 3, 3, 1)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("skip", [False, True])
def test_layout_shapes_round_trip(layers, bias, skip):
    lay = Layout(layers, bias, skip)
    e = init_edges(jax.random.key(0), layers, bias=bias, skip=skip)
    assert tuple(w.shape for w in e) == tuple(lay.shape(l) for l in range(len(layers) - 1))
    assert sum(w.size for w in e) == lay.total_edges == TrainConfig(layers=layers, bias=bias, skip=skip).total_edges
    assert layout_of(e, n_in=layers[0]) == lay  # the input width always resolves the layout
    assert layout_of(e, bias=bias) == lay
    if not skip:
        assert layout_of(e) == lay  # a plain net's bias flag is in its shapes


def test_layout_of_refuses_the_ambiguous_skip_bias_case_and_bad_shapes():
    e = init_edges(jax.random.key(0), (2, 4, 1), bias=True, skip=True)  # same shapes as [3,4,1] with skip
    with pytest.raises(ValueError, match="bias=None is ambiguous"):
        layout_of(e)
    assert layout_of(e, bias=False) == Layout((3, 4, 1), False, True)
    with pytest.raises(ValueError, match=r"n_in=5 is invalid"):
        layout_of(e, n_in=5)
    with pytest.raises(ValueError, match="fit no layout"):
        layout_of((jnp.zeros((4, 2)), jnp.zeros((1, 9))))
    assert Layout((2, 4, 1), skip=True).blocks(1) == ((0, 0, 2), (1, 2, 4))


def test_one_layer_net_with_bias_counts_its_bias_node_separately_in_sweeps(xor_data):
    # shapes alone cannot tell (2 inputs + bias) from 3 inputs: the sweep passes the config's flag
    cfg = TrainConfig(layers=(2, 1), bias=True, bias_init="same", epochs=5, history_every=0)
    with adam_promotion():
        out = sweep.run_grid(cfg, xor_data, sweep.make_grid(cfg, seeds=2), mesh=None)
    live = np.asarray(out.structure.live_per_layer)
    assert live.shape == (2, 2) and np.all(live[:, 0] <= 2)
    np.testing.assert_array_equal(np.asarray(out.structure.live_bias_per_layer), [[1], [1]])
