"""The option table (`sbp_jax.options`): grid parsing and flag-named messages
(that every CLI takes every option: tests/test_cli.py)."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from sbp_jax import options
from sbp_jax.config import TrainConfig


@pytest.mark.parametrize("text, expected", [
    ("0,1e-4,1e-3,1e-2,3e-2,1e-1", [0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1]),
    (" 0.5 ", [0.5]),
    ("logspace:-4:-1:4", [1e-4, 1e-3, 1e-2, 1e-1]),
    ("logspace:-2:-2:1", [1e-2]),
    ("logspace:0:-1:2", [1.0, 0.1]),
])
def test_grid_values_parses_lists_and_logspace(text, expected):
    got = options.grid_values(text)
    assert len(got) == len(expected)
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, expected))


def test_logspace_13_contains_the_papers_lambda():
    got = options.grid_values("logspace:-4:-1:13")
    assert len(got) == 13 and math.isclose(got[0], 1e-4) and math.isclose(got[-1], 1e-1)
    assert math.isclose(got[8], 1e-2, rel_tol=1e-12)
    assert np.allclose(np.diff(np.log10(got)), 0.25)




@pytest.mark.parametrize("text", ["", "0,,1", "abc", "nan", "logspace:a:b:3", "logspace:-4:-1:0", "logspace:-4:-1",
                                  "logspace:-4:-1:2.5", "logspace:-4:-1:3:9"])
def test_bad_grids_are_argparse_errors_saying_what_is_allowed(text):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        options.grid_values(text)
    assert repr(text.strip()) in str(e.value)


@pytest.mark.parametrize("kw, flag", [({"lam": float("nan")}, "--lam=nan"), ({"hidden_activation": "gelu"}, "--activation='gelu'"),
                                      ({"layers": (2, 0, 1)}, "--layers[1]=0"), ({"bias_init": "x"}, "--bias-init='x'")])
def test_config_errors_are_rewritten_in_terms_of_the_flag(kw, flag):
    with pytest.raises((ValueError, TypeError)) as e:
        TrainConfig(**kw)
    assert options.flag_message(str(e.value)).startswith(flag + " is invalid: allowed")


def test_flag_message_leaves_other_messages_alone():
    assert options.flag_message("x_test.shape=(3,) is invalid") == "x_test.shape=(3,) is invalid"
    assert options.flag_message("lams[2]=-1.0 is invalid") == "--lams[2]=-1.0 is invalid"


def test_changes_holds_only_what_was_given():
    p = argparse.ArgumentParser()
    options.add_flags(p, TrainConfig())
    assert options.changes(p.parse_args([])) == {}
    assert options.changes(p.parse_args(["--lam", "0.1", "--no-bias"])) == {"lam": 0.1, "bias": False}
    assert TrainConfig().replace(**options.changes(p.parse_args(["--layers", "2,8,1", "--skip"]))).skip
