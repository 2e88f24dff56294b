"""Verified minimal-graph export: JSON round trip, DOT, deviation from the full net."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from sbp_jax import network
from sbp_jax.export import compact, from_json, to_dot, to_json, verify
from sbp_jax.structure import masked

EPS = 0.01


def _net():
    w1 = np.array([[1.0, -2.0], [0.5, 0.0], [0.001, 0.002], [0.0, 0.0]], np.float32)  # units 2, 3: no input
    w2 = np.array([[1.5, -0.7, 3.0, 0.0]], np.float32)  # unit 2 feeds the output but has no live input
    return w1, w2


@pytest.mark.parametrize("act", ["relu", "tanh", "identity"])
def test_compact_roundtrip_reproduces_outputs(act):
    e = _net()
    g = compact(e, EPS, act, "sigmoid")
    assert g.layers == (2, 2, 1) and g.nodes == ((0, 1), (0, 1), (0,))
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    assert verify(g, e, EPS, x).max_abs_deviation <= 1e-6
    text = json.dumps(to_json(g))
    back = from_json(text)
    full = network.forward(masked(e, EPS), x, act)
    loaded = jax.vmap(back.module().logits)(x)
    np.testing.assert_allclose(np.asarray(loaded), np.asarray(full), atol=1e-6)
    # the module's __call__ applies the output activation
    np.testing.assert_allclose(np.asarray(jax.vmap(back.module())(x)), np.asarray(jax.nn.sigmoid(full)), atol=1e-6)
    assert to_json(g)["n_edges"] == 5


def test_sigmoid_node_without_inputs_is_refused():
    with pytest.raises(ValueError, match="sigmoid.*node 2 of layer 1.*0.5"):
        compact(_net(), EPS, "sigmoid", "sigmoid")
    w1, w2 = _net()
    w2 = w2.copy()
    w2[0, 2] = 0.0
    g = compact((w1, w2), EPS, "sigmoid", "sigmoid")  # nothing constant reaches the output now
    x = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    assert verify(g, (w1, w2), EPS, x).max_abs_deviation <= 1e-6


def test_dot_lists_every_edge():
    g = compact(_net(), EPS, "relu", "sigmoid")
    dot = to_dot(g)
    assert dot.startswith("digraph") and dot.count("->") == 5 and '"x0" -> "h1_0"' in dot


def test_bad_json_is_refused():
    with pytest.raises(ValueError, match="format"):
        from_json({"format": "something else"})
