"""Network: initialisation, forward pass on hand-computed cases, bias edges, skip connections,
structural dropout, SparseMLP, and training through the forward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SMALL, adam_promotion, assert_tree_bitwise_equal

from sbp_jax import SparseMLP, TrainConfig, analyse, forward, init_edges, sweep, train
from sbp_jax.layout import Layout
from sbp_jax.network import SMALL_LAYER_EDGES, init_edges_batch, output_activation

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


# Jitted (one compiled program per shape instead of one per eager op; the eager forward pass is
# test_forward_hand_computed's).
_forward = jax.jit(forward, static_argnums=2)
_init = jax.jit(init_edges, static_argnums=(1, 2))
_init_kw = jax.jit(init_edges, static_argnums=(1, 2), static_argnames=("bias", "bias_init", "skip"))


def _random_net(seed, layers):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.normal(size=(b, a)), jnp.float32) for a, b in zip(layers[:-1], layers[1:]))


def test_forward_no_bias_zero_input_gives_zero():
    z = _forward(_random_net(0, (4, 5, 3)), jnp.zeros((2, 4), jnp.float32), "relu")
    assert z.shape == (2, 3)
    np.testing.assert_array_equal(z, 0.0)


def _numpy_forward(edges, x, act="relu", *, bias=False, skip=False):
    """float64 numpy forward: layer l+1 reads h_l (with skip: [h_0, ..., h_l]), then a ones column
    with bias."""
    f = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[act]
    hs = [np.asarray(x, np.float64)]
    for l, w in enumerate(edges):
        inp = np.concatenate((hs if skip else hs[-1:]) + ([np.ones((len(x), 1))] if bias else []), axis=1)
        z = inp @ np.asarray(w, np.float64).T
        hs.append(f(z) if l < len(edges) - 1 else z)
    return hs[-1]


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


@pytest.mark.parametrize("scheme,bias,bias_init,skip", [("he_normal", False, "zeros", False),
                                                     ("glorot_uniform", True, "same", True)])
def test_init_edges_batch_is_the_single_draws_compiled_once(scheme, bias, bias_init, skip):
    """The shared draw program of the training programs: bitwise `init_edges` of each seed's key;
    its compile is reported once per net shape and scheme, whatever the number of seeds (blocks of 64)."""
    layers, seeds = (3, 5, 2, 2), [0, 7, 4_000_000_000, *range(100, 170)]  # 73 seeds: two blocks
    t = {}
    got = init_edges_batch(seeds, layers, scheme, bias=bias, bias_init=bias_init, skip=skip, timing=t)
    assert t["compile_s"] > 0
    for i, s in enumerate(seeds):
        one = init_edges(jax.random.key(s), layers, scheme, bias=bias, bias_init=bias_init, skip=skip)
        assert_tree_bitwise_equal(tuple(w[i] for w in got), one)
    again = {}
    few = init_edges_batch([7, 0], layers, scheme, bias=bias, bias_init=bias_init, skip=skip, timing=again)
    assert again == {}  # the same program
    assert_tree_bitwise_equal(few, tuple(w[[1, 0]] for w in got))
    with pytest.raises(ValueError, match="scheme='xavier' is invalid"):
        init_edges_batch(seeds, layers, "xavier")


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


# ---- bias as an edge ------------------------------------------------------------------------


def test_init_with_bias_keeps_the_bias_free_weights(key):
    plain = _init_kw(key, (2, 4, 1))
    for bias_init in ("zeros", "same"):
        e = _init_kw(key, (2, 4, 1), bias=True, bias_init=bias_init)
        assert [w.shape for w in e] == [(4, 3), (1, 5)]
        for w, p in zip(e, plain):
            np.testing.assert_array_equal(np.asarray(w[:, :-1]), np.asarray(p))
        if bias_init == "zeros":
            assert all(float(jnp.abs(w[:, -1]).max()) == 0.0 for w in e)
        else:
            assert all(float(jnp.abs(w[:, -1]).max()) > 0.0 for w in e)


@pytest.mark.parametrize("layers", [(2, 4, 1), (3, 40, 5)])  # small (column) and large (matmul) paths
def test_forward_with_bias_is_the_affine_map(key, layers):
    e = _init_kw(key, layers, bias=True, bias_init="same")
    x = jax.random.normal(jax.random.key(1), (7, layers[0]))
    h = x
    for l, w in enumerate(e):
        h = h @ w[:, :-1].T + w[:, -1][None, :]
        if l < len(e) - 1:
            h = jax.nn.relu(h)
    np.testing.assert_allclose(np.asarray(_forward(e, x, "relu")), np.asarray(h), rtol=1e-5, atol=1e-5)


# ---- skip connections (a layered DAG) ---------------------------------------------------------


@pytest.mark.parametrize("layers", [(2, 4, 1), (3, 30, 2), (2, 3, 3, 2)])  # (3,30,2): matmul layers
@pytest.mark.parametrize("bias", [False, True])
def test_skip_forward_matches_numpy_reference(layers, bias):
    e = _init_kw(jax.random.key(1), layers, bias=bias, bias_init="same", skip=True)
    assert any(w.size > SMALL_LAYER_EDGES for w in e) == (layers == (3, 30, 2))
    x = jax.random.normal(jax.random.key(2), (7, layers[0]))
    np.testing.assert_allclose(np.asarray(_forward(e, x, "relu")), _numpy_forward(e, x, bias=bias, skip=True), rtol=1e-5,
                               atol=1e-5)


def test_skip_net_with_zero_skip_edges_is_the_plain_net():
    plain = _init_kw(jax.random.key(3), (2, 3, 3, 1), bias=True, bias_init="same")
    lay = Layout((2, 3, 3, 1), True, True)
    skip = []
    for l, w in enumerate(plain):
        full = jnp.zeros(lay.shape(l))
        k, start, n = lay.blocks(l)[-1]  # the block of layer l itself, then the bias column
        full = full.at[:, start:start + n].set(w[:, :n]).at[:, -1].set(w[:, -1])
        skip.append(full)
    x = jax.random.uniform(jax.random.key(4), (9, 2))
    np.testing.assert_array_equal(np.asarray(_forward(tuple(skip), x, "relu")), np.asarray(_forward(plain, x, "relu")))


def test_sparse_mlp_module_runs_a_skip_net():
    e = init_edges(jax.random.key(13), (2, 4, 1), skip=True)
    m = SparseMLP(e, "relu", "sigmoid", bias=False)
    x = jnp.array([0.3, 0.9])
    assert m.layers == (2, 4, 1)
    np.testing.assert_allclose(np.asarray(m(x)), 1 / (1 + np.exp(-_numpy_forward(e, x[None], skip=True)[0])),
                               rtol=1e-5)


# ---- structural dropout -----------------------------------------------------------------------


def _run(cfg, data, key):
    with adam_promotion():
        return train(cfg, data.x_train, data.y_train, key)


def test_dropout_zero_is_bitwise_the_baseline(xor_data, key):
    base = _run(SMALL, xor_data, key)
    same = _run(SMALL.replace(dropout=0.0), xor_data, key)
    assert_tree_bitwise_equal(base, same)


def test_dropout_changes_the_result_and_is_deterministic_per_key(xor_data, key):
    cfg = SMALL.replace(dropout=0.3)
    a, b = _run(cfg, xor_data, key), _run(cfg, xor_data, key)
    assert_tree_bitwise_equal(a, b)
    base = _run(SMALL, xor_data, key)
    assert any(not np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(a.edges, base.edges))
    c = _run(cfg, xor_data, jax.random.key(1))
    assert any(not np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(a.edges, c.edges))


def test_dropout_masks_stream_and_scaling(key):
    from sbp_jax.loop import dropout_key, dropout_masks

    e = init_edges(key, (20, 30, 10))
    m0, m1 = (dropout_masks(dropout_key(key), t, e, 0.25) for t in (0, 1))
    vals = np.unique(np.concatenate([np.asarray(m).ravel() for m in m0]))
    np.testing.assert_allclose(vals, [0.0, 1 / 0.75], rtol=1e-6)
    kept = np.mean(np.concatenate([np.asarray(m).ravel() for m in m0]) > 0)
    assert 0.68 < kept < 0.82
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(m0, m1))


# ---- training through the forward pass: skip and bias nets ------------------------------------

SKIP = TrainConfig(layers=(2, 3, 1), skip=True, epochs=60, history_every=20)


def test_skip_training_matches_autodiff_of_the_objective(xor_data):
    x, y = jnp.asarray(xor_data.x_train, jnp.float32), jnp.asarray(xor_data.y_train, jnp.float32)
    with adam_promotion():
        one = train(SKIP.replace(epochs=1, lam=0.0), x, y, jax.random.key(0))
    e0 = init_edges(jax.random.key(0), SKIP.layers, skip=True)
    g = jax.jit(jax.grad(lambda e: jnp.mean(jax.nn.softplus(z := forward(e, x)[:, 0]) - y[:, 0] * z)))(e0)
    # one Adam step from zero moments moves every weight by lr·sign(g) (up to Adam's ε)
    for w1, w0, gl in zip(one.edges, e0, g):
        np.testing.assert_allclose(np.asarray(w1 - w0), -1e-3 * np.sign(np.asarray(gl)), atol=1e-6)


def test_skip_sweep_matches_single_runs(xor_data):
    with adam_promotion():
        res = sweep.run_grid(SKIP, xor_data, sweep.make_grid(SKIP, seeds=[0, 1, 2]))
        for i in range(3):
            single = train(SKIP, jnp.asarray(xor_data.x_train), jnp.asarray(xor_data.y_train), jax.random.key(i))
            for a, b in zip(res.result.edges, single.edges):
                np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), atol=1e-6)
            s = analyse(single.edges, SKIP.eps, False)
            np.testing.assert_array_equal(np.asarray(res.structure.active_per_layer[i]), s.active_per_layer)
    assert [w.shape[1:] for w in res.result.edges] == [(3, 2), (1, 5)]


@pytest.mark.slow
def test_xor_with_bias_reaches_full_training_accuracy(xor_data):
    cfg = TrainConfig(layers=(2, 4, 1), bias=True, lr=1e-2, epochs=1000)
    with adam_promotion():
        out = sweep.run_grid(cfg, xor_data, sweep.make_grid(cfg, seeds=8))
    assert np.asarray(out.train["accuracy"]).max() == 1.0
