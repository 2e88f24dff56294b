"""Bundled data sets, offline: scikit-learn's `breast_cancer`, `wine`,
`digits` and `diabetes` (shipped inside scikit-learn), `mnist1d` (generated
locally by the `mnist1d` package's own generator; its download path is never
used) and `planted` (synthetic, with known relevant and irrelevant inputs, for
checking feature selection). Each returns a `datasets.Dataset` split and
standardised by `datasets.from_arrays`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .datasets import Dataset, from_arrays


def _sklearn(loader: str, task: str) -> Callable[..., Dataset]:
    def load(*, val_frac: float = 0.2, test_frac: float = 0.2, seed: int = 0) -> Dataset:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{loader}")()
        names = getattr(bunch, "feature_names", None)
        if names is None or len(names) != bunch.data.shape[1]:
            names = [f"x{i}" for i in range(bunch.data.shape[1])]
        return from_arrays(bunch.data, bunch.target, name=loader, feature_names=[str(n) for n in names],
                           target_name="target", task=task, val_frac=val_frac, test_frac=test_frac, seed=seed)

    load.__doc__ = f"scikit-learn's bundled `load_{loader}()` as a {task} `Dataset`."
    return load


breast_cancer = _sklearn("breast_cancer", "binary")  # 569 × 30, malignant / benign
wine = _sklearn("wine", "multiclass")  # 178 × 13, 3 cultivars
digits = _sklearn("digits", "multiclass")  # 1797 × 64 (8×8 pixels), 10 digits
diabetes = _sklearn("diabetes", "regression")  # 442 × 10, disease progression


def mnist1d(*, n_samples: int = 5000, val_frac: float = 0.2, test_frac: float = 0.2, seed: int = 0,
            data_seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020): 10 one-dimensional digit templates, randomly
    padded, translated, scaled, sheared and noised into length-40 signals.

    Generated locally by the `mnist1d` package's `make_dataset` (never its
    download path) with the package's default settings and `data_seed`;
    NumPy's global random state, which that generator reseeds, is restored
    afterwards. Harder than it looks: a linear model gets ~30 %, an MLP ~70 %."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError("the mnist1d data set needs the `mnist1d` package: pip install mnist1d") from e
    args = get_dataset_args()
    args.num_samples = int(n_samples)
    args.seed = int(data_seed)
    state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    x = np.concatenate([d["x"], d["x_test"]])
    y = np.concatenate([d["y"], d["y_test"]])
    return from_arrays(x, y, name="mnist1d", feature_names=[f"t{i:02d}" for i in range(x.shape[1])],
                       target_name="digit", task="multiclass", val_frac=val_frac, test_frac=test_frac, seed=seed)


def planted(*, n_samples: int = 1000, n_relevant: int = 4, n_irrelevant: int = 16, val_frac: float = 0.2,
            test_frac: float = 0.2, seed: int = 0, data_seed: int = 0) -> Dataset:
    """Synthetic binary task with planted irrelevant inputs.

    x ~ N(0, I): `n_relevant` columns `relevant_0..` and `n_irrelevant`
    independent noise columns `noise_0..`. The label uses the relevant columns
    only, through a positively homogeneous rule that a bias-free ReLU net can
    represent: y = 1[x_0 − x_1 + x_2 − x_3 + ... + 1.5·(|x_0| − |x_1|) > 0]
    (balanced classes; every relevant column has a linear part, so each one
    matters). A selector that works keeps the `relevant_*` columns and drops
    every `noise_*` one.
    `data_seed` draws the data, `seed` the split."""
    if n_relevant < 1 or n_irrelevant < 0:
        raise ValueError(f"n_relevant={n_relevant}, n_irrelevant={n_irrelevant} are invalid: allowed >= 1 and >= 0")
    rng = np.random.default_rng(data_seed)
    x = rng.normal(size=(n_samples, n_relevant + n_irrelevant))
    r = x[:, :n_relevant]
    score = r @ np.where(np.arange(n_relevant) % 2 == 0, 1.0, -1.0)
    if n_relevant >= 2:
        score = score + 1.5 * (np.abs(r[:, 0]) - np.abs(r[:, 1]))
    y = (score > 0).astype(np.int64)
    names = [f"relevant_{i}" for i in range(n_relevant)] + [f"noise_{i}" for i in range(n_irrelevant)]
    return from_arrays(x, y, name="planted", feature_names=names, target_name="label", task="binary",
                       val_frac=val_frac, test_frac=test_frac, seed=seed)
