"""Threshold sensitivity in one vmapped pass."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import adam_promotion

from sbp_jax import TrainConfig, analyse, evaluate, masked, train
from sbp_jax.threshold import default_eps_grid, margins, sensitivity


def test_sensitivity_matches_direct_counts(xor_data):
    cfg = TrainConfig(epochs=100, lr=3e-2, history_every=0)
    with adam_promotion():
        res = train(cfg, xor_data.x_train, xor_data.y_train, jax.random.key(0))
    grid = default_eps_grid(res.edges, cfg.eps, n=30)
    s = sensitivity(res.edges, xor_data.x_test, xor_data.y_test, grid, loss="bce", hidden_activation="relu")
    for i in (0, int(np.flatnonzero(grid == np.float32(cfg.eps))[0]), len(grid) // 2, len(grid) - 1):
        e = float(grid[i])
        assert int(s.active_edges[i]) == int(np.sum(analyse(res.edges, e).active_per_layer))
        direct = evaluate(masked(res.edges, e), xor_data.x_test, xor_data.y_test, loss="bce", hidden_activation="relu")
        assert float(s.metrics["accuracy"][i]) == pytest.approx(float(direct["accuracy"]))
    assert int(s.active_edges[-1]) == 0 and int(s.active_edges[0]) == 12
    assert np.all(np.diff(np.asarray(s.active_edges)) <= 0)
    m = margins(res.edges, cfg.eps)
    assert sum(int((v >= 0).sum()) for v in m) == int(np.sum(analyse(res.edges, cfg.eps).active_per_layer))


def test_bad_eps_raises():
    e = (np.ones((2, 2), np.float32),)
    with pytest.raises(ValueError, match="eps"):
        sensitivity(e, np.ones((1, 2), np.float32), np.ones((1, 2), np.float32), [-1.0], loss="mse", hidden_activation="relu")
