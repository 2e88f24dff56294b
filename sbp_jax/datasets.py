"""Real data: bundled data sets, a user's CSV / NPZ, splits and standardisation.

The data type every part of the library takes, `Dataset`, and how raw arrays
become one (`from_arrays`; `plain` for arrays used as they are). The loaders
are `bundled.py` (scikit-learn's sets, MNIST-1D, a planted set), `datafiles.py`
(a user's CSV / NPZ) and `tasks.py` (the paper's tasks); `sources.py` is the
registry every CLI loads them through.

`from_arrays` gives stratified train / validation / test splits
drawn with an explicit seed (a plain random split for regression), inputs
standardised with the *training* split's mean and standard deviation only,
and targets shaped for the task loss:

| kind         | loss            | y                                  |
| ------------ | --------------- | ---------------------------------- |
| `binary`     | `bce`           | `(n, 1)` float32 in {0, 1}         |
| `multiclass` | `cross_entropy` | `(n,)` int32 labels 0..k−1         |
| `regression` | `mse`           | `(n, 1)` float32, standardised     |

Regression targets are standardised with the training split's mean and std
(`y_mean`, `y_std` kept to map back): a bias-free net cannot add an offset,
and the L1 penalty's weight λ only means the same thing across data sets
when the task loss is on a unit scale (diabetes targets run 25–346, an MSE in
the thousands). MSE and MAE are therefore in units of the training target's
standard deviation; R² is unchanged by the affine map.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

KINDS = ("binary", "multiclass", "regression")
LOSS_OF_KIND = {"binary": "bce", "multiclass": "cross_entropy", "regression": "mse"}
MAX_CLASSES_AUTO = 20  # integer targets with at most this many values are classes under task='auto'


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Splits of one data set, ready for `TrainConfig(loss=ds.loss, layers=(ds.n_in, ..., ds.n_out))`.

    `x_*` are float32 `(n_split, n_in)`, standardised with the training
    split's statistics; `y_*` follow the table in the module docstring. The
    validation split may be empty (`val_frac=0`): `(0, n_in)` and `(0, ...)`.
    """

    name: str
    kind: str  # one of KINDS
    feature_names: tuple[str, ...]
    target_name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple  # original class values (label i ↔ classes[i]); () for regression
    x_mean: np.ndarray  # (n_in,) training mean of the raw inputs
    x_std: np.ndarray  # (n_in,) training std (1 where a column is constant on train)
    y_mean: float | None = None  # regression only: training target mean and std
    y_std: float | None = None
    seed: int = 0

    @property
    def loss(self) -> str:
        return LOSS_OF_KIND[self.kind]

    @property
    def n_in(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_out(self) -> int:
        """Output width: 1 for binary and regression, the class count otherwise."""
        return len(self.classes) if self.kind == "multiclass" else 1

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """`(x, y)` of split 'train', 'val' or 'test'."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split={name!r} is invalid: allowed 'train', 'val', 'test'")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def info(self) -> dict:
        """A JSON-ready description (for results.json)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "loss": self.loss,
            "n_features": self.n_in,
            "n_outputs": self.n_out,
            "feature_names": list(self.feature_names),
            "target": self.target_name,
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes],
            "n_train": len(self.x_train),
            "n_val": len(self.x_val),
            "n_test": len(self.x_test),
            "split_seed": self.seed,
            "standardised": "inputs with training mean/std"
            + ("; targets with training mean/std" if self.kind == "regression" else ""),
            "y_mean": self.y_mean,
            "y_std": self.y_std,
        }


