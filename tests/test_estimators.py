"""The scikit-learn estimators: parameters from the options table, errors, fitted attributes, the
equinox module and the compact graph, sklearn's tools (Pipeline, GridSearchCV, cross_val_score) and
sklearn's own conformance suite (a fast subset by default, all of it with -m slow)."""

from __future__ import annotations

import dataclasses
import inspect

import equinox as eqx
import jax
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sbp_jax import TrainConfig, export, train
from sbp_jax.estimators import EXPECTED_FAILED_CHECKS, PARAMS, SBPClassifier, SBPRegressor
from sbp_jax.options import OPTIONS
from sbp_jax.sources import TABULAR_DEFAULTS, TABULAR_HIDDEN

# Small nets, few epochs: every fit is cheap; the compiled program is shared by fits of one shape.
TINY = dict(hidden_layer_sizes=(8,), epochs=150, lr=3e-2, lam=1e-4, random_state=0)


@pytest.fixture(scope="module")
def binary():
    x, y = make_classification(n_samples=90, n_features=6, n_informative=3, n_redundant=0, random_state=0)
    return x * 10.0 + 3.0, y  # off-scale inputs: standardised inside fit


@pytest.mark.parametrize("cls", [SBPClassifier, SBPRegressor])
def test_parameters_are_the_training_options(cls):
    """Every row of the options table but `layers` is a parameter (a new option is a new parameter),
    every `TrainConfig` field is covered, and the defaults are TrainConfig's with the real-data ones on top
    and λ chosen by the path (lam='auto')."""
    params = cls().get_params()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    options = {o.field for o in OPTIONS}
    assert options - {"layers"} <= set(params), sorted(options - {"layers"} - set(params))
    assert fields - {"layers"} <= set(params), sorted(fields - {"layers"} - set(params))
    assert set(params) == (fields - {"layers"}) | {"hidden_layer_sizes", "random_state", "n_seeds",
                                                   "validation_fraction", "path_params"}
    defaults = TrainConfig()
    for name in fields - {"layers", "loss", "lam"}:
        assert params[name] == TABULAR_DEFAULTS.get(name, getattr(defaults, name)), name
    assert params["loss"] == "auto" and params["lam"] == "auto" and params["hidden_layer_sizes"] == TABULAR_HIDDEN
    assert params["bias"] is True  # real data: bias edges on
    sig = inspect.signature(cls.__init__)
    assert list(sig.parameters)[1:] == list(PARAMS)
    assert all(name in cls.__doc__ for name in PARAMS)


def test_init_stores_arguments_untouched_and_rejects_unknown_names():
    est = SBPClassifier(lam=-1.0, hidden_layer_sizes=[4, 4])
    assert est.lam == -1.0 and est.hidden_layer_sizes == [4, 4]  # validated in fit, not here
    with pytest.raises(TypeError, match="foo"):
        SBPClassifier(foo=1)
    assert est.set_params(lam=0.5).get_params()["lam"] == 0.5


