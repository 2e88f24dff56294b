"""The tools users pick instead, as baselines on one split of real data (`experiments/compare_real.py`).

Pruning baselines, over a stacked sweep (a leading run axis C on every edge array), vmapped:

* `one_shot_magnitude`: each run's dense net keeps, per layer, as many of its largest |w| as a
  target net has in that layer, then fine-tunes the survivors (`finetune.finetune_masked`);
* `imp_rewind`: iterative magnitude pruning with rewinding, the lottery-ticket procedure
  (Frankle & Carbin, ICLR 2019; rewinding to an early iterate, Frankle et al., ICML 2020):
  `rounds` times prune the smallest surviving |w| per layer, reset the survivors to their values at
  epoch `rewind_epochs` of dense training, retrain; per-layer keep fractions shrink geometrically
  so that round `rounds` reaches the target counts.

scikit-learn baselines (and LassoNet, Lemhadri et al., JMLR 2021, when installed), each over a
grid of its one sparsity or capacity knob, scored on the validation and test splits of a
`datasets.Dataset`: `l1_linear` (L1 logistic regression, C; Lasso, alpha), `gradient_boosting`
(`HistGradientBoosting*`, max_leaf_nodes) and `lassonet` (its own λ path). Each returns a
`Candidates`; `choose` picks one the same way for every method.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .finetune import finetune_masked, magnitude_masks_per_layer
from .network import Edges


class Candidates(NamedTuple):
    """One method's candidates on one split (K of them), numpy `(K,)` arrays."""

    param: np.ndarray  # the knob's value (C, alpha, max_leaf_nodes, λ)
    val: np.ndarray  # validation metric (accuracy or R²)
    test: np.ndarray  # test metric
    kept: np.ndarray  # non-zero weights (linear, LassoNet; intercepts and biases not counted) or tree nodes
    features: np.ndarray  # inputs the model reads


def choose(val, kept, tol: float) -> int:
    """The sparsest candidate whose validation metric (higher is better) is within `tol` of the best;
    ties: the better validation metric, then the first. Non-finite values are never chosen."""
    val = np.where(np.isfinite(val), np.asarray(val, np.float64), -np.inf)
    ok = np.flatnonzero(val >= val.max() - tol)
    return int(ok[np.lexsort((-val[ok], np.asarray(kept)[ok]))[0]])


# ---- pruning baselines (stacked runs) ---------------------------------------------------------

def _finetune(edges, masks, x, y, lr, *, epochs: int, loss: str, hidden_activation: str) -> Edges:
    ft = lambda e, m: finetune_masked(e, m, x, y, lr, epochs=epochs, loss=loss, hidden_activation=hidden_activation)
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam needs it
        return jax.vmap(ft)(tuple(jnp.asarray(w) for w in edges), tuple(masks))


def one_shot_magnitude(dense: Edges, ks, x, y, lr, *, epochs: int, loss: str, hidden_activation: str):
    """Keep `ks[c, l]` largest |w| of layer l of run c's dense net, fine-tune `epochs` with the mask fixed.
    Returns (edges, masks), stacked like `dense`."""
    m = jax.vmap(magnitude_masks_per_layer)(tuple(jnp.asarray(w) for w in dense), jnp.asarray(ks, jnp.int32))
    return _finetune(dense, m, x, y, lr, epochs=epochs, loss=loss, hidden_activation=hidden_activation), m


def imp_schedule(totals, ks, rounds: int) -> np.ndarray:
    """Per-layer edges kept after each round `(rounds, C, L)`: `totals[l]·(ks[c, l]/totals[l])^(r/rounds)`,
    rounded, never below the target and never rising; round `rounds` is `ks` exactly."""
    totals = np.asarray(totals, np.float64)
    frac = np.asarray(ks, np.float64) / totals
    r = np.arange(1, rounds + 1, dtype=np.float64)[:, None, None] / rounds
    sched = np.maximum(np.round(totals * frac[None] ** r), np.asarray(ks)[None]).astype(np.int64)
    return np.minimum.accumulate(sched, axis=0)


def imp_rewind(dense: Edges, initial: Edges, ks, x, y, lr, *, rounds: int, rewind_epochs: int, epochs: int,
               loss: str, hidden_activation: str):
    """Iterative magnitude pruning with rewinding (see the module docstring).

    Args:
      dense: the runs' trained dense nets (leading axis C).
      initial: the same runs' initial edges (`finetune.initial_edges`).
      ks: `(C, L)` target edges per run and layer.
      x, y: training data; lr: Adam's learning rate.
      rounds: prune-rewind-retrain rounds (>= 1); rewind_epochs: the rewind point (0: the init).
      epochs: epochs of each retraining round.
    Returns:
      (edges, masks) after the last round; the masks keep `ks` edges per layer (ties at the threshold aside).
    """
    initial = tuple(jnp.asarray(w) for w in initial)
    ones = tuple(jnp.ones(w.shape, bool) for w in initial)
    rewind = initial if rewind_epochs == 0 else _finetune(initial, ones, x, y, lr, epochs=rewind_epochs, loss=loss,
                                                          hidden_activation=hidden_activation)
    current, mask = tuple(jnp.asarray(w) for w in dense), ones
    for keep in imp_schedule([w.shape[1] * w.shape[2] for w in initial], ks, rounds):
        scored = tuple(jnp.where(m, w, 0.0) for w, m in zip(current, mask))
        mask = tuple(a & b for a, b in zip(jax.vmap(magnitude_masks_per_layer)(scored, jnp.asarray(keep, jnp.int32)),
                                           mask))
        current = _finetune(rewind, mask, x, y, lr, epochs=epochs, loss=loss, hidden_activation=hidden_activation)
    return current, mask


