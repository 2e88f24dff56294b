"""The λ path program (`sbp_jax.path.run_path`): it is the engine run step by step with
warm starts, it ends where every edge is pruned, and it compiles once.

One tiny path (XOR [2,3,1] + bias, 3 seeds, 8 steps of 10 epochs, a top low
enough that the path has to continue past it) is compiled once per module and
shared by the tests.
"""

from __future__ import annotations

import contextlib
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbp_jax import tasks
from sbp_jax.config import TrainConfig
from sbp_jax.engine import train_chunk
from sbp_jax.loop import Hyper, fresh_state
from sbp_jax.path import run_path
from sbp_jax.sweep import split_arrays

from conftest import assert_tree_bitwise_equal

CFG = TrainConfig(layers=(2, 3, 1), bias=True, lr=0.05, eps=0.1)  # ε > lr: see test_lam_max_...
KW = dict(n_steps=8, ratio=1.6, epochs_per_step=10, warmup=20, top=0.05, max_extend=6)


class _Count(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Compiling "):
            self.names.append(msg.split()[1])


@contextlib.contextmanager
def compiles():
    """Collect the names of the programs XLA compiles inside the block (`jax.log_compiles`)."""
    h = _Count()
    log = logging.getLogger("jax")
    log.addHandler(h)
    try:
        with jax.log_compiles():
            yield h.names
    finally:
        log.removeHandler(h)


@pytest.fixture(scope="module")
def tiny():
    data = tasks.xor(0)
    with compiles() as names:
        path = run_path(CFG, data, [0, 1, 2], **KW)
    return path, data, list(names)


def test_grid_is_warmup_zeros_then_geometric_at_the_ratio(tiny):
    path, _, _ = tiny
    lam, w = path.records.lam, path.settings["warmup_steps"]
    assert w == 2 and np.all(lam[:w] == 0)
    np.testing.assert_allclose(lam[w + 1:] / lam[w:-1], KW["ratio"], rtol=1e-5)
    np.testing.assert_allclose(lam[w + KW["n_steps"] - 1], KW["top"], rtol=1e-6)  # the first block ends at the top
    S, C = path.records.active.shape
    assert C == 3 and path.records.edges[0].shape == (S, 3, 3, 3) and path.records.features.shape == (S, 3, 2)


def test_lam_max_prunes_every_edge_and_the_path_continues_past_a_low_top(tiny):
    path, _, _ = tiny
    rec = path.records
    assert path.settings["extensions"] >= 1  # top=0.05 is too low for these runs: detected on the path
    assert np.all(rec.active[-1] == 0) and np.all(rec.effective[-1] == 0) and not rec.features[-1].any()
    assert np.any(rec.active[-2] > 0)  # cut right after the first step where every run is empty
    for c in range(3):
        k = int(np.flatnonzero(rec.lam == path.lam_max[c])[0])
        assert rec.active[k, c] == 0 and np.all(rec.active[:k, c] > 0)


def _engine_steps(data, seeds, lams, adam):
    """The path by hand: the engine called once per λ with `init=` the previous state."""
    static = CFG.static_part().replace(epochs=KW["epochs_per_step"], history_every=0)
    x, y = (jnp.asarray(a) for a in split_arrays(CFG, data)[:2])
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    C = len(seeds)
    hyper = lambda lam: Hyper(jnp.full((C,), lam, jnp.float32), jnp.full((C,), CFG.lr, jnp.float32),
                              jnp.full((C,), CFG.eps, jnp.float32))
    state = jax.vmap(lambda k, h: fresh_state(static, k, h))(keys, hyper(0.0))
    step = jax.jit(train_chunk, static_argnums=(0, 5))
    out = []
    for lam in lams:
        if adam == "reset":  # a fresh optimizer at the previous edges, the epoch counter kept
            fresh = jax.vmap(lambda k, h, e: fresh_state(static, k, h, e))(keys, hyper(lam), state.edges)
            state = fresh._replace(epoch=state.epoch)
        state = step(static, x, y, keys, hyper(lam), "two_layer", state).state
        out.append(state.edges)
    return out


@pytest.fixture(scope="module")
def tiny_carry():
    data = tasks.xor(0)
    return run_path(CFG, data, [0, 1, 2], **(KW | {"adam": "carry"})), data


@pytest.mark.parametrize("adam", ["reset", "carry"])
def test_step_k_equals_the_engine_run_step_by_step_with_warm_starts(adam, request):
    """Bitwise: each scan step traces the same engine epoch loop on the same inputs (λ a
    traced scalar either way) and nothing the step records feeds back into training, so
    XLA:CPU compiles the same per-step computation (measured: every leaf of every step
    bit-identical). A backend that fused the scan body differently could differ by float32
    rounding."""
    path, data = request.getfixturevalue("tiny")[:2] if adam == "reset" else request.getfixturevalue("tiny_carry")
    rec = path.records
    ref = _engine_steps(data, [0, 1, 2], rec.lam, adam)
    for k, edges in enumerate(ref):
        assert_tree_bitwise_equal(tuple(a[k] for a in rec.edges), tuple(np.asarray(b) for b in edges))


def test_one_compile_per_call_and_none_for_a_second_call_with_the_same_shapes(tiny):
    path, data, names = tiny
    assert names.count("jit(sbp_path)") == 1, names  # the first block and every continuation: one program
    with compiles() as again:
        other = run_path(CFG, data, [7, 8, 9], **(KW | {"top": 0.08}))  # other seeds, another grid
    assert again == [], again
    assert not np.array_equal(other.records.edges[0][0], path.records.edges[0][0])


@pytest.mark.parametrize("kw, match", [
    (dict(ratio=1.0), "ratio=1.0 is invalid"),
    (dict(adam="keep"), "adam='keep' is invalid"),
    (dict(n_steps=1), "n_steps=1 is invalid"),
    (dict(headroom=0.5), "headroom=0.5 is invalid"),
])
def test_bad_path_options_fail_before_tracing(kw, match):
    with pytest.raises(ValueError, match=match):
        run_path(CFG, tasks.xor(0), 2, **kw)


def test_a_controller_or_schedule_is_refused():
    with pytest.raises(ValueError, match="target_active=0.5 is invalid for a path"):
        run_path(CFG.replace(target_active=0.5), tasks.xor(0), 2)
    with pytest.raises(ValueError, match="lam_schedule='warmup_ramp' is invalid for a path"):
        run_path(CFG.replace(lam_schedule="warmup_ramp", lam_warmup=5), tasks.xor(0), 2)
