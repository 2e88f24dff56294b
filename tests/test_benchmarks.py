"""The benchmark harness: the PyTorch peers agree with sbp_jax, and
`python -m benchmarks.run --quick` writes a complete JSON. Timing is never asserted."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch not installed (pip install -e '.[bench]')")


def _quick(tmp_path, *extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    subprocess.run([sys.executable, "-m", "benchmarks.run", "--device", "cpu", "--quick", "--out", str(tmp_path),
                    *extra], cwd=ROOT, env=env, check=True, timeout=300)
    return json.loads((tmp_path / "bench_cpu.json").read_text())


def test_quick_run_without_peers_writes_our_side(tmp_path):
    """What runs without torch (the CI machine): our single runs and sweeps, the JSON and the plot."""
    r = _quick(tmp_path, "--no-peer")
    assert r["mode"] == "quick" and r["agreement"]["passed"] is None
    for task in ("xor", "addition"):
        s = r["single_run"][task]
        assert s["ours_compile_s"] > 0 and s["ours_steady_s"] > 0 and s["train_is_train_single"] is True
    assert {(rec["task"], rec["configs"]) for rec in r["sweep"]} == {("xor", 1), ("xor", 64), ("addition", 1),
                                                                      ("addition", 64)}
    for rec in r["sweep"]:
        assert rec["ours"]["config_epochs_per_s"] > 0 and "peer" not in rec
        assert rec["ours"]["chunk_per_device"] >= 1 and "peak_rss_mib" in rec["ours"]["memory"]
    assert (tmp_path / "throughput_cpu.png").exists()


@needs_torch
def test_peers_agree_with_sbp_jax():
    import jax

    from benchmarks import check_peers

    # conftest sets strict dtype promotion, which optax's Adam does not pass.
    with jax.numpy_dtype_promotion("standard"):
        report = check_peers.check(epochs=50, atol=1e-4, seeds=(0,), lams=(1e-2, 1e-1), lrs=(1e-3, 1e-2),
                                   forwards=("bmm",), backwards=("manual", "autograd"))
    assert report["passed"], report
    peers = {c["peer"] for c in report["cases"]}
    assert "torch_loop" in peers and any(p.startswith("torch_batched") for p in peers)


@needs_torch
def test_quick_run_writes_json(tmp_path):
    r = _quick(tmp_path)
    for key in ("command", "mode", "machine", "agreement", "single_run", "sweep", "total_seconds"):
        assert key in r, key
    assert r["mode"] == "quick"
    assert r["agreement"]["passed"] is True
    for k in ("platform", "cpu_model", "cpu_count", "versions"):
        assert k in r["machine"]
    assert {"jax", "jaxlib", "numpy", "torch"} <= set(r["machine"]["versions"])
    for task in ("xor", "addition"):
        s = r["single_run"][task]
        for k in ("ours_compile_s", "ours_steady_s", "torch_loop_s", "memory"):
            assert k in s
    tasks = {(rec["task"], rec["configs"]) for rec in r["sweep"]}
    assert {("xor", 1), ("xor", 64), ("addition", 1), ("addition", 64)} <= tasks
    for rec in r["sweep"]:
        assert rec["ours"]["config_epochs_per_s"] > 0
        assert rec["peer"]["config_epochs_per_s"] > 0
        assert "ratio_ours_over_peer" in rec
        assert "peak_rss_mib" in rec["ours"]["memory"]
    assert (tmp_path / "throughput_cpu.png").exists()


@needs_torch
def test_chunked_peer_keeps_its_best_chunk_size():
    """`peer_chunked` times one chunk of every size in PEER_CHUNKS on a fresh instance and rates the
    whole grid by the best size (eager here, 2 epochs: shapes and bookkeeping, not speed)."""
    from benchmarks.run import PEER_CHUNKS, peer_chunked

    n, epochs = 2500, 2
    r = peer_chunked("xor", n, epochs, "cpu", {"forward": "bmm", "backward": "manual", "compile": False}, 1)
    assert [t["chunk"] for t in r["tried"]] == list(PEER_CHUNKS)
    best = max(r["tried"], key=lambda t: t["config_epochs_per_s"])
    assert r["chunk"] == best["chunk"] and r["chunk_seconds"] == best["chunk_seconds"]
    assert r["chunks"] == -(-n // r["chunk"])
    assert r["seconds_extrapolated"] == r["chunk_seconds"] * r["chunks"]
    assert abs(r["config_epochs_per_s"] - n * epochs / r["seconds_extrapolated"]) < 1e-6 * r["config_epochs_per_s"]
