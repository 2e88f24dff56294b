"""The experiment CLIs: every option and data source on every CLI, the
results they write, and a one-line error (exit status 2, no traceback) for
every bad input in the table below."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import adam_promotion

from experiments import addition, sweep, tabular, topology, xor
from sbp_jax import options
from sbp_jax.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
CLIS = {"xor": xor, "addition": addition, "tabular": tabular, "sweep": sweep, "topology": topology}


def run_cli(*args, check=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


# ------------------------------------------------------------ every option, every source, every CLI
def _example(o: options.Option) -> tuple[list[str], object]:
    """A command-line value for option `o` and what it should parse to."""
    examples = {"layers": ("2,3,1", (2, 3, 1)), "layer_lams": ("1,0.5", (1.0, 0.5)), "target_active": ("0.3", 0.3),
                "hidden_activation": ("tanh", "tanh"), "loss": ("mse", "mse"), "init": ("uniform", "uniform"),
                "dtype": ("float32", "float32"), "penalty": ("proximal", "proximal"),
                "lam_schedule": ("warmup_ramp", "warmup_ramp"), "bias_init": ("same", "same")}
    if o.parse is None:
        return [o.flag], True
    text, value = examples.get(o.field, ("7", None))
    return [o.flag, text], value if value is not None else o.parse(text)


def test_every_config_field_has_an_option():
    import dataclasses

    assert [f.name for f in dataclasses.fields(TrainConfig)] == [o.field for o in options.OPTIONS]


@pytest.mark.parametrize("cli", sorted(CLIS))
@pytest.mark.parametrize("option", options.OPTIONS, ids=lambda o: o.field)
def test_every_cli_accepts_every_option(cli, option):
    argv, value = _example(option)
    args = CLIS[cli].parser().parse_args(argv)
    got = options.changes(args)[option.field]
    assert got == ([value] if cli == "sweep" and option.grid_flag else value)


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_every_cli_takes_every_data_source(cli, tmp_path):
    from experiments import _cli

    p = CLIS[cli].parser()
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    npz = tmp_path / "d.npz"
    np.savez(npz, x=np.arange(60.0).reshape(30, 2), y=np.arange(30) % 2)
    for argv, name in ((["--dataset", "wine"], "wine"), (["--dataset", "addition"], "addition"),
                       (["--csv", str(csv), "--target", "y"], "d.csv"), (["--npz", str(npz)], "d.npz")):
        src, ds, _ = _cli.load_data(p.parse_args(argv))
        assert ds.name == name


# ------------------------------------------------------------ results end to end
@pytest.fixture(scope="module")
def xor_runs(tmp_path_factory):
    """The same XOR command run twice (3 seeds, 30 epochs)."""
    outs = [tmp_path_factory.mktemp(f"xor{i}") for i in range(2)]
    for out in outs:
        run_cli("experiments.xor", "--epochs", "30", "--seeds", "3", "--out", str(out), "--no-plots")
    return outs


def test_xor_results_json_fields(xor_runs):
    r = json.loads((xor_runs[0] / "results.json").read_text())
    assert r["task"] == "xor"
    assert {"task", "config", "data", "grid", "records", "summary", "paper", "provenance", "timing"} <= set(r)
    assert [run["seed"] for run in r["records"]] == [0, 1, 2]
    for run in r["records"]:
        s = run["structure"]
        assert s["total_edges"] == 12
        assert sum(s["active_per_layer"]) == s["active_edges"] <= 12
        assert len(s["live_nodes"]) == 3 and s["compact_layers"] == s["live_nodes"]
        assert 0.0 <= run["metrics"]["train_accuracy"] <= 1.0
        assert set(run["selected_features"]) <= {"x0", "x1"}
    acc = [run["metrics"]["train_accuracy"] for run in r["records"]]
    (summ_group,) = r["summary"]  # a run over seeds is one (λ, lr, ε) group
    summ = summ_group["metrics"]["train_accuracy"]
    assert summ["mean"] == pytest.approx(np.mean(acc)) and summ["min"] == min(acc) and summ["max"] == max(acc)
    assert 0.0 <= summ["ci95"][0] <= summ["mean"] <= summ["ci95"][1] <= 1.0
    assert r["paper"]["accuracy"] == 0.745
    assert r["config"]["epochs"] == 30 and r["config"]["layers"] == [2, 4, 1]
    assert r["data"]["name"] == "xor" and r["data"]["n_train"] == 100
    assert r["provenance"]["versions"]["jax"]
    assert r["timing"]["compile_s"] > 0 and r["timing"]["run_s"] > 0 and r["timing"]["kernel"]
    assert not list(xor_runs[0].glob("*.png"))  # --no-plots


def test_same_command_twice_is_bitwise_identical(xor_runs):
    a, b = (json.loads((o / "results.json").read_text()) for o in xor_runs)
    assert a["records"] == b["records"] and a["summary"] == b["summary"]
    ea, eb = (np.load(o / "edges.npz") for o in xor_runs)
    assert sorted(ea.files) == sorted(eb.files) == ["eps", "lam", "layer0", "layer1", "lr", "seed"]
    for k in ea.files:
        assert ea[k].tobytes() == eb[k].tobytes()


def test_cli_matches_library_single_run(xor_runs):
    """The CLI's seed-1 record equals a direct `train` call (float32 rounding)."""
    import jax

    from sbp_jax import analyse, sources, tasks, train

    d = tasks.xor()
    cfg = sources.default_config("xor", d).replace(epochs=30)
    with adam_promotion():
        res = train(cfg, d.x_train, d.y_train, jax.random.key(1))
    e = np.load(xor_runs[0] / "edges.npz")
    np.testing.assert_allclose(e["layer0"][1], res.edges[0], atol=1e-6)
    np.testing.assert_allclose(e["layer1"][1], res.edges[1], atol=1e-6)
    r = json.loads((xor_runs[0] / "results.json").read_text())
    assert r["records"][1]["structure"]["active_per_layer"] == np.asarray(analyse(res.edges, cfg.eps).active_per_layer).tolist()


