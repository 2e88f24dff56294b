"""User files: CSV and NPZ loading and their errors (`sbp_jax.datafiles`)."""

from __future__ import annotations

import numpy as np
import pytest

from sbp_jax import datafiles as D


def _with_ids(n=300, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    x = np.column_stack([np.arange(n), rng.normal(size=(n, 2)) + y[:, None]])
    return x, y


def _csv(tmp_path, text, name="data.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = "a,b,label\n" + "".join(f"{i},{(i * 7) % 5},{i % 2}\n" for i in range(40))


def test_csv_loads_with_header_names(tmp_path):
    ds = D.load_csv(_csv(tmp_path, GOOD), "label")
    assert ds.feature_names == ("a", "b") and ds.kind == "binary" and ds.target_name == "label"
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 40
    reg = D.load_csv(_csv(tmp_path, GOOD), "a")  # 40 distinct values: regression
    assert reg.kind == "regression" and reg.feature_names == ("b", "label")


@pytest.mark.parametrize("text, target, exc, needles", [
    (None, "label", FileNotFoundError, ["missing.csv", "no such file"]),
    (GOOD, "target", ValueError, ["data.csv", "'target'", "'a', 'b', 'label'"]),
    ("a,b,label\n1,2,0\n3,x7,1\n4,5,0\n", "label", ValueError, ["data.csv", "line 3", "'b'", "'x7'", "not a number"]),
    ("a,b,label\n1,2,0\n3,nan,1\n4,5,0\n", "label", ValueError, ["data.csv", "line 3", "'b'", "NaN"]),
    ("a,b,label\n1,2,0\n3,,1\n4,5,0\n", "label", ValueError, ["data.csv", "line 3", "'b'", "''"]),
    ("a,b,label\n1,2,1\n3,4,1\n4,5,1\n", "label", ValueError, ["data.csv", "'label'", "constant"]),
    ("a,b,label\n1,2,0\n3,4\n", "label", ValueError, ["data.csv", "line 3", "2 fields"]),
    ("", "label", ValueError, ["data.csv", "empty"]),
])
def test_csv_errors_name_file_column_and_value(tmp_path, text, target, exc, needles):
    path = tmp_path / "missing.csv" if text is None else _csv(tmp_path, text)
    with pytest.raises(exc) as e:
        D.load_csv(path, target)
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_npz_loads_with_feature_names(tmp_path):
    x, y = _with_ids()
    np.savez(tmp_path / "d.npz", x=x, y=y, feature_names=np.array(["id", "f1", "f2"]))
    ds = D.load_npz(tmp_path / "d.npz")
    assert ds.kind == "multiclass" and ds.feature_names == ("id", "f1", "f2") and ds.n_out == 3


@pytest.mark.parametrize("arrays, needles", [
    (None, ["d.npz", "no such file"]),
    ({"x": np.ones((5, 2))}, ["d.npz", "'y'"]),
    ({"x": np.array([[1.0, np.nan], [2, 3], [4, 5]]), "y": np.array([0, 1, 0])}, ["d.npz", "x", "NaN"]),
    ({"x": np.ones((3, 2)), "y": np.array([0.0, np.inf, 1.0])}, ["d.npz", "y", "NaN/inf"]),
    ({"x": np.ones((3, 2)), "y": np.array([2, 2, 2])}, ["d.npz", "constant"]),
    ({"x": np.ones(3), "y": np.array([0, 1, 0])}, ["d.npz", "x.shape=(3,)"]),
])
def test_npz_errors(tmp_path, arrays, needles):
    path = tmp_path / "d.npz"
    if arrays is not None:
        np.savez(path, **arrays)
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        D.load_npz(path)
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))
