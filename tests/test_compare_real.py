"""experiments.compare_real: the quick mode end to end (files, every method's row, the fold
splits) and the fold construction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import compare_real
from sbp_jax.sources import load_source


def test_folds_cover_the_data_and_standardise_on_the_training_split():
    full = load_source("wine", val_frac=0.0, test_frac=0.0)
    from sklearn.model_selection import StratifiedKFold

    seen = []
    for f, (rest, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(full.x_train, full.y_train)):
        ds = compare_real.fold_dataset(full, rest, test, seed=f)
        assert len(ds.x_train) + len(ds.x_val) == len(rest) and len(ds.x_test) == len(test)
        np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)
        assert sorted(set(ds.y_test.tolist())) == [0, 1, 2]
        seen.extend(test)
    assert sorted(seen) == list(range(len(full.x_train)))  # every sample is tested exactly once


def _check_outputs(out, datasets, methods):
    doc = json.loads((out / "results.json").read_text())
    assert [r["dataset"] for r in doc["results"]] == datasets
    for r in doc["results"]:
        assert set(r["summary"]) == set(methods) and len(r["folds"]) == 2
        for m, s in r["summary"].items():
            assert s["test"]["mean"] is not None and s["kept"]["mean"] > 0, (r["dataset"], m)
        assert (out / f"pareto_{r['dataset']}.png").stat().st_size > 0
    md = (out / "results.md").read_text()
    assert "| breast_cancer (accuracy) | ours (λ on validation) |" in md
    return doc


@pytest.mark.slow  # 8 s: the whole comparison on one data set
def test_quick_mode_on_one_data_set(tmp_path):
    methods = ["dense", "ours", "magnitude", "imp_rewind", "l1_linear", "hgb"]
    compare_real.main(["--quick", "--datasets", "breast_cancer", "--methods", ",".join(methods), "--out",
                       str(tmp_path)])
    doc = _check_outputs(tmp_path, ["breast_cancer"], methods)
    s = doc["results"][0]["summary"]
    # magnitude and IMP prune to ours' per-layer counts, seed by seed
    assert s["magnitude"]["kept"]["mean"] == s["imp_rewind"]["kept"]["mean"] == pytest.approx(s["ours"]["kept"]["mean"])
    assert s["dense"]["kept"]["mean"] == s["dense"]["total"] == 30 * 32 + 32


@pytest.mark.slow
def test_quick_mode(tmp_path):
    compare_real.main(["--quick", "--out", str(tmp_path)])
    _check_outputs(tmp_path, ["breast_cancer", "diabetes"], [m for m in compare_real.METHODS if m != "lassonet"])


def test_bad_flags_are_one_line_errors(capsys):
    with pytest.raises(SystemExit):
        compare_real.main(["--datasets", "iris"])
    assert "--datasets='iris' is invalid: allowed a comma-separated list of" in capsys.readouterr().err