def test_addition_with_plots_and_a_validation_draw(tmp_path, capsys):
    with adam_promotion():
        r = addition.main(["--epochs", "40", "--seeds", "2", "--layers", "2,3,1", "--n-val", "50", "--out",
                           str(tmp_path)])
    assert r["task"] == "addition" and r["config"]["layers"] == [2, 3, 1]
    splits = ("train", "val", "test", "pruned_val", "pruned_test")
    assert set(r["records"][0]["metrics"]) == {f"{s}_{m}" for s in splits for m in ("mse", "mae", "r2")}
    assert r["records"][0]["structure"]["total_edges"] == 9
    for png in ("dynamics.png", "graph.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "paper" in out and "val_r2" in out


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_help_lists_every_option(cli, capsys):
    with pytest.raises(SystemExit) as e:
        CLIS[cli].main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for o in options.OPTIONS:
        assert o.flag in out, o.flag
    for flag in ("--dataset", "--csv", "--npz", "--seed", "--seeds", "--out", "--debug"):
        assert flag in out
    assert "issue" not in out.lower()


# ------------------------------------------------------------ real data: bundled, CSV, NPZ
def _tabular(tmp_path, capsys, *args):
    out = tmp_path / "out"
    with adam_promotion():
        res = tabular.main([*args, "--lam", "1e-3", "--epochs", "5", "--seeds", "2", "--hidden", "4", "--history-every", "0",
                            "--no-plots", "--out", str(out)])
    assert json.loads((out / "results.json").read_text())["records"] == json.loads(json.dumps(res["records"]))
    assert len(res["records"]) == 2 and res["provenance"]["argv"]
    for r in res["records"]:
        assert set(r["selected_features"]) <= set(res["data"]["feature_names"])
        n_in, n_out = res["config"]["layers"][0], res["config"]["layers"][-1]
        assert r["structure"]["total_edges"] == (n_in + 1) * 4 + (4 + 1) * n_out  # real data: bias edges on
    (group,) = res["summary"]
    return res, group["metrics"], capsys.readouterr().out


@pytest.mark.slow  # 16 s: CSV and NPZ sources stay in the default run
def test_cli_bundled_dataset(tmp_path, capsys):
    res, m, stdout = _tabular(tmp_path, capsys, "--dataset", "wine", "--batch-size", "32")
    for k in ("train_accuracy", "val_accuracy", "test_accuracy", "pruned_test_accuracy", "pruned_val_accuracy"):
        assert 0 <= m[k]["ci95"][0] <= m[k]["mean"] <= m[k]["ci95"][1] <= 1
    assert res["config"]["batch_size"] == 32 and res["config"]["layers"] == [13, 4, 3]
    assert "selected features" in stdout and "test_accuracy" in stdout


def test_cli_csv_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    lines = ["alpha,beta,gamma,price"] + [f"{a:.4f},{b:.4f},{c:.4f},{2 * a - b + 0.1 * c:.4f}" for a, b, c in x]
    (tmp_path / "houses.csv").write_text("\n".join(lines) + "\n")
    res, m, _ = _tabular(tmp_path, capsys, "--csv", str(tmp_path / "houses.csv"), "--target", "price")
    assert res["data"]["kind"] == "regression" and res["data"]["feature_names"] == ["alpha", "beta", "gamma"]
    assert {"test_r2", "val_r2", "train_mse"} <= set(m)
    assert m["train_mse"]["ci95"][0] >= 0  # a non-negative quantity keeps a non-negative interval


def test_cli_npz_binary(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 5))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(int))
    res, m, _ = _tabular(tmp_path, capsys, "--npz", str(tmp_path / "d.npz"))
    assert res["data"]["kind"] == "binary" and res["config"]["loss"] == "bce"
    assert "test_accuracy" in m


