"""Shared test set-up: strict promotion, two host devices, a key, tiny data.

* Two CPU devices (`XLA_FLAGS`, set before jax is imported, and only when the
  caller has not set XLA_FLAGS) so the sweep tests run the `shard_map` path.
* A session-wide persistent compilation cache (see below).
* `jax_numpy_rank_promotion="raise"`: silent broadcasting is an error.
* `jax_numpy_dtype_promotion="strict"`: silent dtype promotion is an error.
  sbp_jax's own code passes under it, but optax's Adam does not
  (`optax.tree.bias_correction` computes `1 - decay**count`, a Python float to
  the power of an int32 array; optax 0.2.8, `optax/tree_utils/_tree_math.py`).
  Tests and fixtures that run Adam therefore enter `adam_promotion()`, which
  switches to "standard" for their duration only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile

if "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
# One persistent compilation cache for the session, inherited by the CLI subprocesses: a program
# compiled once (by a test or a CLI run) is not compiled again by the next one (the CLI tests run
# the same few programs many times). Fresh per session, removed at exit, so no state leaks between runs.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="sbp_jax_test_cache_")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=_cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

from sbp_jax import TrainConfig, tasks  # noqa: E402
from sbp_jax.datasets import Dataset  # noqa: E402
from sbp_jax.engine import _autodiff_grads  # noqa: E402


def adam_promotion() -> contextlib.AbstractContextManager:
    """Standard dtype promotion, for code that runs optax.adam (see module doc)."""
    return jax.numpy_dtype_promotion("standard")


# One static configuration shared by test_train and test_sweep_core, so that
# `_train_jit` compiles it once per test session.
SMALL = TrainConfig(
    layers=(2, 3, 1),
    hidden_activation="relu",
    loss="bce",
    lam=1e-2,
    lr=5e-2,
    epochs=60,
    eps=5e-2,
    init="he_normal",
    history_every=1,
)


# The 7-edge XOR net with bias edges (README, "Beyond the paper"): relu(x1 − x2) + relu(x2 − x1), output
# bias −2 (times 4): 100 % on the noisy XOR sets. Edges `(2, 3)` (two inputs and the bias node) and `(1, 3)`.
XOR7 = (
    jnp.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]], jnp.float32),
    jnp.array([[4.0, 4.0, -2.0]], jnp.float32),
)


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(scope="session")
def xor_data() -> Dataset:
    return tasks.xor(data_seed=0)


@pytest.fixture(scope="session")
def xy(xor_data):
    """The XOR training set `(x, y)`."""
    return xor_data.x_train, xor_data.y_train


def assert_grads_match_autodiff(grads_fn, cfg: TrainConfig, *, batch: bool, per_config: bool = False):
    """A hand-written gradient kernel `grads_fn(static, layout, edges, x, y, wts)` (jitted, config and
    layout static) against `jax.grad` of each config's task loss (`engine._autodiff_grads`): 6 configs
    with random edges (some hidden units dead on every sample), 50 samples; `batch`: a ragged last
    minibatch's sample weights; `per_config`: per-config data `(S, n_in, C)`, else shared `(S, n_in, 1)`."""
    rng = np.random.default_rng(sum(cfg.layers))
    S, C = 50, 6
    shape = (S, cfg.layers[0], C if per_config else 1)
    x = jnp.asarray(rng.uniform(-1, 1, size=shape), jnp.float32)
    y = rng.integers(0, 2, size=(S, 1, shape[2])) if cfg.loss == "bce" else rng.normal(size=(S, 1, shape[2]))
    y = jnp.asarray(y, jnp.float32)
    wts = jnp.asarray((np.arange(S) < 41)[:, None], jnp.float32) if batch else None
    edges = tuple(jnp.asarray(rng.normal(size=(*cfg.layout.shape(l), C)), jnp.float32) for l in range(2))
    task, grads = grads_fn(cfg, cfg.layout, edges, x, y, wts)
    ref_task, ref = _autodiff(cfg, cfg.layout, edges, x, y, wts)
    np.testing.assert_allclose(task, ref_task, rtol=1e-6)
    for g, r in zip(grads, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


_autodiff = jax.jit(_autodiff_grads, static_argnums=(0, 1))


def assert_tree_bitwise_equal(a, b):
    """Same structure, and every leaf has the same shape, dtype and bytes
    (NaNs and signed zeros included)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for i, (x, y) in enumerate(zip(la, lb)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype, (i, x.shape, y.shape, x.dtype, y.dtype)
        if x.tobytes() != y.tobytes():
            raise AssertionError(f"leaf {i} differs bitwise:\n{x!r}\n{y!r}")
