"""The paper's data sets, as `datasets.Dataset`s. The paper does not say what
data it used; the choices below are ours and are stated in the README.

Data are generated with NumPy from an explicit `data_seed`, so every run of a
sweep (which varies only the initialisation seed) sees the same data. Unlike
the real data sets, nothing is standardised (the paper's units), and there is
no validation split unless one is asked for (`n_val`, a further fresh draw).
"""

from __future__ import annotations

import numpy as np

from .datasets import Dataset

XOR_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_LABELS = np.array([0, 1, 1, 0], np.float32)


def _dataset(name: str, kind: str, train, val, test, classes: tuple, target: str, seed: int) -> Dataset:
    n_in = train[0].shape[1]
    return Dataset(name, kind, tuple(f"x{i}" for i in range(n_in)), target, *train, *val, *test, classes,
                   np.zeros(n_in, np.float32), np.ones(n_in, np.float32), None, None, int(seed))


def _noisy_xor(rng: np.random.Generator, copies: int, noise: float):
    x = np.repeat(XOR_CORNERS, copies, axis=0)
    x = x + rng.normal(0.0, noise, x.shape).astype(np.float32) if noise > 0 else x
    y = np.repeat(XOR_LABELS, copies)[:, None]
    return x.astype(np.float32), y.astype(np.float32)


def xor(data_seed: int = 0, copies: int = 25, noise: float = 0.1, bare: bool = False, val_copies: int = 0) -> Dataset:
    """Noisy XOR: `copies` copies of each corner of {0,1}² plus N(0, noise²)
    noise (default 25 × 4 = 100 points), label x1 XOR x2 as `(n, 1)` float32.
    The test set is a fresh draw of the same size; `val_copies` > 0 adds a
    validation draw of 4·val_copies points (drawn after the test set, so the
    train and test sets do not change). `bare=True` gives the four corners
    alone (train = test = validation when asked for)."""
    for name, v, lo in (("copies", copies, 1), ("val_copies", val_copies, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r} is invalid: allowed an integer >= {lo}")
    if not (isinstance(noise, (int, float)) and np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise!r} is invalid: allowed a finite number >= 0")
    if bare:
        corners = (XOR_CORNERS.copy(), XOR_LABELS[:, None].copy())
        val = corners if val_copies else (XOR_CORNERS[:0].copy(), XOR_LABELS[:0, None].copy())
        return _dataset("xor", "binary", corners, val, corners, (0, 1), "xor", data_seed)
    rng = np.random.default_rng(data_seed)
    train, test = _noisy_xor(rng, copies, noise), _noisy_xor(rng, copies, noise)
    val = _noisy_xor(rng, val_copies, noise) if val_copies else (train[0][:0], train[1][:0])
    return _dataset("xor", "binary", train, val, test, (0, 1), "xor", data_seed)


def addition(data_seed: int = 0, n_train: int = 200, n_test: int = 1000, n_val: int = 0) -> Dataset:
    """a + b with a, b ~ U[0, 1] independently: x `(n, 2)`, y `(n, 1)` float32;
    separate train, test (and, with `n_val` > 0, validation) draws."""
    for name, v, lo in (("n_train", n_train, 1), ("n_test", n_test, 1), ("n_val", n_val, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r} is invalid: allowed an integer >= {lo}")
    rng = np.random.default_rng(data_seed)

    def draw(n):
        x = rng.uniform(0.0, 1.0, (n, 2)).astype(np.float32)
        return x, x.sum(axis=1, keepdims=True)

    train, test = draw(n_train), draw(n_test)
    return _dataset("addition", "regression", train, draw(n_val), test, (), "a+b", data_seed)
