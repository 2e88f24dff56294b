"""Sweeps: make_grid, and run_grid against single runs, chunking, devices,
divergence isolation and determinism."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SMALL, adam_promotion, assert_tree_bitwise_equal

from sbp_jax import Grid, analyse, datasets, evaluate, make_grid, masked, run_grid, train
from sbp_jax.chunks import default_mesh
from sbp_jax.sweep import DEFAULT_CHUNK, default_chunk, select

CHUNK = 4  # configs per device per chunk, shared by the bitwise comparisons
LAMS = (0.0, 0.01, 0.1, 0.5)
SEEDS = 2
DIVERGING_LR = 1e20  # lr = 1e6 stays finite on this task (see test_train)


@pytest.fixture(autouse=True, scope="module")
def _standard_promotion_for_adam():
    with adam_promotion():
        yield


@pytest.fixture(scope="module")
def data(xor_data):
    return xor_data


@pytest.fixture(scope="module")
def grid():
    return make_grid(SMALL, lams=LAMS, seeds=SEEDS)


@pytest.fixture(scope="module")
def out(data, grid):
    """The reference sweep: one device, chunks of CHUNK (8 configs -> 2 chunks)."""
    return run_grid(SMALL, data, grid, chunk=CHUNK, mesh=None)


@pytest.fixture(scope="module")
def mesh():
    m = default_mesh()
    if m is None:
        pytest.skip("needs 2 devices (conftest sets XLA_FLAGS unless it is already set)")
    return m


# --- make_grid ----------------------------------------------------------------


def test_make_grid_cartesian_order():
    g = make_grid(SMALL, lams=[0.0, 0.1], lrs=[1e-3, 1e-2], epss=[0.05], seeds=[7, 3])
    expected = list(itertools.product([0.0, 0.1], [1e-3, 1e-2], [0.05], [7, 3]))  # seed fastest
    assert len(g) == 8
    got = list(zip(g.lam.tolist(), g.lr.tolist(), g.eps.tolist(), g.seed.tolist()))
    for (a, b, c, d), (ea, eb, ec, ed) in zip(got, expected):
        assert (a, b, c, d) == (np.float32(ea), np.float32(eb), np.float32(ec), ed)
    assert g.lam.dtype == np.float32 and g.lr.dtype == np.float32 and g.eps.dtype == np.float32
    assert g.seed.dtype == np.int64


def test_make_grid_defaults_and_seed_count():
    g = make_grid(SMALL.replace(lam=0.3, lr=0.02, eps=0.04), seeds=3)
    np.testing.assert_array_equal(g.seed, [0, 1, 2])
    np.testing.assert_array_equal(g.lam, np.float32([0.3] * 3))
    np.testing.assert_array_equal(g.lr, np.float32([0.02] * 3))
    np.testing.assert_array_equal(g.eps, np.float32([0.04] * 3))
    assert len(make_grid(SMALL)) == 1


def test_grid_take():
    g = make_grid(SMALL, lams=[0.0, 0.1, 0.2], seeds=1)
    t = g.take(np.array([2, 0]))
    np.testing.assert_array_equal(t.lam, np.float32([0.2, 0.0]))


@pytest.mark.parametrize(
    "kwargs,exc,parts",
    [
        (dict(lams=[]), ValueError, ["lams=[]", "non-empty"]),
        (dict(lrs=[]), ValueError, ["lrs=[]", "non-empty"]),
        (dict(epss=[]), ValueError, ["epss=[]", "non-empty"]),
        (dict(seeds=[]), ValueError, ["seeds=[]", "non-empty"]),
        (dict(lams=[0.1, -0.01]), ValueError, ["lams[1]=-0.01", ">= 0"]),
        (dict(lams=[float("nan")]), ValueError, ["lams[0]=nan", "finite"]),
        (dict(epss=[float("inf")]), ValueError, ["epss[0]=inf", "finite"]),
        (dict(lrs=[0.0]), ValueError, ["lrs[0]=0.0", "> 0"]),
        (dict(lrs=[1e-3, 0]), ValueError, ["lrs[1]=0", "> 0"]),
        (dict(seeds=0), ValueError, ["seeds=0", ">= 1"]),
        (dict(seeds=[1, -2]), ValueError, ["seeds[1]=-2", ">= 0"]),
        (dict(seeds=[1.5]), TypeError, ["seeds[0]=1.5", "integer"]),
        (dict(lams=["0.1"]), TypeError, ["lams[0]='0.1'", "number"]),
    ],
)
def test_make_grid_bad_arguments(kwargs, exc, parts):
    with pytest.raises(exc) as e:
        make_grid(SMALL, **kwargs)
    for p in parts:
        assert p in str(e.value), f"{p!r} not in {str(e.value)!r}"


# --- run_grid vs single runs -------------------------------------------------


def test_outputs_have_a_config_axis(out, grid):
    n = len(grid)
    assert out.result.edges[0].shape == (n, 3, 2) and out.result.edges[1].shape == (n, 1, 3)
    assert out.result.history.loss.shape == (n, SMALL.n_records)
    assert out.structure.active_per_layer.shape == (n, 2)
    assert out.structure.live_per_layer.shape == (n, 3)
    assert set(out.train) == set(out.test) == set(out.pruned_test) == {"accuracy"}
    assert isinstance(out.result.edges[0], np.ndarray)


@pytest.mark.parametrize("i", range(len(LAMS) * SEEDS))
def test_record_equals_single_train_run(out, grid, data, i):
    lam, lr, eps, seed = (grid.lam[i], grid.lr[i], grid.eps[i], int(grid.seed[i]))
    cfg = SMALL.replace(lam=float(lam), lr=float(lr), eps=float(eps))
    single = train(cfg, data.x_train, data.y_train, jax.random.key(seed))
    rec = select(out, i)
    for a, b in zip(rec.result.edges, single.edges):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for name in ("loss", "task_loss", "penalty"):
        np.testing.assert_allclose(getattr(rec.result.history, name), getattr(single.history, name), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rec.result.history.active_edges, single.history.active_edges)
    assert int(rec.result.diverged_at) == int(single.diverged_at) == -1
    s = analyse(single.edges, jnp.float32(eps))
    for name in s._fields:
        np.testing.assert_array_equal(getattr(rec.structure, name), getattr(s, name))
    x, y, xt, yt = (jnp.asarray(a) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    ev = lambda e, a, b: evaluate(e, a, b, loss=SMALL.loss, hidden_activation=SMALL.hidden_activation)
    for got, want in (
        (rec.train, ev(single.edges, x, y)),
        (rec.test, ev(single.edges, xt, yt)),
        (rec.pruned_test, ev(masked(single.edges, jnp.float32(eps)), xt, yt)),
    ):
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6)


def test_sweep_spans_different_structures(out):
    # guard: the grid must produce different structures for the checks above to bite
    assert len({tuple(r) for r in out.structure.active_per_layer}) > 1


def test_results_independent_of_chunk_neighbours(out, data, grid):
    perm = np.array([5, 2, 7, 0, 3, 6, 1, 4])
    shuffled = run_grid(SMALL, data, grid.take(perm), chunk=CHUNK, mesh=None)
    for j, i in enumerate(perm):
        assert_tree_bitwise_equal(select(shuffled, j), select(out, i))


def test_same_grid_twice_is_bitwise_identical(out, data, grid):
    assert_tree_bitwise_equal(run_grid(SMALL, data, grid, chunk=CHUNK, mesh=None), out)


def test_chunk_size_does_not_change_structure_or_metrics(out, data, grid):
    other = run_grid(SMALL, data, grid, chunk=3, mesh=None)  # 3 chunks, 8 configs padded to 9
    np.testing.assert_array_equal(other.structure.active_per_layer, out.structure.active_per_layer)
    np.testing.assert_array_equal(other.structure.live_per_layer, out.structure.live_per_layer)
    np.testing.assert_array_equal(other.structure.effective_per_layer, out.structure.effective_per_layer)
    for split in ("train", "test", "pruned_test"):
        for k in getattr(out, split):
            np.testing.assert_allclose(getattr(other, split)[k], getattr(out, split)[k], rtol=1e-6, atol=1e-6)
    for a, b in zip(other.result.edges, out.result.edges):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_two_device_mesh_is_bitwise_equal_to_one_device(out, data, grid, mesh):
    # 8 configs over 2 devices with CHUNK per device: one chunk of 4 per device
    on_mesh = run_grid(SMALL, data, grid, chunk=CHUNK, mesh=mesh)
    assert_tree_bitwise_equal(on_mesh, out)
    auto = run_grid(SMALL, data, grid, chunk=CHUNK)  # mesh="auto": every device
    assert_tree_bitwise_equal(auto, out)


@pytest.mark.parametrize("where", ["one_device", "mesh"])
def test_diverging_config_does_not_disturb_its_chunk(out, data, grid, where, request):
    m = request.getfixturevalue("mesh") if where == "mesh" else None
    bad = 2
    lr = grid.lr.copy()
    lr[bad] = DIVERGING_LR
    g = Grid(grid.lam, lr, grid.eps, grid.seed)
    res = run_grid(SMALL, data, g, chunk=CHUNK, mesh=m)
    at = int(res.result.diverged_at[bad])
    assert at >= 0
    assert not np.isfinite(res.result.history.loss[bad, at])
    for i in range(len(g)):
        if i != bad:  # neighbours in the same chunk (0, 1, 3) and the other chunk
            assert_tree_bitwise_equal(select(res, i), select(out, i))


def test_on_chunk_reports_progress(data, grid):
    calls = []
    run_grid(SMALL, data, grid, chunk=CHUNK, mesh=None, on_chunk=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (8, 8)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_run_grid_validates_before_compiling(data, grid):
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    with pytest.raises(ValueError, match=r"x_test\.shape=\(100, 3\)"):
        run_grid(SMALL, datasets.plain(x, y, np.zeros((100, 3), np.float32), yt), grid, mesh=None)
    bad_y = y.copy()
    bad_y[0, 0] = 0.5
    with pytest.raises(ValueError, match="y has values other than 0 and 1"):
        run_grid(SMALL, datasets.plain(x, bad_y, xt, yt), grid, mesh=None)
    with pytest.raises(TypeError, match="data=tuple is invalid: allowed a datasets.Dataset"):
        run_grid(SMALL, (x, y, xt, yt), grid, mesh=None)
    with pytest.raises(ValueError, match="chunk=0"):
        run_grid(SMALL, data, grid, chunk=0, mesh=None)


def test_default_chunk_is_balanced():
    assert default_chunk(1300, 1) == 650
    assert default_chunk(1300, 2) == 650
    assert default_chunk(1024, 1) == 1024
    assert default_chunk(1025, 1) == 513
    assert default_chunk(5, 4) == 2
    for n in (1, 7, 1000, 4097, 100_000):
        for d in (1, 2, 3, 8):
            c = default_chunk(n, d)
            assert 1 <= c <= DEFAULT_CHUNK
            chunks = -(-n // (c * d))
            assert chunks * c * d - n < c * d  # padding less than one chunk
