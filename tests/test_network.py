"""Network: initialisation, forward pass on hand-computed cases, SparseMLP."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax import SparseMLP, forward, init_edges
from sbp_jax.network import SMALL_LAYER_EDGES, output_activation

# edges[0] (2 hidden x 2 inputs), edges[1] (1 output x 2 hidden)
W1 = np.array([[1.0, -2.0], [0.5, 1.0]], np.float32)
W2 = np.array([[1.0, 1.0]], np.float32)
X = np.array([[1.0, 1.0], [2.0, -1.0]], np.float32)
# pre-activations of the hidden layer: [[-1, 1.5], [4, 0]]
EXPECTED = {
    "relu": [[1.5], [4.0]],
    "identity": [[0.5], [4.0]],
    "tanh": [[np.tanh(-1.0) + np.tanh(1.5)], [np.tanh(4.0) + 0.0]],
    "sigmoid": [[1 / (1 + np.e) + 1 / (1 + np.exp(-1.5))], [1 / (1 + np.exp(-4.0)) + 0.5]],
}


@pytest.mark.parametrize("act", sorted(EXPECTED))
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_forward_hand_computed(act, jit):
    f = jax.jit(forward, static_argnums=2) if jit else forward
    z = f((jnp.asarray(W1), jnp.asarray(W2)), jnp.asarray(X), act)
    assert z.shape == (2, 1) and z.dtype == jnp.float32
    np.testing.assert_allclose(z, np.array(EXPECTED[act], np.float32), rtol=1e-6, atol=1e-6)


_forward = jax.jit(forward, static_argnums=2)
_init = jax.jit(init_edges, static_argnums=(1, 2))


def _random_net(seed, layers):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.normal(size=(b, a)), jnp.float32) for a, b in zip(layers[:-1], layers[1:]))


def test_forward_no_bias_zero_input_gives_zero():
    z = _forward(_random_net(0, (4, 5, 3)), jnp.zeros((2, 4), jnp.float32), "relu")
    assert z.shape == (2, 3)
    np.testing.assert_array_equal(z, 0.0)


def _numpy_forward(edges, x, act):
    h = np.asarray(x, np.float64)
    f = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[act]
    for w in edges[:-1]:
        h = f(h @ np.asarray(w, np.float64).T)
    return h @ np.asarray(edges[-1], np.float64).T


@pytest.mark.parametrize("layers", [(3, 4, 2), (20, 20, 2), (2, 200, 1), (1, 1)])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_forward_matches_numpy_small_and_large_layers(layers, act):
    # layers of <= SMALL_LAYER_EDGES edges and larger ones take different code paths
    sizes = [a * b for a, b in zip(layers[:-1], layers[1:])]
    assert (max(sizes) > SMALL_LAYER_EDGES) == (layers in [(20, 20, 2), (2, 200, 1)])
    edges = tuple(w / np.sqrt(w.shape[1]) for w in _random_net(1, layers))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(7, layers[0])), jnp.float32)
    z = _forward(edges, x, act)
    assert z.shape == (7, layers[-1]) and z.dtype == jnp.float32
    np.testing.assert_allclose(z, _numpy_forward(edges, x, act), rtol=2e-5, atol=2e-5)


def test_forward_vmaps_over_nets():
    nets = [_random_net(s, (3, 4, 2)) for s in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *nets)
    x = jnp.asarray(np.random.default_rng(5).normal(size=(5, 3)), jnp.float32)
    batched = jax.jit(jax.vmap(lambda e: forward(e, x, "relu")))(stacked)
    for i, e in enumerate(nets):
        np.testing.assert_allclose(batched[i], _numpy_forward(e, x, "relu"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scheme", ["uniform", "he_normal", "glorot_uniform"])
def test_init_shapes_dtype_determinism_and_scale(key, scheme):
    n_in, n_out = 300, 400  # big enough to check the scale of the first layer
    a = _init(key, (n_in, n_out, 2), scheme)
    assert [w.shape for w in a] == [(n_out, n_in), (2, n_out)]
    assert all(w.dtype == jnp.float32 for w in a)
    b = _init(key, (n_in, n_out, 2), scheme)
    assert all(np.asarray(u).tobytes() == np.asarray(v).tobytes() for u, v in zip(a, b))
    c = _init(jax.random.key(1), (n_in, n_out, 2), scheme)
    assert not np.allclose(a[0], c[0])
    w = np.asarray(a[0])
    if scheme == "he_normal":
        np.testing.assert_allclose(np.std(w), np.sqrt(2 / n_in), rtol=0.03)
        assert abs(float(np.mean(w))) < 0.01
    else:
        bound = 1 / np.sqrt(n_in) if scheme == "uniform" else np.sqrt(6 / (n_in + n_out))
        assert np.max(np.abs(w)) <= bound and np.max(np.abs(w)) > 0.99 * bound
        np.testing.assert_allclose(np.std(w), bound / np.sqrt(3), rtol=0.03)


def test_init_unknown_scheme(key):
    with pytest.raises(ValueError, match=r"scheme='xavier'.*'uniform', 'he_normal', 'glorot_uniform'"):
        init_edges(key, (2, 3), "xavier")


def test_output_activation():
    z = jnp.array([[0.0, np.log(3.0)]], jnp.float32)
    np.testing.assert_allclose(output_activation(z, "softmax"), [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(output_activation(z, "sigmoid"), [[0.5, 0.75]], rtol=1e-6)
    np.testing.assert_array_equal(output_activation(z, "identity"), z)


def test_sparse_mlp_is_a_pytree_and_predicts_one_example():
    m = SparseMLP((jnp.asarray(W1), jnp.asarray(W2)), "relu", "sigmoid")
    assert m.layers == (2, 2, 1)
    assert len(jax.tree.leaves(m)) == 2  # static fields are not leaves
    y = jax.jit(jax.vmap(m))(jnp.asarray(X))
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-np.array(EXPECTED["relu"]))), rtol=1e-6)
    np.testing.assert_allclose(m.logits(jnp.asarray(X[1])), [4.0], rtol=1e-6)
