"""The paper's data sets. The paper does not say what data it used; the
choices below are ours and are stated in the README.

Data are generated with NumPy from an explicit `data_seed`, so every run of a
sweep (which varies only the initialisation seed) sees the same data.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

XOR_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_LABELS = np.array([0, 1, 1, 0], np.float32)


class TaskData(NamedTuple):
    """Train and test split of one task; float32 numpy arrays."""

    x_train: np.ndarray  # (n_train, n_in)
    y_train: np.ndarray  # (n_train, n_out) (or (n_train,) int labels)
    x_test: np.ndarray  # (n_test, n_in)
    y_test: np.ndarray


def _noisy_xor(rng: np.random.Generator, copies: int, noise: float):
    x = np.repeat(XOR_CORNERS, copies, axis=0)
    x = x + rng.normal(0.0, noise, x.shape).astype(np.float32) if noise > 0 else x
    y = np.repeat(XOR_LABELS, copies)[:, None]
    return x.astype(np.float32), y.astype(np.float32)


def xor(data_seed: int = 0, copies: int = 25, noise: float = 0.1, bare: bool = False) -> TaskData:
    """Noisy XOR: `copies` copies of each corner of {0,1}² plus N(0, noise²)
    noise (default 25 × 4 = 100 points), label x1 XOR x2. The test set is a
    fresh draw of the same size. `bare=True` gives the four corners alone
    (train = test)."""
    if bare:
        return TaskData(XOR_CORNERS.copy(), XOR_LABELS[:, None].copy(), XOR_CORNERS.copy(), XOR_LABELS[:, None].copy())
    rng = np.random.default_rng(data_seed)
    return TaskData(*_noisy_xor(rng, copies, noise), *_noisy_xor(rng, copies, noise))


def addition(data_seed: int = 0, n_train: int = 200, n_test: int = 1000) -> TaskData:
    """a + b with a, b ~ U[0, 1] independently; separate train and test draws."""
    rng = np.random.default_rng(data_seed)

    def draw(n):
        x = rng.uniform(0.0, 1.0, (n, 2)).astype(np.float32)
        return x, x.sum(axis=1, keepdims=True)

    return TaskData(*draw(n_train), *draw(n_test))