# ---- scikit-learn baselines and LassoNet -----------------------------------------------------

def _xy(ds, split: str):
    x, y = ds.split(split)
    y = np.asarray(y)
    return np.asarray(x, np.float64), (y.ravel().astype(np.int64) if ds.kind != "regression" else y.ravel())


def _score(model, ds, split: str) -> float:
    return float(model.score(*_xy(ds, split)))  # accuracy, or R² (unchanged by the targets' standardisation)


def l1_linear(ds, grid, *, seed: int = 0) -> Candidates:
    """L1 logistic regression over C in `grid` (classification; saga, multinomial) or the Lasso over alpha,
    fitted along the path from the sparsest end with warm starts (tol 1e-3; candidates in `grid`'s order)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso, LogisticRegression

    regression = ds.kind == "regression"
    model = (Lasso(max_iter=20_000, warm_start=True) if regression else
             LogisticRegression(l1_ratio=1.0, solver="saga", tol=1e-3, max_iter=2_000, warm_start=True,
                                random_state=seed))
    rows = {}
    for v in sorted(grid, reverse=regression):  # strongest penalty first: small C, large alpha
        model.set_params(**{"alpha" if regression else "C": v})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(*_xy(ds, "train"))
        coef = np.atleast_2d(model.coef_) != 0
        rows[v] = (v, _score(model, ds, "val"), _score(model, ds, "test"), coef.sum(), coef.any(axis=0).sum())
    return Candidates(*map(np.asarray, zip(*(rows[v] for v in grid))))


def gradient_boosting(ds, grid, *, max_iter: int = 100, seed: int = 0) -> Candidates:
    """`HistGradientBoosting{Classifier,Regressor}` over max_leaf_nodes in `grid` (`max_iter` trees per
    class, no early stopping); kept = tree nodes (splits and leaves) over every tree."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if ds.kind == "regression" else HistGradientBoostingClassifier
    rows = []
    for v in grid:
        model = cls(max_leaf_nodes=int(v), max_iter=max_iter, early_stopping=False, random_state=seed)
        model.fit(*_xy(ds, "train"))
        trees = [t for it in model._predictors for t in it]  # scikit-learn's fitted TreePredictors
        used = np.zeros(ds.n_in, bool)
        for t in trees:
            used[t.nodes["feature_idx"][~t.nodes["is_leaf"].astype(bool)]] = True
        rows.append((v, _score(model, ds, "val"), _score(model, ds, "test"), sum(len(t.nodes) for t in trees),
                     used.sum()))
    return Candidates(*map(np.asarray, zip(*rows)))


def lassonet(ds, *, hidden: tuple[int, ...], epochs: int, path_multiplier: float = 1.1, seed: int = 0,
             threads: int | None = None) -> Candidates:
    """LassoNet's path (`hidden_dims=hidden`, `epochs` for the dense start, a tenth per path step, its
    default optimisers), early-stopped on and scored on our validation split; one candidate per λ.
    `threads`: torch's intra-op threads (None: torch's default).
    Raises ImportError without the `lassonet` package (`pip install lassonet`, needs torch)."""
    import torch
    from lassonet import LassoNetClassifier, LassoNetRegressor

    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cls = LassoNetRegressor if ds.kind == "regression" else LassoNetClassifier
    model = cls(hidden_dims=tuple(hidden), n_iters=(epochs, max(epochs // 10, 1)), path_multiplier=path_multiplier,
                verbose=0, random_state=seed, torch_seed=seed)
    (xt, yt), (xv, yv) = _xy(ds, "train"), _xy(ds, "val")
    path = model.path(xt.astype(np.float32), yt, X_val=xv.astype(np.float32), y_val=yv, return_state_dicts=True)
    rows = []
    for item in path:
        model.load(item.state_dict)
        kept = sum(int(torch.count_nonzero(v)) for k, v in item.state_dict.items() if k.endswith("weight"))
        rows.append((item.lambda_, _score(model, ds, "val"), _score(model, ds, "test"), kept,
                     int(item.selected.sum())))
    return Candidates(*map(np.asarray, zip(*rows)))
