"""`python -m experiments.sweep`: results.json and plots end to end, a refused
resume, and a killed-then-resumed sweep (argument errors: tests/test_cli.py)."""

from __future__ import annotations

import json
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
    assert r["config"]["lam"] is None and r["grid"]["lams"] == sorted({x["lam"] for x in r["records"]})
    assert len(r["records"]) == 9
    assert [(x["lam"], x["seed"]) for x in r["records"]] == [(l, s) for l in (0.0, np.float32(1e-2).item(),
                                                                             np.float32(1e-1).item()) for s in range(3)]
    for x in r["records"]:
        assert set(x) >= {"lam", "lr", "eps", "seed", "metrics", "structure", "selected_features",
                          "diverged_at_epoch", "final_task_loss"}
        assert set(x["metrics"]) == {"train_accuracy", "test_accuracy", "pruned_test_accuracy"}
        s = x["structure"]
        assert s["total_edges"] == 12 and 0 <= s["active_edges"] <= 12 and x["diverged_at_epoch"] is None
    assert len(r["summary"]) == 3
    for s in r["summary"]:
        assert s["n_runs"] == 3 and s["n_diverged"] == 0
        d = s["metrics"]["test_accuracy"]
        assert 0 <= d["ci95"][0] <= d["mean"] <= d["ci95"][1] <= 1
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
    err = capsys.readouterr().err
    assert "--resume refused" in err and "Traceback" not in err


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