# ------------------------------------------------------------ options through the CLIs
@pytest.mark.slow  # 11 s: the options are covered per CLI by the option table tests
def test_skip_and_bias_nets_through_xor_topology_and_sweep(tmp_path):
    with adam_promotion():
        r = xor.main(["--skip", "--bias", "--epochs", "30", "--seeds", "2", "--out", str(tmp_path / "x")])
        t = topology.main(["--skip", "--penalty", "proximal", "--epochs", "30", "--seeds", "3", "--no-plots",
                           "--out", str(tmp_path / "t")])
        s = sweep.main(["--dataset", "xor", "--lams", "0.001,0.01", "--seeds", "2", "--epochs", "20", "--skip",
                        "--bias", "--no-progress", "--no-plots", "--out", str(tmp_path / "s")])
    assert r["config"]["skip"] and r["config"]["bias"]
    for run in r["records"]:
        st = run["structure"]
        assert st["total_edges"] == 4 * 3 + 1 * 7 and len(st["live_bias_nodes"]) == 2
    assert (tmp_path / "x" / "graph.png").stat().st_size > 0
    assert json.loads((tmp_path / "t" / "results.json").read_text())["export"] == json.loads(json.dumps(t["export"]))
    exp = t["export"]
    assert exp["verification"]["train"]["max_abs_deviation"] < 1e-5
    assert exp["verification"]["reloaded_train"]["max_abs_deviation"] < 1e-5
    topo = t["summary"][0]["topology"]
    assert exp["n_edges"] <= 14 and all(g.get("skip") for g in topo["top_graphs"])
    assert t["summary"][0]["n_runs"] == 3 and t["config"]["penalty"] == "proximal"
    th = t["threshold_sensitivity"]["at_training_eps"]
    assert th["active_edges"] == th["direct_count"]
    assert (tmp_path / "t" / "graph.json").exists() and (tmp_path / "t" / "graph.dot").exists()
    assert s["config"]["skip"] and len(s["records"]) == 4
    assert all(x["structure"]["total_edges"] == 19 and sum(x["structure"]["active_per_layer"]) ==
               x["structure"]["active_edges"] for x in s["records"])


