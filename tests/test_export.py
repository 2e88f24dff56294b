"""Verified minimal-graph export: JSON round trip, DOT, deviation from the full net; with bias
and skip edges."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import XOR7

from sbp_jax import export, network, tasks
from sbp_jax.export import compact, from_json, to_dot, to_json, verify
from sbp_jax.network import init_edges
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


def test_export_round_trip_with_bias(tmp_path):
    e = (jnp.concatenate([XOR7[0], jnp.zeros((1, 3), jnp.float32)], axis=0),  # a dead third hidden unit
         jnp.concatenate([XOR7[1][:, :2], jnp.array([[0.0, -2.0]], jnp.float32)], axis=1))
    g = export.compact(e, 1e-2, "relu", "sigmoid")
    assert g.bias and g.layers == (2, 2, 1) and [w.shape for w in g.edges] == [(2, 3), (1, 3)]
    back = export.from_json(json.loads(json.dumps(export.to_json(g))))
    assert back.layers == g.layers and back.bias
    for u, v in zip(back.edges, g.edges):
        np.testing.assert_array_equal(u, v)
    x = tasks.xor(0).x_train
    assert export.verify(back, e, 1e-2, x).max_abs_deviation == 0.0
    dot = export.to_dot(g)
    assert '"b1" [shape=box, label="1"]' in dot and '"b1" -> "y0"' in dot


def test_export_round_trip_with_skip_and_bias_edges():
    e = init_edges(jax.random.key(6), (2, 4, 3, 1), bias=True, bias_init="same", skip=True)
    e = tuple(jnp.where(jax.random.uniform(jax.random.key(7 + l), w.shape) < 0.5, 0.0, w) for l, w in enumerate(e))
    x = jax.random.uniform(jax.random.key(9), (20, 2))
    g = export.compact(e, 1e-2, "relu", "sigmoid", bias=True)
    assert g.skip and g.bias
    assert export.verify(g, e, 1e-2, x).max_abs_deviation < 1e-5
    doc = export.to_json(g)
    assert doc["skip"] and {ed["from_layer"] for ed in doc["edges"]} - {ed["layer"] for ed in doc["edges"]}
    back = export.from_json(json.dumps(doc))
    for a, b in zip(back.edges, g.edges):
        np.testing.assert_array_equal(a, b)
    assert export.verify(back, e, 1e-2, x).max_abs_deviation < 1e-5
    dot = export.to_dot(g)
    n_skip = sum(1 for ed in doc["edges"] if ed["from_layer"] < ed["layer"])
    assert n_skip and dot.count("->") == doc["n_edges"]
    assert g.module().layers == g.layers
