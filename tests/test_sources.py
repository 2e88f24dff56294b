"""The data-source registry (`sbp_jax.sources`)."""

from __future__ import annotations

import numpy as np
import pytest

from sbp_jax import sources, tasks
from sbp_jax.datasets import Dataset


@pytest.mark.parametrize("name", ["xor", "addition", "wine", "planted"])
def test_every_named_source_loads_a_dataset_its_default_config_fits(name):
    ds = sources.load_source(name)
    assert isinstance(ds, Dataset)
    cfg = sources.default_config(name, ds)
    assert cfg.layers[0] == ds.n_in and cfg.layers[-1] == ds.n_out and cfg.loss == ds.loss
    assert cfg.layers[1:-1] == sources.SOURCES[name].hidden


def test_paper_sources_are_the_tasks_and_carry_the_papers_numbers():
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(sources.load_source("xor", data_seed=3), k), getattr(tasks.xor(3), k))
    assert sources.SOURCES["xor"].paper["accuracy"] == 0.745 and sources.SOURCES["addition"].paper["r2"] == 0.796
    assert sources.default_config("addition", tasks.addition()).epochs == 2000


def test_csv_source_goes_through_the_file_loader(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    ds = sources.load_source("csv", path=p, target="y", val_frac=0.2, test_frac=0.2)
    assert ds.feature_names == ("a", "b") and ds.kind == "binary"


@pytest.mark.parametrize("name, params, needle", [
    ("imagenet", {}, "dataset='imagenet' is invalid"),
    ("xor", {"val_frac": 0.3}, "val_frac=0.3 is invalid for dataset 'xor'"),
    ("digits", {"copies": 3}, "copies=3 is invalid for dataset 'digits'"),
])
def test_bad_source_or_parameter_names_it_and_the_allowed_values(name, params, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")) as e:
        sources.load_source(name, **params)
    assert "allowed" in str(e.value)


def test_none_parameters_mean_the_sources_default():
    a, b = sources.load_source("wine", val_frac=None), sources.load_source("wine")
    np.testing.assert_array_equal(a.x_val, b.x_val)