def test_bias_dropout_retrain_rewind_end_to_end(tmp_path):
    with adam_promotion():
        r = xor.main(["--epochs", "40", "--seeds", "2", "--bias", "--dropout", "0.1", "--retrain", "20",
                      "--rewind", "--out", str(tmp_path), "--no-plots"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["bias"] is True and saved["config"]["dropout"] == 0.1
    for run in saved["records"]:
        assert {"retrained_test_accuracy", "rewound_test_accuracy", "retrained_train_accuracy"} <= set(run["metrics"])
        assert run["structure"]["total_edges"] == 17 and len(run["structure"]["live_bias_nodes"]) == 2
    assert "retrained_test_accuracy" in r["summary"][0]["metrics"]


# ------------------------------------------------------------ --lam auto: λ chosen on validation over a path
def test_lam_auto_recovers_the_planted_features_of_a_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = 1.5 * x[:, 0] - 2 * x[:, 1] + 0.1 * rng.normal(size=300)
    lines = ["p,q,c,d,e,y"] + [",".join(f"{v:.4f}" for v in r) + f",{t:.4f}" for r, t in zip(x, y)]
    (tmp_path / "planted.csv").write_text("\n".join(lines) + "\n")
    with adam_promotion():  # --lam auto is the tabular default
        doc = tabular.main(["--csv", str(tmp_path / "planted.csv"), "--target", "y", "--seeds", "3",
                            "--path-steps", "40", "--path-ratio", "1.2", "--path-epochs", "40", "--out",
                            str(tmp_path / "o")])
    info = doc["path"]
    assert info["rule"] == "1se" and doc["config"]["lam"] == info["lam"] > 0
    assert [r["lam"] for r in doc["records"]] == [np.float32(info["lam"]).item()] * 3
    assert [set(r["selected_features"]) for r in doc["records"]] == [{"p", "q"}] * 3
    assert doc["summary"][0]["metrics"]["test_r2"]["mean"] > 0.99
    assert [r["feature"] for r in info["importances"][:2]] == ["p", "q"] or \
        [r["feature"] for r in info["importances"][:2]] == ["q", "p"]
    assert len(info["steps"]) >= 2 and {"lam", "active_edges_mean", "val_r2_mean"} <= set(info["steps"][0])
    for f in ("path.png", "path.npz", "results.json", "edges.npz"):
        assert (tmp_path / "o" / f).exists(), f
    assert "λ auto (1se" in capsys.readouterr().out


# ------------------------------------------------------------ --path: the sparsest net meeting a condition
SMALL_PATH = ["--path-steps", "30", "--path-ratio", "1.3", "--path-epochs", "30", "--path-warmup", "60",
              "--path-retrain", "30", "--path-candidates", "4", "--no-plots"]


def test_path_on_xor_with_bias_reports_the_minimal_graph_rate(tmp_path, capsys):
    with adam_promotion():
        doc = xor.main(["--bias", "--path", "--seeds", "2", "--restarts", "2", *SMALL_PATH, "--out", str(tmp_path)])
    info = doc["search"]
    assert info["trials"] == 2 and info["restarts"] == 2 and info["condition"] == "train accuracy >= 1"
    assert doc["config"]["lr"] == 1e-2 and doc["config"]["bias"] is True  # the path's lr unless --lr
    recs = doc["records"]
    assert len(recs) == 2 and recs[0]["seed"] in (0, 1) and recs[1]["seed"] in (2, 3)  # one run of each trial's pair
    met = [r["metrics"]["train_accuracy"] == 1.0 for r in recs]  # judged again by the results layer
    assert info["condition_met"]["k"] == sum(met) and info["condition_met"]["n"] == 2
    eff = [r["structure"]["effective_edges"] for r in recs]
    counts = {}
    for e, m in zip(eff, met):
        counts[e] = counts.get(e, 0) + m
    assert info["effective_edges_counts"] == {e: c for e, c in sorted(counts.items()) if c}
    m = info["minimal"]
    assert m["edges"] == 7 and m["found"]["k"] == sum(e == 7 and ok for e, ok in zip(eff, met))
    assert m["per_path"]["n"] == 4 and m["near"]["k"] >= m["found"]["k"]
    assert len(doc["summary"]) == 1 and doc["summary"][0]["n_runs"] == 2
    assert json.loads((tmp_path / "results.json").read_text())["search"]["minimal"] == m
    out = capsys.readouterr().out
    assert "minimal graph (7 effective edges" in out and "condition met: " in out


@pytest.mark.slow  # 20 s; siblings in the default run: the XOR --path CLI test above, tests/test_path_search.py
def test_path_on_a_csv_takes_a_condition_and_reports_no_minimum(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    y = 2 * x[:, 0] + 0.05 * rng.normal(size=120)
    lines = ["a,b,c,y"] + [",".join(f"{v:.4f}" for v in r) + f",{t:.4f}" for r, t in zip(x, y)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    with adam_promotion():
        doc = topology.main(["--csv", str(tmp_path / "d.csv"), "--target", "y", "--hidden", "4", "--path",
                             "--condition", "r2>=0.95", "--seeds", "2", *SMALL_PATH, "--out", str(tmp_path / "o")])
    assert "minimal" not in doc["search"] and doc["search"]["condition"] == "train r2 >= 0.95"
    assert doc["search"]["condition_met"]["k"] == sum(r["metrics"]["train_r2"] >= 0.95 for r in doc["records"])
    assert all(r["selected_features"] == ["a"] for r in doc["records"] if r["metrics"]["train_r2"] >= 0.95)
    saved = json.loads((tmp_path / "o" / "results.json").read_text())  # topology's sections, written once
    assert {"search", "export", "threshold_sensitivity"} <= set(saved) and "topology" in saved["summary"][0]
    assert [r["graph"] for r in saved["records"]] == [r["graph"] for r in doc["records"]]


# ------------------------------------------------------------ bad inputs: one line, exit 2
BAD = [
    ("xor", ["--lam", "nan"], "--lam=nan is invalid"),
    ("xor", ["--lr", "0"], "--lr=0.0 is invalid"),
    ("xor", ["--epochs", "0"], "--epochs=0 is invalid"),
    ("xor", ["--layers", "3,4,1"], "--layers=3,4,1 is invalid"),
    ("xor", ["--layers", "2,0,1"], "--layers[1]=0 is invalid"),
    ("xor", ["--layers", "2,x"], "argument --layers: '2,x' is not"),
    ("xor", ["--seeds", "0"], "--seeds='0' is invalid"),
    ("xor", ["--activation", "gelu"], "--activation='gelu' is invalid"),
    ("xor", ["--init", "orthogonal"], "--init='orthogonal' is invalid"),
    ("xor", ["--dropout", "1"], "--dropout=1.0 is invalid"),
    ("xor", ["--penalty", "l2"], "--penalty='l2' is invalid"),
    ("xor", ["--retrain", "0", "--rewind"], "--rewind needs --retrain"),
    ("xor", ["--layer-lams", "1,2,3"], "--layer-lams=(1.0, 2.0, 3.0) is invalid"),
    ("xor", ["--target-active", "2"], "--target-active=2.0 is invalid"),
    ("xor", ["--history-every", "5000"], "--history-every=5000 is invalid"),
    ("xor", ["--lam-warmup", "5"], "--lam-schedule='constant' is invalid"),
    ("xor", ["--skip", "--layers", "2,1"], "--skip=True is invalid"),
    ("xor", ["--batch-size", "-1"], "--batch-size=-1 is invalid"),
    ("xor", ["--loss", "cross_entropy"], "--layers[-1]=1 is invalid"),
    ("xor", ["--copies", "0"], "--copies=0 is invalid"),
    ("addition", ["--n-train", "0"], "--n-train=0 is invalid"),
    ("addition", ["--copies", "3"], "--copies=3 is invalid for dataset 'addition'"),
    ("tabular", [], "no data: allowed --dataset"),
    ("tabular", ["--csv", "missing.csv", "--target", "y"], "no such file"),
    ("tabular", ["--csv", "d.csv"], "--csv needs --target"),
    ("tabular", ["--dataset", "imagenet"], "--dataset='imagenet' is invalid"),
    ("tabular", ["--dataset", "wine", "--val-frac", "1.5"], "--val-frac=1.5 is invalid"),
    ("tabular", ["--csv", "d.csv", "--target", "y", "--task-kind", "ranking"], "--task-kind='ranking' is invalid"),
    ("tabular", ["--dataset", "wine", "--target", "y"], "--target='y' is invalid without --csv"),
    ("tabular", ["--csv", "d.csv", "--target", "nope"], "no column 'nope'"),
    ("tabular", ["--dataset", "wine", "--layers", "13,4,1"], "--layers=13,4,1 is invalid for wine"),
    ("sweep", ["--lams", "0,,1"], "argument --lams/--lam: '0,,1' has an empty entry"),
    ("sweep", ["--lams", "logspace:-4:-1"], "is not logspace:START:STOP:NUM"),
    ("sweep", ["--lams=-1"], "--lam=-1.0 is invalid"),
    ("sweep", ["--lams", "0,1,-1"], "--lams[2]=-1.0 is invalid"),
    ("sweep", ["--lrs", "0"], "--lr=0.0 is invalid"),
    ("sweep", ["--chunk", "0"], "--chunk='0' is invalid"),
    ("sweep", ["--csv", "d.csv", "--npz", "d.npz"], "--csv and --npz are given"),
    ("topology", ["--top", "0"], "--top='0' is invalid"),
    ("tabular", ["--dataset", "wine", "--path-ratio", "0.5"], "--path-ratio=0.5 is invalid"),
    ("xor", ["--lam", "auto"], "invalid for λ auto: allowed a data set with a validation split"),
    ("xor", ["--lam", "often"], "argument --lam: 'often' is not a number"),
    ("topology", ["--out", "/proc/no/such/dir"], "--out='/proc/no/such/dir' is invalid"),
    ("xor", ["--path", "--lam", "0.1"], "--lam=0.1 is invalid with --path"),
    ("xor", ["--path", "--condition", "r2>=0.9"], "--condition='train r2 >= 0.9' is invalid for loss 'bce'"),
    ("xor", ["--path", "--condition", "accuracy<=1"], "--condition='accuracy<=1' is invalid"),
    ("xor", ["--path", "--condition", "accuracy>=1@val"], "the data has no 'val' samples"),
    ("tabular", ["--dataset", "wine", "--path"], "--condition is required with --path on wine"),
    ("topology", ["--path", "--restarts", "0"], "--restarts='0' is invalid"),
    ("addition", ["--path", "--lam-schedule", "warmup_ramp"], "--lam-schedule='warmup_ramp' is invalid for a path"),
]


@pytest.mark.parametrize("cli, argv, needle", BAD, ids=[f"{c}:{' '.join(a)}" for c, a, _ in BAD])
def test_bad_input_is_one_error_line_with_exit_2(cli, argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    out = tmp_path / "out"
    extra = [] if "--out" in argv else ["--out", str(out)]
    if cli == "sweep" and not {"--csv", "--npz", "--dataset"} & set(argv):
        extra += ["--dataset", "xor"]
    with pytest.raises(SystemExit) as e:
        CLIS[cli].main(["--epochs", "5", "--no-plots", *extra, *argv] if "--epochs" not in argv
                       else ["--no-plots", *extra, *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and needle in lines[0], err
    assert not (out / "results.json").exists()


def test_debug_shows_the_traceback():
    proc = run_cli("experiments.xor", "--lam", "nan", "--debug", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "lam=nan is invalid" in proc.stderr
