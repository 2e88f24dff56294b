"""TrainConfig: defaults, derived values, and validation messages that teach."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sbp_jax import TrainConfig
from sbp_jax.config import DTYPES, HIDDEN_ACTIVATIONS, INITS, LOSSES
from sbp_jax.kernels import select


def test_paper_defaults():
    c = TrainConfig()
    assert (c.lam, c.lr, c.eps) == (1e-2, 1e-3, 1e-2)
    assert c.epochs == 1000
    assert c.output_activation == "sigmoid"


def test_derived_values():
    c = TrainConfig(layers=[3, 4, 2], loss="mse", epochs=10, history_every=3)
    assert c.layers == (3, 4, 2)  # a list is stored as a tuple (hashable)
    assert c.total_edges == 3 * 4 + 4 * 2
    assert c.n_records == 3  # floor(10 / 3)
    assert c.replace(history_every=0).n_records == 0
    assert c.output_activation == "identity"
    assert TrainConfig(layers=(2, 3), loss="cross_entropy").output_activation == "softmax"
    d = c.to_dict()
    assert d["layers"] == [3, 4, 2] and d["output_activation"] == "identity" and d["lam"] == c.lam


def test_frozen_and_hashable():
    c = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lam = 0.5
    assert hash(c) == hash(TrainConfig())


def test_static_part_ignores_traced_hyperparameters():
    a = TrainConfig(lam=0.1, lr=0.2, eps=0.3)
    b = TrainConfig(lam=0.0, lr=1e-4, eps=0.0)
    assert a.static_part() == b.static_part()
    assert hash(a.static_part()) == hash(b.static_part())
    assert a.static_part() != a.replace(epochs=7).static_part()
    assert a.static_part() != a.replace(hidden_activation="tanh").static_part()


def test_ints_are_stored_as_floats():
    c = TrainConfig(lam=0, lr=1, eps=0)
    assert type(c.lam) is float and type(c.lr) is float and type(c.eps) is float


def _msg_has(exc_info, *parts):
    msg = str(exc_info.value)
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


@pytest.mark.parametrize("name", ["lam", "eps"])
@pytest.mark.parametrize("value,shown", [(-1e-3, "-0.001"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_bad_nonneg_hyperparameter(name, value, shown):
    with pytest.raises(ValueError) as e:
        TrainConfig(**{name: value})
    _msg_has(e, f"{name}=", shown, "allowed", "finite", ">= 0")


@pytest.mark.parametrize("value,shown", [(0, "0"), (0.0, "0.0"), (-1.0, "-1.0"), (math.nan, "nan"), (math.inf, "inf")])
def test_bad_lr(value, shown):
    with pytest.raises(ValueError) as e:
        TrainConfig(lr=value)
    _msg_has(e, "lr=", shown, "allowed", "> 0")


@pytest.mark.parametrize("name", ["lam", "lr", "eps"])
@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_non_number_hyperparameter(name, value):
    with pytest.raises(TypeError) as e:
        TrainConfig(**{name: value})
    _msg_has(e, f"{name}={value!r}", "allowed", "number")


@pytest.mark.parametrize("value,exc", [(0, ValueError), (-5, ValueError), (1.5, TypeError), (10.0, TypeError), (True, TypeError), ("10", TypeError)])
def test_bad_epochs(value, exc):
    with pytest.raises(exc) as e:
        TrainConfig(epochs=value)
    _msg_has(e, f"epochs={value!r}", "allowed", "integer >= 1")


@pytest.mark.parametrize("value,exc", [(-1, ValueError), (2.0, TypeError)])
def test_bad_history_every(value, exc):
    with pytest.raises(exc) as e:
        TrainConfig(history_every=value)
    _msg_has(e, f"history_every={value!r}", "integer >= 0")


@pytest.mark.parametrize("layers", [(), (3,), [5]])
def test_fewer_than_two_layers(layers):
    with pytest.raises(ValueError) as e:
        TrainConfig(layers=layers)
    _msg_has(e, "layers=", repr(tuple(layers)), ">= 2 positive integers")


@pytest.mark.parametrize("layers,bad", [((2, 0, 1), "layers[1]=0"), ((0, 3, 1), "layers[0]=0"), ((2, 3, -1), "layers[2]=-1")])
def test_zero_or_negative_width(layers, bad):
    with pytest.raises(ValueError) as e:
        TrainConfig(layers=layers)
    _msg_has(e, bad, "integer >= 1")


@pytest.mark.parametrize("layers,bad", [((2, 3.0, 1), "layers[1]=3.0"), ("231", "layers='231'"), (3, "layers=3")])
def test_non_integer_layers(layers, bad):
    with pytest.raises(TypeError) as e:
        TrainConfig(layers=layers)
    _msg_has(e, bad, "allowed")


def test_cross_entropy_needs_two_outputs():
    with pytest.raises(ValueError) as e:
        TrainConfig(layers=(2, 3, 1), loss="cross_entropy")
    _msg_has(e, "layers[-1]=1", ">= 2", "cross_entropy")


@pytest.mark.parametrize(
    "field,bad,allowed",
    [
        ("hidden_activation", "gelu", HIDDEN_ACTIVATIONS),
        ("hidden_activation", "ReLU", HIDDEN_ACTIVATIONS),
        ("loss", "hinge", LOSSES),
        ("init", "xavier", INITS),
        ("dtype", "float64", DTYPES),
    ],
)
def test_unknown_names_list_allowed_values(field, bad, allowed):
    with pytest.raises(ValueError) as e:
        TrainConfig(**{field: bad})
    _msg_has(e, f"{field}={bad!r}", *(repr(a) for a in allowed))


def test_replace_validates():
    c = TrainConfig()
    with pytest.raises(ValueError, match="lam="):
        c.replace(lam=-1.0)
    assert c.replace(lam=0.5).lam == 0.5 and c.lam == 1e-2


def test_numpy_scalars_are_accepted_and_normalised():
    """NumPy integers and floats (what a user's arrays give) are valid values,
    stored as Python int / float so configs compare and hash as usual."""
    import numpy as np

    from sbp_jax import make_grid

    cfg = TrainConfig(layers=tuple(np.array([2, 4, 1])), epochs=np.int64(10), lam=np.float32(0.5), lr=np.float64(1e-3))
    assert cfg == TrainConfig(layers=(2, 4, 1), epochs=10, lam=0.5, lr=1e-3)
    assert all(type(n) is int for n in cfg.layers) and type(cfg.epochs) is int and type(cfg.lam) is float
    grid = make_grid(cfg, lams=np.array([0.0, 1e-2], np.float32), seeds=np.arange(3))
    assert len(grid) == 6 and grid.seed.tolist() == [0, 1, 2, 0, 1, 2]
    with pytest.raises(TypeError, match="epochs=np.True_"):
        TrainConfig(epochs=np.True_)


# ---- penalty options, bias edges, structural dropout, skip connections ----------------------


@pytest.mark.parametrize("kw, match", [
    (dict(penalty="lasso"), "penalty='lasso'.*subgradient"),
    (dict(layer_lams=(1.0,)), "layer_lams"),
    (dict(layer_lams=(1.0, -1.0)), r"layer_lams\[1\]"),
    (dict(layer_lams=(1.0, float("nan"))), r"layer_lams\[1\]"),
    (dict(lam_schedule="cosine"), "lam_schedule='cosine'.*warmup_ramp"),
    (dict(lam_schedule="warmup_ramp", lam_warmup=-1), "lam_warmup"),
    (dict(lam_ramp=5), "lam_schedule"),
    (dict(target_active=0.0), "target_active"),
    (dict(target_active=1.5), "target_active"),
    (dict(target_gain=0.0), "target_gain"),
])
def test_bad_penalty_options_raise_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_bad_penalty_option_types_raise():
    with pytest.raises(TypeError, match="layer_lams"):
        TrainConfig(layer_lams="1,2")
    with pytest.raises(TypeError, match="lam_warmup"):
        TrainConfig(lam_schedule="warmup_ramp", lam_warmup=1.5)


@pytest.mark.parametrize("kw, needle", [
    (dict(bias=1), "bias=1 is invalid: allowed True or False"),
    (dict(bias_init="ones"), "bias_init='ones' is invalid: allowed one of 'same', 'zeros'"),
    (dict(dropout=1.0), "dropout=1.0 is invalid: allowed a probability in [0, 1)"),
    (dict(dropout=-0.1), "dropout=-0.1 is invalid"),
    (dict(dropout=float("nan")), "dropout=nan is invalid"),
])
def test_config_rejects_bad_bias_and_dropout(kw, needle):
    with pytest.raises((ValueError, TypeError), match=needle.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**kw)


def test_total_edges_counts_bias_edges():
    assert TrainConfig(layers=(2, 4, 1)).total_edges == 12
    assert TrainConfig(layers=(2, 4, 1), bias=True).total_edges == 17


def test_config_validates_skip():
    with pytest.raises(TypeError, match="skip=1 is invalid"):
        TrainConfig(skip=1)
    with pytest.raises(ValueError, match=r"skip=True is invalid.*hidden layer"):
        TrainConfig(layers=(2, 1), skip=True)
    cfg = TrainConfig(skip=True)
    assert cfg.total_edges == 4 * 2 + 1 * 6
    assert select(cfg.static_part(), single=True) == ("two_layer", "not single: skip=True: the single-run kernel runs the paper's plain setting")
