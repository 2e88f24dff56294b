"""The one registry of data sources: the paper's tasks, the bundled real data
sets and a user's CSV / NPZ file, each loaded as a `datasets.Dataset`.

Every CLI takes its data flags from here (`SOURCES`, `load_source`), and each
source carries the settings it is run with unless the user says otherwise
(`Source.defaults`: TrainConfig fields, hidden widths) and, for the paper's
tasks, the paper's numbers.

    ds = load_source("digits", val_frac=0.2, test_frac=0.2, data_seed=0)
    ds = load_source("csv", path="my.csv", target="y")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from . import bundled, datafiles, tasks
from .config import TrainConfig
from .datasets import Dataset

# Settings the real data sets run with (inputs standardised, a 32-unit hidden
# layer with bias edges, λ = 1e-3 when not chosen by the path, lr = 3e-3):
# chosen on the bundled sets, see the README ("Real data"). Bias edges: a
# bias-free ReLU net is positively homogeneous, f(c·x) = c·f(x), so it cannot
# fit parity or a target with an offset (measured in docs/path/auto_lam.md).
TABULAR_DEFAULTS = {"lam": 1e-3, "lr": 3e-3, "epochs": 1000, "bias": True}
TABULAR_HIDDEN = (32,)


@dataclasses.dataclass(frozen=True)
class Source:
    """One data source.

    Attributes:
      name: the name used by `--dataset` ('csv' and 'npz' come from `--csv`
        / `--npz`).
      load: `load(**params) -> Dataset`.
      params: the names of `load`'s keyword arguments a user may set (the
        CLI's data flags that apply to this source).
      hidden: default hidden widths (layers = n_in, *hidden, n_out).
      defaults: TrainConfig fields this source runs with by default.
      paper: the paper's reported numbers (paper tasks only).
      about: one line for `--help`.
      condition: what `--path` asks of the chosen net by default
        (`path.parse_condition`; None: the user must say).
    """

    name: str
    load: Callable[..., Dataset]
    params: tuple[str, ...]
    hidden: tuple[int, ...]
    defaults: dict[str, Any]
    paper: dict[str, Any]
    about: str
    condition: str | None = None


_SPLIT = ("val_frac", "test_frac", "data_seed")


def _real(name: str, loader: Callable[..., Dataset], about: str, extra: tuple[str, ...] = ()) -> Source:
    def load(*, val_frac: float = 0.2, test_frac: float = 0.2, data_seed: int = 0, **kw) -> Dataset:
        return loader(val_frac=val_frac, test_frac=test_frac, seed=data_seed, **kw)

    return Source(name, load, _SPLIT + extra, TABULAR_HIDDEN, TABULAR_DEFAULTS, {}, about)


def _xor(*, data_seed: int = 0, copies: int = 25, noise: float = 0.1, bare: bool = False, val_copies: int = 0):
    return tasks.xor(data_seed, copies=copies, noise=noise, bare=bare, val_copies=val_copies)


def _addition(*, data_seed: int = 0, n_train: int = 200, n_test: int = 1000, n_val: int = 0):
    return tasks.addition(data_seed, n_train=n_train, n_test=n_test, n_val=n_val)


SOURCES: dict[str, Source] = {
    "xor": Source("xor", _xor, ("data_seed", "copies", "noise", "bare", "val_copies"), (4,), {"epochs": 1000},
                  {"accuracy": 0.745, "active_edges": 8, "total_edges_stated": 12, "final_loss": 2.625, "lam": 1e-2},
                  "the paper's XOR: noisy copies of the four corners (paper §4.1)", "accuracy>=1"),
    "addition": Source("addition", _addition, ("data_seed", "n_train", "n_test", "n_val"), (8,), {"epochs": 2000},
                       {"mse": 0.378, "mae": 0.437, "r2": 0.796, "active_edges": 12, "total_edges_stated": 16,
                        "lam": 1e-2},
                       "the paper's a + b, a, b ~ U[0, 1] (paper §4.2)", "r2>=0.99"),
    "breast_cancer": _real("breast_cancer", bundled.breast_cancer, "569 × 30, binary"),
    "wine": _real("wine", bundled.wine, "178 × 13, 3 classes"),
    "digits": _real("digits", bundled.digits, "1797 × 64 (8×8 pixels), 10 classes"),
    "diabetes": _real("diabetes", bundled.diabetes, "442 × 10, regression"),
    "mnist1d": _real("mnist1d", bundled.mnist1d, "5000 × 40 (MNIST-1D, generated offline), 10 classes",
                     ("n_samples",)),
    "planted": _real("planted", bundled.planted,
                     "1000 × 20 synthetic, 4 relevant and 16 noise inputs, binary", ("n_samples",)),
    "csv": _real("csv", datafiles.load_csv, "your CSV file (header row, numeric columns)",
                 ("path", "target", "task")),
    "npz": _real("npz", datafiles.load_npz, "your .npz with x (n, d), y (n,) [, feature_names]",
                 ("path", "task")),
}
NAMED = tuple(k for k in SOURCES if k not in ("csv", "npz"))  # what `--dataset` takes


def load_source(name: str, **params: Any) -> Dataset:
    """Load source `name` with `params` (its `Source.params`; None values
    mean "the source's default"). Raises ValueError naming a parameter the
    source does not take, and the loader's own errors for bad values."""
    if name not in SOURCES:
        raise ValueError(f"dataset={name!r} is invalid: allowed one of " + ", ".join(repr(k) for k in NAMED)
                         + " (or a file with --csv / --npz)")
    src = SOURCES[name]
    given = {k: v for k, v in params.items() if v is not None}
    wrong = sorted(set(given) - set(src.params))
    if wrong:
        raise ValueError(f"{wrong[0]}={given[wrong[0]]!r} is invalid for dataset {name!r}: allowed its parameters "
                         + ", ".join(src.params))
    return src.load(**given)


def headline(ds: Dataset) -> str:
    """The metric that sums up runs on `ds`: accuracy for classification, R² for regression."""
    return "r2" if ds.kind == "regression" else "accuracy"


def default_config(name: str, ds: Dataset, hidden: tuple[int, ...] | None = None) -> TrainConfig:
    """The config source `name` runs with on `ds` unless told otherwise:
    layers `(ds.n_in, *hidden, ds.n_out)` (default: the source's hidden
    widths), the data's loss and the source's defaults."""
    src = SOURCES[name]
    widths = src.hidden if hidden is None else tuple(hidden)
    return TrainConfig(layers=(ds.n_in, *widths, ds.n_out), loss=ds.loss, **src.defaults)