@pytest.mark.parametrize("params, message", [
    ({"lam": -1.0}, r"lam=-1.0 is invalid: allowed a finite number >= 0"),
    ({"lam": "big"}, r"lam='big' is invalid: allowed a finite number >= 0 or 'auto'"),
    ({"hidden_layer_sizes": (0,)}, r"hidden_layer_sizes=\(0,\) is invalid: allowed a sequence of integers >= 1"),
    ({"hidden_layer_sizes": "32"}, r"hidden_layer_sizes='32' is invalid"),
    ({"penalty": "l2"}, r"penalty='l2' is invalid: allowed one of 'subgradient'"),
    ({"loss": "mse"}, r"loss='mse' is invalid for 2 classes: allowed one of 'auto', 'bce', 'cross_entropy'"),
    ({"n_seeds": 0}, r"n_seeds=0 is invalid: allowed an integer >= 1"),
    ({"random_state": -1}, r"random_state=-1 is invalid: allowed an integer >= 0"),
    ({"n_seeds": 2, "validation_fraction": 1.5}, r"validation_fraction=1.5 is invalid: allowed a number in \(0, 1\)"),
    ({"layer_lams": (1.0,)}, r"layer_lams=\(1.0,\) is invalid: allowed None or one multiplier per layer \(2"),
])
def test_fit_names_the_parameter_the_value_and_what_is_allowed(binary, params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SBPClassifier(**(TINY | params)).fit(*binary)


def test_regressor_rejects_a_classification_loss():
    x, y = make_regression(n_samples=20, n_features=3, random_state=0)
    with pytest.raises(ValueError, match="loss='bce' is invalid for a regressor: allowed 'auto' or 'mse'"):
        SBPRegressor(loss="bce").fit(x, y)


def test_random_state_is_the_seed_of_one_train_call_on_standardised_inputs(binary):
    x, y = binary
    clf = SBPClassifier(**TINY | {"random_state": 3}).fit(x, y)
    xs = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    ref = train(clf.config_, xs, y.astype(np.float32)[:, None], jax.random.key(3))
    for a, b in zip(clf.edges_, ref.edges):
        np.testing.assert_array_equal(a, np.asarray(b))
    assert clf.seed_ == 3 and clf.config_.layers == (6, 8, 1) and clf.config_.loss == "bce"
    assert len(clf.loss_curve_) == TINY["epochs"]


def test_fitted_attributes_module_graph_and_selection_agree(binary):
    x, y = binary
    clf = SBPClassifier(**TINY | {"lam": 3e-2}).fit(x, y)
    eps = clf.config_.eps
    assert clf.n_active_edges_ == sum(int(np.sum(np.abs(w) >= eps)) for w in clf.edges_) < 6 * 8 + 8
    assert clf.n_features_in_ == 6 and clf.classes_.tolist() == [0, 1]
    support = clf.get_support()
    assert support.dtype == bool and support.shape == (6,) and support.any()
    assert clf.selected_features_ == [f"x{i}" for i in np.flatnonzero(support)]
    assert list(clf.get_feature_names_out()) == clf.selected_features_
    np.testing.assert_array_equal(clf.transform(x), x[:, support])
    # the equinox module: the learned (pruned) net on standardised inputs
    assert isinstance(clf.module_, eqx.Module)
    xs = ((x - clf.x_mean_) / clf.x_scale_).astype(np.float32)
    p = np.asarray(jax.vmap(clf.module_)(xs))[:, 0]
    np.testing.assert_allclose(p, clf.predict_proba(x)[:, 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(x), (clf.decision_function(x) > 0).astype(int))
    # the compact graph reproduces the pruned net exactly and reads only the selected inputs
    assert export.verify(clf.graph_, clf.edges_, eps, xs).max_abs_deviation < 1e-5
    assert clf.graph_.layers[0] == 6 and clf.graph_.layers[1] <= 8
    assert sum(int(np.count_nonzero(w)) for w in clf.graph_.edges) <= clf.n_active_edges_
    assert clf.structure_["active_edges"] == clf.n_active_edges_


def test_regressor_standardises_targets_and_maps_predictions_back():
    x, y = make_regression(n_samples=60, n_features=4, n_informative=3, noise=1.0, random_state=0)
    params = TINY | {"epochs": 200}
    a = SBPRegressor(**params).fit(x, y)
    b = SBPRegressor(**params).fit(x, 1000.0 * y + 5e4)  # the same standardised problem
    np.testing.assert_allclose(b.predict(x), 1000.0 * a.predict(x) + 5e4, rtol=1e-4)
    assert a.score(x, y) > 0.9 and a.predict(x).shape == (60,)
    two = SBPRegressor(**params).fit(x, np.stack([y, -2.0 * y], axis=1))  # multi-output: one net, two outputs
    assert two.predict(x).shape == (60, 2) and two.config_.layers == (4, 8, 2)


def test_several_seeds_keep_the_best_on_the_held_out_split(binary):
    x, y = binary
    clf = SBPClassifier(**TINY | {"n_seeds": 3, "random_state": 5}).fit(x, y)
    assert clf.seed_ in (5, 6, 7) and clf.path_ is None
    again = SBPClassifier(**TINY | {"n_seeds": 3, "random_state": 5}).fit(x, y)
    assert again.seed_ == clf.seed_
    for a, b in zip(clf.edges_, again.edges_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # compiles the path program (~15 s on 2 busy cores)
def test_lam_auto_runs_the_path_and_keeps_the_chosen_lambda(binary):
    pytest.importorskip("sbp_jax.path.auto")
    path = dict(n_steps=6, ratio=2.0, epochs_per_step=20, warmup=40)
    clf = SBPClassifier(**TINY | {"lam": "auto", "n_seeds": 2, "path_params": path}).fit(*binary)
    assert clf.path_ is not None and clf.lam_ == pytest.approx(clf.path_.lam) and clf.lam_ > 0
    assert clf.config_.lam == pytest.approx(clf.lam_) and clf.path_.choice.rule == "1se"


def test_pipeline_cross_val_score_grid_search_and_selection(binary):
    x, y = binary
    pipe = make_pipeline(StandardScaler(), SBPClassifier(**TINY))
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    grid = GridSearchCV(pipe, {"sbpclassifier__lam": [1e-4, 3e-2]}, cv=3).fit(x, y)
    assert grid.best_params_["sbpclassifier__lam"] in (1e-4, 3e-2)
    assert grid.best_estimator_[-1].n_active_edges_ > 0
    # like SelectFromModel: the learned input selection feeds another model
    sel = Pipeline([("sbp", SBPClassifier(**TINY | {"lam": 3e-2})), ("lr", LogisticRegression())]).fit(x, y)
    assert sel.named_steps["lr"].n_features_in_ == int(sel.named_steps["sbp"].get_support().sum())


def test_feature_names_from_a_dataframe(binary):
    pd = pytest.importorskip("pandas")
    x, y = binary
    frame = pd.DataFrame(x, columns=[f"col{i}" for i in range(6)])
    clf = SBPClassifier(**TINY).fit(frame, y)
    assert list(clf.feature_names_in_) == list(frame.columns)
    assert set(clf.selected_features_) <= set(frame.columns)


# ---- scikit-learn's conformance suite ------------------------------------------------------------

ESTIMATORS = [SBPClassifier(**TINY), SBPRegressor(**TINY)]
ALL_CHECKS = parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
# A representative subset for the default run, chosen so that it fits few data shapes (one compile
# each): every check that fits nothing (construction, parameters, tags, input validation and its error
# messages), fit / predict / pickle / transform round trips on sklearn's 30- and 20-sample sets, and
# the classifier and regressor training checks. The rest fit a dozen more shapes (-m slow).
_NO_FIT = {"check_estimator_cloneable", "check_estimator_tags_renamed", "check_valid_tag_types",
           "check_estimator_repr", "check_no_attributes_set_in_init", "check_estimators_unfitted",
           "check_do_not_raise_errors_in_init_or_set_params", "check_mixin_order", "check_complex_data",
           "check_estimators_empty_data_messages", "check_estimator_sparse_tag", "check_estimator_sparse_array",
           "check_estimator_sparse_matrix", "check_classifiers_one_label", "check_classifiers_regression_target",
           "check_supervised_y_no_nan", "check_parameters_default_constructible", "check_get_params_invariance",
           "check_set_params", "check_fit1d", "check_requires_y_none", "check_transformers_unfitted"}
_FITS = {"check_estimators_pickle", "check_pipeline_consistency", "check_transformer_general",
         "check_transformer_preserve_dtypes", "check_dict_unchanged", "check_methods_subset_invariance",
         "check_methods_sample_order_invariance", "check_fit2d_predict1d", "check_fit_idempotent",
         "check_decision_proba_consistency", "check_classifiers_train", "check_regressors_train",
         "check_regressor_data_not_an_array"}
FAST = _NO_FIT | _FITS


def _name(param) -> str:
    check = param.values[1] if hasattr(param, "values") else param[1]
    return getattr(check, "func", check).__name__


@pytest.mark.parametrize(*ALL_CHECKS.args[:1], [p for p in ALL_CHECKS.args[1] if _name(p) in FAST],
                         **ALL_CHECKS.kwargs)
def test_sklearn_conformance_subset(estimator, check):
    check(estimator)


@pytest.mark.slow
@ALL_CHECKS
def test_sklearn_conformance_full(estimator, check):
    check(estimator)
