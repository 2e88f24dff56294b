"""Real data: minibatch training, feature selection, the masked fine-tune
baseline, and `python -m experiments.tabular` end to end per input kind."""

from __future__ import annotations


from conftest import adam_promotion

import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax.finetune import finetune_masked, magnitude_masks, magnitude_masks_per_layer
from sbp_jax.structure import selected_features





def test_selected_features_on_hand_made_edges():
    w1 = np.array([[1.0, 0.0, 0.5, 0.0],   # hidden 0 <- inputs a, c
                   [0.0, 0.0, 0.0, 0.9],   # hidden 1 <- input d, but hidden 1 has no output: d is dead
                   [0.0, 2.0, 0.0, 0.0]])  # hidden 2 <- input b
    w2 = np.array([[0.3, 0.0, 0.0]])       # output <- hidden 0 only
    assert selected_features((w1, w2), 0.1, ["a", "b", "c", "d"]) == ["a", "c"]
    assert selected_features((w1, w2), 0.6, ["a", "b", "c", "d"]) == []  # output edge pruned
    with pytest.raises(ValueError, match="len\\(names\\)=2"):
        selected_features((w1, w2), 0.1, ["a", "b"])


def test_magnitude_masks_and_masked_finetune():
    w = (jnp.array([[0.5, -0.1], [0.05, -2.0]]), jnp.array([[0.3, -0.01]]))
    m = magnitude_masks(w, 3)
    assert [np.asarray(a).tolist() for a in m] == [[[True, False], [False, True]], [[True, False]]]
    assert sum(int(np.asarray(a).sum()) for a in magnitude_masks(w, 0)) == 0
    ml = magnitude_masks_per_layer(w, jnp.array([1, 1]))
    assert [np.asarray(a).tolist() for a in ml] == [[[False, False], [False, True]], [[True, False]]]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(40, 2)), jnp.float32)
    y = jnp.asarray((np.asarray(x)[:, :1] > 0).astype(np.float32))
    with adam_promotion():
        ft = finetune_masked(w, m, x, y, 1e-2, epochs=50, loss="bce", hidden_activation="relu")
    for a, mk, w0 in zip(ft, m, w):
        a, mk = np.asarray(a), np.asarray(mk)
        assert np.all(a[~mk] == 0)  # pruned edges stay exactly zero
        assert np.any(a[mk] != np.asarray(w0)[mk])  # kept edges were trained
