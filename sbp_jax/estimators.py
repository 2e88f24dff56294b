"""scikit-learn estimators: `SBPClassifier` and `SBPRegressor`.

    from sbp_jax.estimators import SBPClassifier
    clf = SBPClassifier(random_state=0).fit(X, y)  # λ chosen on a held-out split (lam='auto')
    clf.score(X_test, y_test), clf.n_active_edges_, clf.selected_features_
    clf.transform(X)                      # the columns the learned net still reads (like SelectFromModel)

Parameters are the training options: one per row of `options.OPTIONS` (every
`TrainConfig` field) except `layers`, which is `hidden_layer_sizes` as in
`MLPClassifier`; a new option is a new parameter. Defaults are `TrainConfig`'s
with the real-data settings of `sources.TABULAR_DEFAULTS` / `TABULAR_HIDDEN`
on top (bias edges on), `lam='auto'` (λ chosen on a held-out split, below) and
`loss='auto'` (taken from the target). Besides them:
`random_state` (the seed of the first run), `n_seeds`, `validation_fraction`
and `path_params` (see below). `__init__` only stores them; `fit` validates
them (through `TrainConfig`: `lam=-1.0 is invalid: allowed a finite number >= 0`).

`fit`:

* standardises the inputs with their mean and std (`x_mean_`, `x_scale_`;
  a bias-free net needs centred inputs; constant columns keep scale 1) and,
  for regression, the targets (`y_mean_`, `y_scale_`, mapped back in `predict`);
* `n_seeds=1`: one run (`train.train`, seed `random_state`) on all the data;
* `n_seeds>1`: the seeds `random_state, random_state+1, ...` as one vmapped
  sweep (`sweep.run_grid`) on `1 − validation_fraction` of the data (a
  stratified split for classifiers); the run whose pruned net scores best on
  the held-out rest is kept (ties: fewer active edges), trained on that part only;
* `lam='auto'`: the λ path (`path.auto.auto_lam`, glmnet's 1-SE rule over the
  seeds on the held-out split; `path_params` go to `run_path`), then the best
  seed at the chosen step as above; `path_` is the `AutoLam`.

Predictions are those of the learned architecture: the trained net with every
inactive edge (|w| < ε) set to zero. Fitted attributes: `module_` (that net
as a `network.SparseMLP`, an equinox module taking *standardised* inputs and,
for regression, giving standardised targets), `graph_` (`export.compact`: the
compact net, dead hidden units removed; None where export refuses a sigmoid
net), `n_active_edges_`, `selected_features_` (names of the inputs on an
active path to an output; `get_support()` as a mask), `structure_`,
`config_`, `lam_`, `seed_`, `loss_curve_`, `n_features_in_` /
`feature_names_in_`, and `classes_` for the classifier.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import jax
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.feature_selection import SelectorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import datasets, export, sources, sweep
from .config import TrainConfig, check_finite_nonneg, check_int
from .network import SparseMLP, forward
from .options import AUTO, OPTIONS
from .structure import analyse, masked, selected_features, structure_dict
from .train import train

_OPTION_DEFAULTS = ({f.name: f.default for f in dataclasses.fields(TrainConfig)} | sources.TABULAR_DEFAULTS
                    | {"loss": "auto", "lam": AUTO})
TRAINING_PARAMS = tuple(o.field for o in OPTIONS if o.field != "layers")  # the estimators' share of the table
EXTRA_PARAMS = {"random_state": None, "n_seeds": 1, "validation_fraction": 0.2, "path_params": None}
PARAMS = {"hidden_layer_sizes": sources.TABULAR_HIDDEN} | {f: _OPTION_DEFAULTS[f] for f in TRAINING_PARAMS} | EXTRA_PARAMS
_EXTRA_HELP = {
    "hidden_layer_sizes": "hidden widths (layers = n_features, *hidden_layer_sizes, n_outputs); () for none",
    "random_state": "seed of the first run (int >= 0), or None / a RandomState to draw one",
    "n_seeds": "runs trained at once (one vmapped sweep); the best on the held-out split is kept",
    "validation_fraction": "held-out share used when n_seeds > 1 or lam='auto'",
    "path_params": "dict of options for the λ path of lam='auto' (`path.run.run_path`: n_steps, ratio, ...)",
}
_HELP = {o.field: o.help for o in OPTIONS} | _EXTRA_HELP


def _init_from(params: dict):
    """An `__init__` taking exactly `params` (keyword-only, with their defaults) and storing them
    untouched, with a real signature for `get_params` / `clone`."""
    sig = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
                            + [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in params.items()])

    def __init__(self, **kwargs):
        bound = sig.bind(self, **kwargs)
        bound.apply_defaults()
        for k, v in list(bound.arguments.items())[1:]:
            setattr(self, k, v)

    __init__.__signature__ = sig
    return __init__


_forward = jax.jit(forward, static_argnums=(2,))

# scikit-learn's conformance suite (`parametrize_with_checks(..., expected_failed_checks=...)`) passes
# whole (scikit-learn 1.9.1): nothing is expected to fail. scikit-learn itself skips
# `check_array_api_input` without SCIPY_ARRAY_API=1 (the estimators take NumPy) and, without pandas,
# the DataFrame half of `check_{classifier,regressor}_data_not_an_array`; the sample-weight checks do
# not apply (`fit` takes no sample_weight).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


class _SBPBase(SelectorMixin, BaseEstimator):
    __init__ = _init_from(PARAMS)
    _regression = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None or isinstance(self.random_state, np.random.RandomState)
        return tags

    # ---- fit ------------------------------------------------------------
    def fit(self, X, y):
        """Train on `X` `(n_samples, n_features)` and `y` `(n_samples,)` (regression: or
        `(n_samples, n_targets)`); returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=self._regression, multi_output=self._regression)
        self.x_mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.x_scale_ = np.where(std > 0, std, 1.0)
        xs = self._standardise(X)
        ys, loss, n_out = self._targets(y)
        cfg = self._config((X.shape[1], *self._hidden(), n_out), loss)
        seeds = self._seeds()
        self.path_ = None
        with jax.numpy_dtype_promotion("standard"):  # whatever the caller's setting: optax's Adam needs it
            runs = self._fit_selected if self.lam == AUTO or len(seeds) > 1 else self._fit_one
            edges, self.seed_, self.lam_, self.loss_curve_ = runs(cfg, xs, ys, seeds)
        self.config_ = cfg.replace(lam=self.lam_)
        self._set_net(tuple(np.asarray(w, np.float32) for w in edges))
        return self

    def _hidden(self) -> tuple[int, ...]:
        h = self.hidden_layer_sizes
        allowed = "a sequence of integers >= 1 (e.g. (32,) or (64, 32)), or () for no hidden layer"
        if isinstance(h, (int, np.integer)) and not isinstance(h, bool):
            h = (h,)
        if isinstance(h, (str, bytes)) or not hasattr(h, "__iter__"):
            raise TypeError(f"hidden_layer_sizes={h!r} is invalid: allowed {allowed}")
        try:
            return tuple(check_int("hidden_layer_sizes", v, 1) for v in h)
        except (TypeError, ValueError):
            raise ValueError(f"hidden_layer_sizes={h!r} is invalid: allowed {allowed}") from None

    def _config(self, layers, loss) -> TrainConfig:
        opts = {f: getattr(self, f) for f in TRAINING_PARAMS} | {"loss": loss}
        if isinstance(opts["lam"], str):
            if opts["lam"] != AUTO:
                raise ValueError(f"lam={opts['lam']!r} is invalid: allowed a finite number >= 0 or 'auto'")
            opts["lam"] = 0.0  # the path sets λ
        return TrainConfig(layers=layers, **opts)

    def _seeds(self) -> list[int]:
        n = check_int("n_seeds", self.n_seeds, 1)
        rs = self.random_state
        if rs is None or isinstance(rs, np.random.RandomState):
            first = int(check_random_state(rs).randint(0, 2**31 - n))
        else:
            first = check_int("random_state", rs, 0)
            if first + n > 2**32:
                raise ValueError(f"random_state={rs!r} is invalid: allowed an integer in [0, 2**32 - n_seeds]")
        return [first + i for i in range(n)]

    def _fit_one(self, cfg: TrainConfig, xs, ys, seeds):
        """One run (`train.train`) on all the data."""
        res = train(cfg, xs, ys, jax.random.key(seeds[0]))
        if int(res.diverged_at) >= 0:
            warnings.warn(f"the loss went non-finite at epoch {int(res.diverged_at)} (seed {seeds[0]}, lr={cfg.lr:g}): "
                          "predictions are not meaningful; try a smaller lr", RuntimeWarning)
        return res.edges, seeds[0], cfg.lam, np.asarray(res.history.loss).tolist()

    def _fit_selected(self, cfg: TrainConfig, xs, ys, seeds):
        """Several seeds and/or λ auto: train on a split, keep the best run on the held-out part."""
        frac = check_finite_nonneg("validation_fraction", self.validation_fraction)
        if not 0 < frac < 1:
            raise ValueError(f"validation_fraction={frac!r} is invalid: allowed a number in (0, 1)")
        strata = None if self._regression else (ys[:, 0] if ys.ndim == 2 else ys)
        try:
            tr, va = train_test_split(np.arange(len(xs)), test_size=frac, random_state=seeds[0], stratify=strata)
        except ValueError as e:
            raise ValueError(f"validation_fraction={frac!r} cannot split {len(xs)} samples"
                             f"{' by class' if strata is not None else ''}: {e}") from None
        data = datasets.plain(xs[tr], ys[tr], xs[va], ys[va], xs[va], ys[va], kind=_KIND[cfg.loss])
        metric = "r2" if self._regression else "accuracy"
        if self.lam == AUTO:
            try:
                from .path.auto import auto_lam
            except ImportError as e:  # pragma: no cover - the path module is part of the package
                raise ValueError("lam='auto' is invalid here: the λ path (sbp_jax.path) is not available") from e
            self.path_ = auto_lam(cfg, data, seeds, metric=metric, **(self.path_params or {}))
            rec, k = self.path_.path.records, self.path_.choice.step
            score, n_edges, bad = rec.val[metric][k], rec.active[k], rec.diverged[k]
            edges, lam, history = self.path_.edges, float(self.path_.lam), None  # the path keeps no loss curve
        else:
            out = sweep.run_grid(cfg, data, sweep.make_grid(cfg, seeds=seeds))
            score, n_edges = out.pruned_val[metric], out.structure.active_per_layer.sum(axis=1)
            bad, edges, lam, history = out.result.diverged_at >= 0, out.result.edges, cfg.lam, out.result.history.loss
        score = np.where(np.asarray(bad) | ~np.isfinite(score), -np.inf, score)
        if not np.isfinite(score).any():
            raise RuntimeError(f"every run diverged (non-finite loss; seeds {seeds}, lr={cfg.lr:g}): try a smaller lr")
        best = int(np.lexsort((np.asarray(n_edges), -score))[0])
        curve = [] if history is None else np.asarray(history[best]).tolist()
        return tuple(w[best] for w in edges), seeds[best], lam, curve

    def _set_net(self, edges) -> None:
        cfg = self.config_
        names = getattr(self, "feature_names_in_", None)
        names = [f"x{i}" for i in range(self.n_features_in_)] if names is None else list(names)
        self.edges_ = edges
        self.selected_features_ = selected_features(edges, cfg.eps, names, cfg.bias)
        self._support = np.isin(names, self.selected_features_)
        self.structure_ = structure_dict(analyse(edges, cfg.eps, cfg.bias), cfg.layout)
        self.n_active_edges_ = self.structure_["active_edges"]
        pruned = tuple(np.asarray(w) for w in masked(edges, cfg.eps))
        self.module_ = SparseMLP(tuple(jax.numpy.asarray(w) for w in pruned), cfg.hidden_activation,
                                 cfg.output_activation, cfg.bias)
        try:
            self.graph_ = export.compact(pruned, cfg.eps, cfg.hidden_activation, cfg.output_activation, cfg.bias)
        except ValueError as e:  # a sigmoid net whose dead units still emit σ(0)
            warnings.warn(f"graph_ is None: {e}", RuntimeWarning)
            self.graph_ = None

    # ---- predictions ----------------------------------------------------
    def _standardise(self, X) -> np.ndarray:
        return ((X - self.x_mean_) / self.x_scale_).astype(np.float32)

    def _raw(self, X) -> np.ndarray:
        """The learned net's raw outputs `(n, n_out)` (logits / standardised values)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(_forward(self.module_.edges, self._standardise(X), self.config_.hidden_activation),
                          np.float64)

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        return self._support


_KIND = {"bce": "binary", "cross_entropy": "multiclass", "mse": "regression"}


class SBPClassifier(ClassifierMixin, _SBPBase):
    def _targets(self, y):
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"y has 1 class ({self.classes_[0]!r}): allowed at least 2 classes")
        allowed = ("auto", "bce", "cross_entropy") if k == 2 else ("auto", "cross_entropy")
        if self.loss not in allowed:
            raise ValueError(f"loss={self.loss!r} is invalid for {k} classes: allowed one of "
                             + ", ".join(map(repr, allowed)))
        loss = ("bce" if k == 2 else "cross_entropy") if self.loss == "auto" else self.loss
        if loss == "bce":
            return labels.astype(np.float32)[:, None], loss, 1
        return labels.astype(np.int32), loss, k

    def decision_function(self, X) -> np.ndarray:
        """Logits: `(n,)` for two classes (the second class's score), `(n, n_classes)` otherwise."""
        z = self._raw(X)
        if len(self.classes_) == 2:
            return z[:, 0] if z.shape[1] == 1 else z[:, 1] - z[:, 0]
        return z

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities `(n, n_classes)` (sigmoid of the logit, or softmax)."""
        z = self._raw(X)
        if z.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        z = self._raw(X)
        idx = (z[:, 0] > 0).astype(int) if z.shape[1] == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]


class SBPRegressor(RegressorMixin, _SBPBase):
    _regression = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _targets(self, y):
        if self.loss not in ("auto", "mse"):
            raise ValueError(f"loss={self.loss!r} is invalid for a regressor: allowed 'auto' or 'mse'")
        y2 = y.reshape(len(y), -1)
        self.y_mean_ = y2.mean(axis=0)
        std = y2.std(axis=0)
        self.y_scale_ = np.where(std > 0, std, 1.0)
        self._y_ndim = y.ndim
        return ((y2 - self.y_mean_) / self.y_scale_).astype(np.float32), "mse", y2.shape[1]

    def predict(self, X) -> np.ndarray:
        """Predictions in the units of `y`: `(n,)`, or `(n, n_targets)` when fitted on 2-D `y`."""
        z = self._raw(X) * self.y_scale_ + self.y_mean_
        return z[:, 0] if self._y_ndim == 1 else z


def _docstring(kind: str) -> str:
    lines = [f"Structure-aware backprop {kind} (scikit-learn API); see `sbp_jax.estimators`.", "", "Parameters", "----------"]
    for name, default in PARAMS.items():
        lines += [f"{name} : default={default!r}", f"    {_HELP[name]}"]
    return "\n".join(lines)


SBPClassifier.__doc__ = _docstring("classifier")
SBPRegressor.__doc__ = _docstring("regressor")
