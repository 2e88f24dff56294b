"""The experiment CLIs end to end, in subprocesses, on tiny epoch counts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, check=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def xor_runs(tmp_path_factory):
    """The same XOR command run twice (3 seeds, 30 epochs), plus one with plots."""
    outs = [tmp_path_factory.mktemp(f"xor{i}") for i in range(2)]
    for out in outs:
        run_cli("experiments.xor", "--epochs", "30", "--seeds", "3", "--out", str(out), "--no-plots")
    return outs


def test_xor_results_json_fields(xor_runs):
    r = json.loads((xor_runs[0] / "results.json").read_text())
    assert r["task"] == "xor"
    assert {"task", "config", "runs", "summary", "paper", "provenance", "timing"} <= set(r)
    assert [run["seed"] for run in r["runs"]] == [0, 1, 2]
    for run in r["runs"]:
        s = run["structure"]
        assert s["total_edges"] == 12
        assert sum(s["active_per_layer"]) == s["active_edges"] <= 12
        assert len(s["live_nodes"]) == 3 and s["compact_layers"] == s["live_nodes"]
        assert 0.0 <= run["metrics"]["train_accuracy"] <= 1.0
    acc = [run["metrics"]["train_accuracy"] for run in r["runs"]]
    summ = r["summary"]["train_accuracy"]
    assert summ["mean"] == pytest.approx(np.mean(acc)) and summ["min"] == min(acc) and summ["max"] == max(acc)
    assert summ["ci95"][0] <= summ["mean"] <= summ["ci95"][1]
    assert r["paper"]["accuracy"] == 0.745
    assert r["config"]["epochs"] == 30 and r["config"]["layers"] == [2, 4, 1]
    assert r["provenance"]["versions"]["jax"]
    assert r["timing"]["compile_s"] > 0 and r["timing"]["run_s"] > 0
    assert not list(xor_runs[0].glob("*.png"))  # --no-plots


def test_same_command_twice_is_bitwise_identical(xor_runs):
    a, b = (json.loads((o / "results.json").read_text()) for o in xor_runs)
    assert a["runs"] == b["runs"] and a["summary"] == b["summary"]
    ea, eb = (np.load(o / "edges.npz") for o in xor_runs)
    assert sorted(ea.files) == sorted(eb.files) == ["layer0", "layer1", "seeds"]
    for k in ea.files:
        assert ea[k].tobytes() == eb[k].tobytes()


def test_cli_matches_library_single_run(xor_runs):
    """The CLI's seed-1 record equals a direct `train` call (float32 rounding)."""
    import jax

    from experiments.xor import DEFAULTS
    from sbp_jax import analyse, tasks, train

    from conftest import adam_promotion

    d = tasks.xor()
    cfg = DEFAULTS.replace(epochs=30)
    with adam_promotion():
        res = train(cfg, d.x_train, d.y_train, jax.random.key(1))
    e = np.load(xor_runs[0] / "edges.npz")
    np.testing.assert_allclose(e["layer0"][1], res.edges[0], atol=1e-6)
    np.testing.assert_allclose(e["layer1"][1], res.edges[1], atol=1e-6)
    r = json.loads((xor_runs[0] / "results.json").read_text())
    assert r["runs"][1]["structure"]["active_per_layer"] == np.asarray(analyse(res.edges, cfg.eps).active_per_layer).tolist()


def test_addition_with_plots(tmp_path):
    proc = run_cli("experiments.addition", "--epochs", "40", "--seeds", "2", "--layers", "2,3,1", "--out", str(tmp_path))
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["task"] == "addition" and r["config"]["layers"] == [2, 3, 1]
    assert set(r["runs"][0]["metrics"]) == {f"{s}_{m}" for s in ("train", "test", "pruned_test") for m in ("mse", "mae", "r2")}
    assert r["runs"][0]["structure"]["total_edges"] == 9
    for png in ("dynamics.png", "graph.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "paper" in proc.stdout and "r2" in proc.stdout


@pytest.mark.parametrize("module", ["experiments.xor", "experiments.addition"])
def test_help(module):
    out = run_cli(module, "--help").stdout
    for flag in ("--layers", "--epochs", "--lr", "--lam", "--eps", "--seed", "--seeds", "--out", "--no-plots"):
        assert flag in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--lam", "-1"], "lam=-1.0"),
        (["--lr", "nan"], "lr=nan"),
        (["--layers", "2,0,1"], "layers[1]=0"),
        (["--layers", "3,4,1"], "(n_samples, 3)"),
        (["--activation", "gelu"], "'relu'"),
        (["--seeds", "0"], "--seeds=0"),
        (["--layers", "2,x"], "--layers"),
    ],
)
def test_bad_flags_fail_with_clear_message(args, needle, tmp_path):
    proc = run_cli("experiments.xor", "--epochs", "5", "--out", str(tmp_path), *args, check=False)
    assert proc.returncode != 0
    assert needle in proc.stderr
    assert not (tmp_path / "results.json").exists()