def _check_frac(name: str, v: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v < 1:
        raise ValueError(f"{name}={v!r} is invalid: allowed a number in [0, 1)")
    return float(v)


def infer_kind(y: np.ndarray) -> str:
    """'binary' for 2 distinct values, 'multiclass' for 3..MAX_CLASSES_AUTO
    integer values, 'regression' otherwise."""
    values = np.unique(y)
    if len(values) == 2:
        return "binary"
    if len(values) <= MAX_CLASSES_AUTO and np.all(values == np.round(values)):
        return "multiclass"
    return "regression"


def _split_indices(n: int, strata: np.ndarray | None, val_frac: float, test_frac: float, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    parts = []
    rest, rest_strata = idx, strata
    for frac, name in ((test_frac, "test"), (val_frac / (1.0 - test_frac), "validation")):
        if frac == 0:
            parts.append(idx[:0])
            continue
        try:
            rest, part = train_test_split(rest, test_size=frac, random_state=seed, shuffle=True,
                                          stratify=rest_strata)
        except ValueError as e:
            raise ValueError(f"cannot draw a {name} split of {frac:.3g} from {len(rest)} samples"
                             f"{' stratified by class' if strata is not None else ''}: {e}") from None
        rest_strata = None if strata is None else strata[rest]
        parts.append(part)
    if len(rest) == 0:
        raise ValueError(f"val_frac={val_frac} and test_frac={test_frac} leave no training samples")
    return np.sort(rest), np.sort(parts[1]), np.sort(parts[0])


def from_arrays(
    x,
    y,
    *,
    name: str = "arrays",
    feature_names: Sequence[str] | None = None,
    target_name: str = "y",
    task: str = "auto",
    val_frac: float = 0.2,
    test_frac: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Split, standardise and shape raw arrays into a `Dataset`.

    Args:
      x: `(n, d)` numeric inputs; y: `(n,)` or `(n, 1)` numeric targets.
      feature_names: d column names (default `x0`, `x1`, ...).
      task: 'auto' (see `infer_kind`), 'binary', 'multiclass' or 'regression'.
      val_frac, test_frac: fractions of all samples in the validation and
        test splits (stratified by class for classification), each in [0, 1).
      seed: seed of the split.
    Raises:
      ValueError naming the problem for empty, non-finite, mismatched or
      constant-target data and for impossible splits.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: x.shape={x.shape} is invalid: allowed (n_samples >= 1, n_features >= 1)")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (x.shape[0],):
        raise ValueError(f"{name}: y.shape={y.shape} is invalid: allowed ({x.shape[0]},) or ({x.shape[0]}, 1) to match x")
    for arr, what in ((x, "x"), (y, "y")):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name}: {what}.dtype={arr.dtype} is invalid: allowed numeric values")
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if not np.all(np.isfinite(x)):
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{name}: x has {int(np.sum(~np.isfinite(x)))} NaN/inf entries (first: row {r}, "
                         f"feature {feature_names[c] if feature_names else c}): allowed finite values only")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name}: target {target_name!r} has {int(np.sum(~np.isfinite(y)))} NaN/inf entries "
                         f"(first: row {int(np.argmax(~np.isfinite(y)))}): allowed finite values only")
    if len(np.unique(y)) < 2:
        raise ValueError(f"{name}: target {target_name!r} is constant ({y[0]:g} in all {len(y)} rows): "
                         "nothing to learn; allowed a target with at least two distinct values")
    names = tuple(f"x{i}" for i in range(x.shape[1])) if feature_names is None else tuple(str(f) for f in feature_names)
    if len(names) != x.shape[1]:
        raise ValueError(f"{name}: {len(names)} feature names for {x.shape[1]} features")
    if task not in ("auto",) + KINDS:
        raise ValueError(f"task={task!r} is invalid: allowed 'auto', " + ", ".join(repr(k) for k in KINDS))
    kind = infer_kind(y) if task == "auto" else task
    val_frac, test_frac = _check_frac("val_frac", val_frac), _check_frac("test_frac", test_frac)
    if val_frac + test_frac >= 1:
        raise ValueError(f"val_frac + test_frac = {val_frac + test_frac:g} is invalid: allowed < 1")

    classes: tuple = ()
    if kind == "regression":
        target = y
        strata = None
    else:
        values, labels = np.unique(y, return_inverse=True)
        if kind == "binary" and len(values) != 2:
            raise ValueError(f"{name}: task='binary' needs exactly 2 target values; {target_name!r} has {len(values)}")
        classes = tuple(v.item() for v in (values.astype(np.int64) if np.all(values == np.round(values)) else values))
        target = labels
        strata = labels
    tr, va, te = _split_indices(len(y), strata, val_frac, test_frac, seed)

    mean = x[tr].mean(axis=0)
    std = x[tr].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    xs = ((x - mean) / std).astype(np.float32)
    y_mean = y_std = None
    if kind == "regression":
        y_mean, y_std = float(target[tr].mean()), float(target[tr].std())
        if y_std == 0:
            raise ValueError(f"{name}: target {target_name!r} is constant on the training split: nothing to learn")
        ys = ((target - y_mean) / y_std).astype(np.float32)[:, None]
    elif kind == "binary":
        ys = target.astype(np.float32)[:, None]
    else:
        ys = target.astype(np.int32)
    return Dataset(name, kind, names, str(target_name), xs[tr], ys[tr], xs[va], ys[va], xs[te], ys[te],
                   classes, mean.astype(np.float32), std.astype(np.float32), y_mean, y_std, int(seed))


def plain(x_train, y_train, x_test=None, y_test=None, x_val=None, y_val=None, *, name: str = "arrays",
          kind: str = "auto") -> Dataset:
    """Arrays used as they are (no split, no standardisation) as a `Dataset`:
    `x_*` `(n, d)` float, `y_*` shaped for the task loss (see the module
    docstring). The test split defaults to the training split, the validation
    split to empty. `kind` 'auto' infers it from `y_train` (`infer_kind`)."""
    x_train = np.asarray(x_train, np.float32)
    y_train = np.asarray(y_train)
    if x_train.ndim != 2:
        raise ValueError(f"x_train.shape={x_train.shape} is invalid: allowed (n_samples, n_features)")
    if x_test is None:
        x_test, y_test = x_train, y_train
    if x_val is None:
        x_val, y_val = x_train[:0], y_train[:0]
    if kind not in ("auto",) + KINDS:
        raise ValueError(f"kind={kind!r} is invalid: allowed 'auto', " + ", ".join(repr(k) for k in KINDS))
    kind = infer_kind(y_train) if kind == "auto" else kind
    classes = tuple(range(int(y_train.max()) + 1)) if kind == "multiclass" else (0, 1) if kind == "binary" else ()
    d = x_train.shape[1]
    return Dataset(name, kind, tuple(f"x{i}" for i in range(d)), "y", x_train, y_train, np.asarray(x_val, np.float32),
                   np.asarray(y_val), np.asarray(x_test, np.float32), np.asarray(y_test), classes,
                   np.zeros(d, np.float32), np.ones(d, np.float32))
