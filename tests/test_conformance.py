"""Conformance: every kernel against the reference trainer, over a table of every `TrainConfig` option.

The reference (`reference.train_core`: `jax.grad` of the task loss plus the
optax chain of `penalty.make_optimizer`) is the executable specification.
`OPTIONS` lists, for every `TrainConfig` field, the values to cover;
`CASES` samples their product (a fixed, seeded sample in which every value
of every field occurs) and each case runs every kernel that implements it
for the first steps, pinned to the reference to float32 tolerance. A few
full trainings must give the same structures and metrics. A field added to
`TrainConfig` without a row here fails `test_every_field_has_a_row`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from conftest import assert_tree_bitwise_equal

from sbp_jax import TrainConfig, datasets, make_grid, run_grid, tasks, train
from sbp_jax.kernels import KERNELS, select
from sbp_jax.network import init_edges

# Every TrainConfig field: the values the table covers (the default first).
OPTIONS = {
    "layers": [(2, 4, 1), (2, 3, 3, 1), (2, 5, 3), (3, 24, 3)],  # paper / deep / outputs / wide (> SMALL_LAYER_EDGES)
    "hidden_activation": ["relu", "identity", "sigmoid", "tanh"],
    "loss": ["bce", "mse", "cross_entropy"],
    "lam": [1e-2, 0.0, 1e-1],
    "lr": [1e-3, 3e-2],
    "epochs": [6],  # first steps; FULL below trains longer
    "eps": [1e-2, 0.0],
    "init": ["he_normal", "uniform", "glorot_uniform"],
    "dtype": ["float32"],
    "history_every": [1, 0, 4],
    "batch_size": [0, 16, 40],
    "penalty": ["subgradient", "proximal", "proximal_plain"],
    "layer_lams": [None, "half_last"],  # "half_last": 1 per layer, 0.5 on the output layer
    "lam_schedule": ["constant", "warmup_ramp"],
    "lam_warmup": [0, 2],
    "lam_ramp": [0, 3],
    "target_active": [None, 0.5],
    "target_gain": [0.01, 0.05],
    "bias": [False, True],
    "bias_init": ["zeros", "same"],
    "skip": [False, True],
    "dropout": [0.0, 0.25],
    "shuffle_seed": [0, 3],  # last: a new row at the end leaves the other fields' draws unchanged
}
N_CASES = 12


def _case(order: dict, i: int) -> TrainConfig:
    """Case i: field f takes value `order[f][i]` (each field runs through its values in rounds, in a
    random order per round: every value occurs within a few cases, fields combine at random); even cases are the paper's net
    shapes (one hidden layer of relu/identity units, one output, bce/mse), which the hand-written
    gradient kernel takes; then the combination is made valid (cross-entropy needs two outputs, a
    constant schedule no steps, per-layer λ one multiplier per layer)."""
    kw = {f: vals[order[f][i]] for f, vals in OPTIONS.items()}
    if i % 2 == 0:
        kw["layers"] = ((2, 4, 1), (2, 8, 1))[i // 2 % 2]
        kw["loss"] = ("bce", "mse")[i // 4 % 2]
        kw["hidden_activation"] = ("relu", "identity")[i // 8 % 2]
    if kw["loss"] == "cross_entropy" and kw["layers"][-1] < 2:
        kw["layers"] = (*kw["layers"][:-1], 2)
    if kw["lam_schedule"] == "constant":
        kw["lam_warmup"] = kw["lam_ramp"] = 0
    if kw["layer_lams"] == "half_last":
        kw["layer_lams"] = (1.0,) * (len(kw["layers"]) - 2) + (0.5,)
    return TrainConfig(**kw)


def _cases() -> list[TrainConfig]:
    rng = np.random.default_rng(2026)
    order = {f: np.concatenate([rng.permutation(len(v)) for _ in range(N_CASES)]) for f, v in OPTIONS.items()}
    cases = [_case(order, i) for i in range(N_CASES)]
    cases.append(TrainConfig(layers=(2, 4, 1), epochs=6))  # the paper's setting (the single-run kernel)
    # a wide hidden layer (11 × 10 edges > SMALL_LAYER_EDGES: the wide kernel) with bias, skip, minibatches, dropout
    cases.append(TrainConfig(layers=(10, 10, 1), epochs=6, bias=True, skip=True, batch_size=16, dropout=0.25,
                             history_every=2, penalty="proximal"))
    return cases


CASES = _cases()
# The cases the default run takes: together they cover every value of every field and every kernel
# (checked by `test_the_cases_cover_every_value`); the others run with `-m slow`.
DEFAULT_CASES = (0, 1, 3, 7, 11, 12, 13)


def _data(cfg: TrainConfig, seed: int = 0):
    """Data for `cfg`: inputs in [0, 1] (XOR-like), targets per loss and output count."""
    rng = np.random.default_rng(seed)
    n, k, m = 60, cfg.layers[0], cfg.layers[-1]
    x = rng.uniform(0, 1, size=(n, k)).astype(np.float32)
    s = (x[:, 0] > 0.5) ^ (x[:, 1] > 0.5)
    if cfg.loss == "cross_entropy":
        y = (s.astype(np.int32) + (x[:, -1] > 0.8)) % m
    elif cfg.loss == "bce":
        y = np.stack([s ^ (j % 2 == 1) for j in range(m)], axis=1).astype(np.float32)
    else:
        y = np.stack([x.sum(axis=1) * (j + 1) for j in range(m)], axis=1).astype(np.float32)
    return x, y


def _kernels(cfg: TrainConfig, single: bool) -> list[str]:
    """Every kernel but the reference that implements `cfg`."""
    out = []
    for k in KERNELS[:-1]:
        try:
            select(cfg.static_part(), single=single, kernel=k)
            out.append(k)
        except ValueError:
            pass
    return out


def _assert_conforms(got, ref, eps: float, ctx: str):
    """`got` equals the reference run `ref` to float32 rounding: edges, history, divergence; an
    active count may differ only when some weight lies within rounding of ε."""
    assert jax.tree.structure(got.edges) == jax.tree.structure(ref.edges), ctx
    for a, b in zip(got.edges, ref.edges):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=2e-6, err_msg=ctx)
    np.testing.assert_array_equal(np.asarray(got.diverged_at), np.asarray(ref.diverged_at), err_msg=ctx)
    for name in ("loss", "task_loss", "penalty"):
        np.testing.assert_allclose(np.asarray(getattr(got.history, name)), np.asarray(getattr(ref.history, name)),
                                   rtol=2e-5, atol=1e-6, err_msg=f"{ctx}: history.{name}")
    if not np.array_equal(np.asarray(got.history.active_edges), np.asarray(ref.history.active_edges)):
        near = min(float(np.min(np.abs(np.abs(np.asarray(w)) - eps))) for w in ref.edges)
        assert near < 1e-4, ctx


def test_every_field_has_a_row():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(OPTIONS) == fields, f"fields without a conformance row: {sorted(fields - set(OPTIONS))}"


@pytest.mark.parametrize("subset", ["all", "default"])
def test_the_cases_cover_every_value(subset):
    cases = CASES if subset == "all" else [CASES[i] for i in DEFAULT_CASES]
    for f, vals in OPTIONS.items():
        seen = {repr(getattr(c, f)) for c in cases}
        for v in vals:
            if f == "layer_lams" and v == "half_last":
                assert any(getattr(c, f) is not None for c in cases)
            else:
                assert repr(v) in seen or (f in ("lam_warmup", "lam_ramp") and v != 0 and any(
                    getattr(c, f) for c in cases)), (f, v)
    # every kernel is exercised by some case
    assert {k for c in cases for k in _kernels(c, single=True)} == set(KERNELS[:-1])


@pytest.mark.parametrize("cfg", [pytest.param(c, marks=() if i in DEFAULT_CASES else pytest.mark.slow)
                                 for i, c in enumerate(CASES)], ids=[f"case{i}" for i in range(len(CASES))])
def test_single_runs_conform(cfg):
    """`train` with each kernel that implements `cfg` equals `train(..., kernel='reference')`."""
    x, y = _data(cfg)
    key = jax.random.key(7)
    ref = train(cfg, x, y, key, kernel="reference")
    for k in _kernels(cfg, single=True):
        _assert_conforms(train(cfg, x, y, key, kernel=k), ref, cfg.eps, f"{k}: {cfg}")


# slow (18 s of compiles): in the default run the sweep program is pinned to the reference by the full
# trainings below and the engine's divergence check (tests/test_engine.py), and equals the single runs
# (tests/test_sweep.py, tests/test_loop.py), which conform case by case above.
@pytest.mark.slow
@pytest.mark.parametrize("i", [2, 5])
def test_sweeps_conform(i):
    """A 4-config sweep (λ × lr) through the engine equals the vmapped reference, config by config."""
    cfg = CASES[i]
    x, y = _data(cfg)
    data = datasets.plain(x, y)
    g = make_grid(cfg, lams=[0.0, 5e-2], lrs=[1e-3, 2e-2], seeds=[5])
    ref = run_grid(cfg, data, g, kernel="reference", mesh=None)
    for k in _kernels(cfg, single=False):
        t = {}
        got = run_grid(cfg, data, g, kernel=k, mesh=None, timing=t)
        assert t["kernel"] == k
        for c in range(len(g)):
            _assert_conforms(jax.tree.map(lambda a: a[c], got.result), jax.tree.map(lambda a: a[c], ref.result),
                             float(g.eps[c]), f"{k} config {c}: {cfg}")


FULL = [
    TrainConfig(layers=(2, 4, 1), epochs=300, history_every=50, lr=1e-2, bias=True, dropout=0.1, penalty="proximal"),
    TrainConfig(layers=(2, 6, 3), loss="cross_entropy", epochs=200, history_every=0, lr=1e-2, skip=True,
                hidden_activation="tanh", target_active=0.5),
]


@pytest.mark.parametrize("cfg", [FULL[0], pytest.param(FULL[1], marks=pytest.mark.slow)],
                         ids=["bias_dropout_proximal", "ce_skip_tanh_controller"])
def test_full_trainings_give_the_same_structures_and_metrics(cfg):
    d = tasks.xor(data_seed=0)
    data = d
    if cfg.loss == "cross_entropy":
        data = datasets.plain(d.x_train, d.y_train[:, 0].astype(np.int32), d.x_test, d.y_test[:, 0].astype(np.int32))
    g = make_grid(cfg, lams=[1e-3, 1e-2], seeds=3)
    ref = run_grid(cfg, data, g, kernel="reference", mesh=None)
    got = run_grid(cfg, data, g, mesh=None)
    for a, b in zip(jax.tree.leaves(got.structure), jax.tree.leaves(ref.structure)):
        np.testing.assert_array_equal(a, b)
    for split in ("train", "test", "pruned_test"):
        for k, v in getattr(ref, split).items():
            np.testing.assert_allclose(getattr(got, split)[k], v, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- warm starts

WARM = [
    TrainConfig(layers=(2, 4, 1), epochs=40, history_every=5),  # single-run kernel
    TrainConfig(layers=(2, 4, 1), epochs=40, history_every=0, bias=True, dropout=0.2, batch_size=32,
                lam_schedule="warmup_ramp", lam_warmup=10, lam_ramp=30),  # engine, epoch-dependent options
    TrainConfig(layers=(2, 3, 3, 1), epochs=40, history_every=4, target_active=0.5, penalty="proximal"),
]


def _initial_edges(cfg: TrainConfig, key) -> tuple:
    return init_edges(key, cfg.layers, cfg.init, bias=cfg.bias, bias_init=cfg.bias_init, skip=cfg.skip)


@pytest.mark.parametrize("cfg,kernel", [(WARM[0], "auto"), (WARM[1], "auto"),
                                        pytest.param(WARM[2], "auto", marks=pytest.mark.slow),
                                        pytest.param(WARM[1], "reference", marks=pytest.mark.slow)],
                         ids=["single", "engine_options", "deep_controller", "reference"])
def test_n_then_n_more_equals_2n(cfg, kernel):
    """Train 2N epochs in one call, and N epochs then N more from the first call's state: the same
    edges, optimizer state and epoch (bitwise: both calls run the same loop body)."""
    d = tasks.xor(data_seed=0)
    key = jax.random.key(4)
    whole = train(cfg.replace(epochs=2 * cfg.epochs), d.x_train, d.y_train, key, kernel=kernel)
    # The first N start from the key's own initial edges, passed as a warm start (a fresh optimizer from
    # them, as without `init`): both halves then run the one compiled program of an N-epoch warm start.
    half = train(cfg, d.x_train, d.y_train, key, kernel=kernel, init=_initial_edges(cfg, key))
    rest = train(cfg, d.x_train, d.y_train, key, kernel=kernel, init=half.state)
    assert_tree_bitwise_equal(rest.state, whole.state)
    assert int(rest.state.epoch) == 2 * cfg.epochs
    if cfg.history_every:
        np.testing.assert_array_equal(np.concatenate([half.history.loss, rest.history.loss]), whole.history.loss)


@pytest.mark.slow  # 11 s: warm starts N+N = 2N stay in the default run for single, engine and reference
def test_sweep_warm_start_equals_the_longer_sweep():
    cfg = WARM[1]
    d = tasks.xor(data_seed=0)
    g = make_grid(cfg, lams=[0.0, 1e-2], seeds=2)
    whole = run_grid(cfg.replace(epochs=2 * cfg.epochs), d, g, mesh=None)
    half = run_grid(cfg, d, g, mesh=None, keep_state=True)
    rest = run_grid(cfg, d, g, mesh=None, init=half.result.state)
    assert_tree_bitwise_equal(rest.result.edges, whole.result.edges)
    assert_tree_bitwise_equal(rest.structure, whole.structure)
    assert whole.result.state is None  # not kept unless asked


def test_warm_start_from_edges_alone_and_bad_inits():
    cfg = WARM[0]
    d = tasks.xor(data_seed=0)
    key = jax.random.key(0)
    first = train(cfg, d.x_train, d.y_train, key, init=_initial_edges(cfg, key))  # the program of the test above
    again = train(cfg.replace(epochs=1, lr=1e-30), d.x_train, d.y_train, key, init=first.edges)
    for a, b in zip(again.edges, first.edges):  # a fresh optimizer from these edges, a negligible step
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-20)
    assert int(again.state.epoch) == 1
    with pytest.raises(ValueError, match=r"init edges with shapes \[\(4, 2\)\] are invalid: allowed shapes"):
        train(cfg, d.x_train, d.y_train, key, init=first.edges[:1])
    with pytest.raises(ValueError, match="init.opt_state is invalid: allowed the optimizer state of a run of this "
                                         "config \\(penalty='proximal'"):
        train(cfg.replace(penalty="proximal"), d.x_train, d.y_train, key, init=first.state)
    with pytest.raises(ValueError, match="allowed shapes"):
        run_grid(cfg, d, make_grid(cfg, seeds=3), init=first.edges)  # no leading config axis
