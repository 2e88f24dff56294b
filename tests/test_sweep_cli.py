"""`python -m experiments.sweep`: grid parsing, argument errors, results.json
and plots end to end, and a killed-then-resumed sweep."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import adam_promotion
from experiments import sweep as cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, expected", [
    ("0,1e-4,1e-3,1e-2,3e-2,1e-1", [0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1]),
    (" 0.5 ", [0.5]),
    ("logspace:-4:-1:4", [1e-4, 1e-3, 1e-2, 1e-1]),
    ("logspace:-2:-2:1", [1e-2]),
    ("logspace:0:-1:2", [1.0, 0.1]),
])
def test_grid_values_parses_lists_and_logspace(text, expected):
    got = cli.grid_values(text, "--lams")
    assert len(got) == len(expected)
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, expected))


def test_logspace_13_contains_the_papers_lambda():
    got = cli.grid_values("logspace:-4:-1:13", "--lams")
    assert len(got) == 13 and math.isclose(got[0], 1e-4) and math.isclose(got[-1], 1e-1)
    assert math.isclose(got[8], 1e-2, rel_tol=1e-12)
    assert np.allclose(np.diff(np.log10(got)), 0.25)


@pytest.mark.parametrize("argv, flag, value", [
    (["--lams", ""], "--lams", "''"),
    (["--lams", "0,,1e-2"], "--lams", "'0,,1e-2'"),
    (["--lams=-1e-3"], "--lams", "'-1e-3'"),
    (["--lams", "0,1e-2,-1"], "--lams", "'0,1e-2,-1'"),
    (["--lams", "nan"], "--lams", "'nan'"),
    (["--lams", "abc"], "--lams", "'abc'"),
    (["--lams", "logspace:a:b:3"], "--lams", "'logspace:a:b:3'"),
    (["--lams", "logspace:-4:-1:0"], "--lams", "'logspace:-4:-1:0'"),
    (["--lams", "logspace:-4:-1"], "--lams", "'logspace:-4:-1'"),
    (["--lams", "logspace:-4:-1:2.5"], "--lams", "'logspace:-4:-1:2.5'"),
    (["--lrs", "0"], "--lrs", "'0'"),
    (["--lrs", ""], "--lrs", "''"),
    (["--epss=-0.1"], "--epss", "'-0.1'"),
    (["--seeds", "0"], "--seeds", "'0'"),
    (["--chunk", "0"], "--chunk", "'0'"),
    (["--epochs", "x"], "--epochs", "'x'"),
])
def test_bad_grid_arguments_are_clear_argparse_errors(argv, flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--task", "xor", "--no-progress", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag}={value} is invalid" in err, err
    assert "allowed" in err
    if flag in ("--lams", "--lrs", "--epss"):
        assert "logspace:START:STOP:NUM" in err


def test_unknown_task_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--task", "mnist"])
    assert "--task" in capsys.readouterr().err


def test_summary_excludes_and_counts_diverged_runs():
    rec = lambda lam, seed, acc, edges, div: {
        "lam": lam, "lr": 1e-3, "eps": 1e-2, "seed": seed, "metrics": {"test_accuracy": acc},
        "active_edges": edges, "compact_layers": [2, 2, 1], "diverged": div,
        "diverged_at_epoch": 3 if div else None}
    records = [rec(0.0, 0, 1.0, 12, False), rec(0.0, 1, 0.5, 10, False), rec(0.0, 2, float("nan"), 0, True),
               rec(0.1, 0, 0.75, 6, False)]
    s = cli.summarise(records)
    assert [g["lam"] for g in s] == [0.0, 0.1]
    assert s[0]["n_runs"] == 3 and s[0]["n_diverged"] == 1
    assert s[0]["metrics"]["test_accuracy"]["mean"] == 0.75 and s[0]["metrics"]["test_accuracy"]["n"] == 2
    assert s[0]["active_edges"]["mean"] == 11.0
    assert s[0]["compact_layers_counts"] == [{"layers": [2, 2, 1], "count": 2}]
    assert s[1]["n_diverged"] == 0 and s[1]["active_edges"]["ci95"] == [6.0, 6.0]


def _png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_end_to_end_writes_results_and_plots(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["--task", "xor", "--lams", "0,1e-2,1e-1", "--seeds", "3", "--lrs", "5e-2", "--epochs", "40",
            "--chunk", "2", "--out", str(out), "--no-progress"]
    with adam_promotion():
        res = cli.main(argv)
    r = json.loads((out / "results.json").read_text())
    assert res is not None and r["records"] == json.loads(json.dumps(res["records"]))
    assert set(r) >= {"task", "config", "records", "summary", "provenance", "timing"}
    assert r["task"] == "xor" and r["config"]["epochs"] == 40 and r["config"]["history_every"] == 40
    assert len(r["records"]) == 9
    assert [(x["lam"], x["seed"]) for x in r["records"]] == [(l, s) for l in (0.0, np.float32(1e-2).item(),
                                                                             np.float32(1e-1).item()) for s in range(3)]
    for x in r["records"]:
        assert set(x) >= {"lam", "lr", "eps", "seed", "metrics", "active_edges", "total_edges", "diverged",
                          "diverged_at_epoch", "compact_layers", "final_task_loss"}
        assert set(x["metrics"]) == {"train_accuracy", "test_accuracy", "pruned_test_accuracy"}
        assert x["total_edges"] == 12 and 0 <= x["active_edges"] <= 12 and x["diverged"] is False
    assert len(r["summary"]) == 3
    for s in r["summary"]:
        assert s["n_runs"] == 3 and s["n_diverged"] == 0
        d = s["metrics"]["test_accuracy"]
        assert d["ci95"][0] <= d["mean"] <= d["ci95"][1]
        assert s["active_edges"]["n"] == 3
    t = r["timing"]
    assert t["n_configs"] == 9 and t["devices"] == 2 and t["chunks"] == 3 and t["compile_s"] >= 0
    assert t["config_epochs_per_s"] > 0 and t["run_s"] > 0
    assert r["provenance"]["argv"] == argv
    for name in ("sweep_lambda.png", "sweep_pareto.png", "sweep_architectures.png"):
        assert _png(out / name), name
    printed = capsys.readouterr().out
    assert "config-epochs/s" in printed and "wrote" in printed

    # --resume with another grid is refused, naming what changed.
    with pytest.raises(SystemExit) as e, adam_promotion():
        cli.main([*argv[:2], "--lams", "0,1e-2", *argv[4:], "--resume"])
    assert e.value.code == 2
    assert "--resume refused" in capsys.readouterr().err


def _env() -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def test_killed_then_resumed_sweep_equals_uninterrupted(tmp_path):
    # 96 configs in 6 chunks of 16; each chunk takes long enough to kill the run between chunks.
    base = [sys.executable, "-m", "experiments.sweep", "--task", "xor", "--lams", "0,1e-2,1e-1", "--seeds", "32",
            "--epochs", "3000", "--chunk", "16", "--no-plots", "--no-progress"]
    full = subprocess.run(base + ["--out", str(tmp_path / "full")], env=_env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    out = tmp_path / "killed"
    chunks = out / "chunks"
    proc = subprocess.Popen(base + ["--out", str(out)], env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (chunks / "chunk_00000.npz").exists():
            assert proc.poll() is None, "the sweep ended before its first chunk file appeared"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = sorted(p.name for p in chunks.glob("chunk_*.npz"))
    assert 1 <= len(done) < 6, done  # killed mid-sweep
    assert not (out / "results.json").exists()
    resumed = subprocess.run(base + ["--out", str(out), "--resume"], env=_env(), cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    assert b["timing"]["chunks_resumed"] == len(done) and a["timing"]["chunks_resumed"] == 0
    assert b["timing"]["configs_run"] == 96 - 16 * len(done)
    for k in ("task", "config", "grid", "data", "records", "summary", "paper"):
        assert a[k] == b[k], k
