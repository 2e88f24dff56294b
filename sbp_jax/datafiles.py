"""A user's data files: CSV (`load_csv`) and NPZ (`load_npz`), each split and
standardised into a `datasets.Dataset` by `datasets.from_arrays`.

Every error names the file, and the column, line and value where there is one.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .datasets import Dataset, from_arrays


def _parse_float(text: str) -> float:
    t = text.strip()
    if t == "":
        raise ValueError("empty")
    return float(t)


def load_csv(path, target: str, *, task: str = "auto", val_frac: float = 0.2, test_frac: float = 0.2,
             seed: int = 0, delimiter: str = ",") -> Dataset:
    """A user's CSV: a header row, then numeric rows; column `target` is the
    target and every other column a feature (named by its header).

    Raises (each naming the file, and the column, line and value where there
    is one): FileNotFoundError for a missing file; ValueError for an empty
    file, a missing target column (listing the columns there are), a ragged
    row, a non-numeric or empty cell, a NaN/inf cell, and a constant target.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--csv {str(path)!r}: no such file")
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ValueError(f"{path}: empty file: allowed a header row and at least one data row")
        header = [h.strip() for h in header]
        if target not in header:
            raise ValueError(f"{path}: no column {target!r} for --target: the columns are "
                             + ", ".join(repr(h) for h in header))
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row or all(c.strip() == "" for c in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}, line {line}: {len(row)} fields, the header has {len(header)}")
            vals = []
            for col, cell in zip(header, row):
                try:
                    v = _parse_float(cell)
                except ValueError:
                    raise ValueError(f"{path}, line {line}, column {col!r}: value {cell!r} is not a number: "
                                     "allowed numeric columns only (encode or drop this column)") from None
                if not math.isfinite(v):
                    raise ValueError(f"{path}, line {line}, column {col!r}: value {cell!r} is NaN/inf: "
                                     "allowed finite values only (impute or drop these rows)")
                vals.append(v)
            rows.append(vals)
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    data = np.array(rows, np.float64)
    t = header.index(target)
    y = data[:, t]
    if len(np.unique(y)) < 2:
        raise ValueError(f"{path}: target column {target!r} is constant ({y[0]:g} in all {len(y)} rows): "
                         "nothing to learn")
    feats = [h for i, h in enumerate(header) if i != t]
    if not feats:
        raise ValueError(f"{path}: only the target column {target!r}: allowed at least one feature column")
    x = np.delete(data, t, axis=1)
    return from_arrays(x, y, name=path.name, feature_names=feats, target_name=target, task=task,
                       val_frac=val_frac, test_frac=test_frac, seed=seed)


def load_npz(path, *, task: str = "auto", val_frac: float = 0.2, test_frac: float = 0.2, seed: int = 0) -> Dataset:
    """A user's NPZ with arrays `x` `(n, d)` and `y` `(n,)` (optionally
    `feature_names`, d strings). Errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--npz {str(path)!r}: no such file")
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"{path}: not a readable .npz file: {e}") from None
    with f:
        missing = [k for k in ("x", "y") if k not in f.files]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(repr(k) for k in missing)}: allowed an .npz with "
                             f"'x' (n, d) and 'y' (n,); found {f.files}")
        x, y = f["x"], f["y"]
        names = [str(s) for s in f["feature_names"]] if "feature_names" in f.files else None
    if x.ndim != 2:
        raise ValueError(f"{path}: x.shape={x.shape} is invalid: allowed (n_samples, n_features)")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"{path}: x.dtype={x.dtype}, y.dtype={y.dtype}: allowed numeric arrays")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{path}: x has {int(np.sum(~np.isfinite(x)))} NaN/inf entries: allowed finite values only")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{path}: y has {int(np.sum(~np.isfinite(y)))} NaN/inf entries: allowed finite values only")
    if y.size and len(np.unique(y)) < 2:
        raise ValueError(f"{path}: target y is constant ({y.ravel()[0]:g} in all {y.size} rows): nothing to learn")
    return from_arrays(x, y, name=path.name, feature_names=names, target_name="y", task=task,
                       val_frac=val_frac, test_frac=test_frac, seed=seed)
