"""The bundled data sets (`sbp_jax.bundled`, loaded through `sources`): shapes
and dtypes, offline MNIST-1D, and the planted set's irrelevant inputs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import adam_promotion

from sbp_jax import TrainConfig, bundled, sweep
from sbp_jax import datasets as D
from sbp_jax.sources import load_source
from sbp_jax.structure import selected_features

EXPECTED = {  # name: (kind, n_features, n_out, n_samples)
    "breast_cancer": ("binary", 30, 1, 569),
    "wine": ("multiclass", 13, 3, 178),
    "digits": ("multiclass", 64, 10, 1797),
    "diabetes": ("regression", 10, 1, 442),
    "planted": ("binary", 20, 1, 1000),
}


def _check_shapes(ds: D.Dataset, kind, n_in, n_out, n):
    assert ds.kind == kind and ds.n_in == n_in and ds.n_out == n_out
    assert ds.loss == D.LOSS_OF_KIND[kind]
    assert len(ds.feature_names) == n_in
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == n
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == np.float32 and x.shape == (len(x), n_in)
        if kind == "multiclass":
            assert y.dtype == np.int32 and y.shape == (len(x),)
            assert y.min() >= 0 and y.max() < n_out
        else:
            assert y.dtype == np.float32 and y.shape == (len(x), 1)
        if kind == "binary":
            assert set(np.unique(y)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_loaders_shapes_and_dtypes(name):
    ds = load_source(name)
    _check_shapes(ds, *EXPECTED[name])
    assert abs(len(ds.x_test) - 0.2 * EXPECTED[name][3]) <= 1
    assert abs(len(ds.x_val) - 0.2 * EXPECTED[name][3]) <= 1


def test_mnist1d_generates_offline_and_restores_numpy_state():
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    ds = bundled.mnist1d(n_samples=500)
    assert np.random.random() == before  # the generator's reseeding is undone
    _check_shapes(ds, "multiclass", 40, 10, 500)
    again = bundled.mnist1d(n_samples=500)
    np.testing.assert_array_equal(ds.x_train, again.x_train)


def test_planted_irrelevant_inputs_lose_all_their_edges():
    ds = bundled.planted(n_samples=3000)
    cfg = TrainConfig(layers=(ds.n_in, 8, 1), loss=ds.loss, lam=2e-2, lr=3e-3, epochs=600, history_every=0)
    with adam_promotion():
        out = sweep.run_grid(cfg, ds, sweep.make_grid(cfg, seeds=2))
    first = np.asarray(out.result.edges[0])  # (runs, hidden, inputs)
    noise = [i for i, n in enumerate(ds.feature_names) if n.startswith("noise")]
    assert len(noise) == 16
    assert np.all(np.abs(first[:, :, noise]) < cfg.eps)  # every edge out of a noise input is pruned
    for i in range(2):
        edges = tuple(np.asarray(w)[i] for w in out.result.edges)
        assert selected_features(edges, cfg.eps, ds.feature_names) == [f"relevant_{j}" for j in range(4)]
    assert np.all(np.asarray(out.pruned_test["accuracy"]) > 0.75)
