"""One chunk of a sweep (`sbp_jax.chunks`): what it keeps per config, the
validation split present or absent, one compile per static setting and shapes."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import adam_promotion

from sbp_jax import TrainConfig, chunks, sweep, tasks
from sbp_jax.metrics import evaluate
from sbp_jax.structure import masked

CFG = TrainConfig(epochs=20, history_every=0)


@pytest.fixture(scope="module")
def runs():
    with adam_promotion():
        grid = sweep.make_grid(CFG, lams=[0.0, 0.05], seeds=2)
        with_val = sweep.run_grid(CFG, tasks.xor(val_copies=3), grid, mesh=None, timing=(t1 := {}))
        again = sweep.run_grid(CFG, tasks.xor(val_copies=3), grid, mesh=None, timing=(t2 := {}))
        without = sweep.run_grid(CFG, tasks.xor(), grid, mesh=None)
    return grid, with_val, again, without, t1, t2


def test_every_split_is_the_metrics_of_that_split(runs):
    grid, out, _, _, _, _ = runs
    ds = tasks.xor(val_copies=3)
    for i in range(len(grid)):
        e = tuple(np.asarray(w)[i] for w in out.result.edges)
        pruned = masked(e, np.float32(grid.eps[i]))
        for split, edges, (x, y) in (("train", e, (ds.x_train, ds.y_train)), ("val", e, (ds.x_val, ds.y_val)),
                                     ("pruned_val", pruned, (ds.x_val, ds.y_val)),
                                     ("pruned_test", pruned, (ds.x_test, ds.y_test))):
            ref = evaluate(edges, x, y, loss="bce", hidden_activation="relu")["accuracy"]
            assert float(getattr(out, split)["accuracy"][i]) == pytest.approx(float(ref), abs=1e-6), split


def test_no_validation_split_means_empty_validation_metrics_and_the_same_runs(runs):
    _, with_val, _, without, _, _ = runs
    assert without.val == {} and without.pruned_val == {}
    assert set(with_val.val) == {"accuracy"}
    for a, b in zip(jax.tree.leaves(with_val.result), jax.tree.leaves(without.result)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()  # the validation split never trains


def test_one_compile_per_static_setting_and_shapes(runs):
    _, _, _, _, first, second = runs
    assert second["compile_s"] == 0.0 and first["kernel"] == second["kernel"]  # the same program again
    keys = [k for k in chunks.COMPILED if k[0] == CFG.static_part() and k[1] is None]
    assert len({k[4] for k in keys}) == len(keys)  # one program per input shapes, never two


def test_splits_name_the_metric_dicts():
    assert chunks.SPLITS == tuple(f for f in chunks.RunOutputs._fields if f not in ("result", "structure"))
