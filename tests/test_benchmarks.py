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


# The --quick per-option table (benchmarks.options.PLANS["quick"]): plain and bias on XOR and on the
# [30,64,1] breast-cancer net.
QUICK_OPTION_ROWS = {(net, o) for net in ("xor", "breast_cancer") for o in ("plain", "bias")}


def _check_options(rows, with_peer: bool):
    """The per-option rows: the expected (net, option) pairs, positive rates, ratios to the same net's
    plain row, the kernel field; peer rates and ratios on the plain and bias rows iff `with_peer`."""
    assert {(r["net"], r["option"]) for r in rows} == QUICK_OPTION_ROWS
    plain = {r["net"]: r["config_epochs_per_s"] for r in rows if r["option"] == "plain"}
    for r in rows:
        assert r["config_epochs_per_s"] > 0 and r["configs"] >= 1 and r["epochs"] >= 1 and "kernel" in r
        assert r["ratio_to_plain"] == pytest.approx(r["config_epochs_per_s"] / plain[r["net"]])
        has_peer = with_peer and r["option"] in ("plain", "bias")
        assert ("ratio_ours_over_peer_best" in r) == has_peer
        if has_peer:
            assert r["peer_best_config_epochs_per_s"] >= r["peer"]["config_epochs_per_s"] > 0
            assert r["ratio_ours_over_peer_best"] > 0
    assert {tuple(r["layers"]) for r in rows if r["net"] == "breast_cancer"} == {(30, 64, 1)}


def test_full_option_table_plan():
    """--full times every option on XOR and addition, plain and bias on [30,64,1], each at >= 300 epochs and
    2k-8k configs on the small nets; every row's config is valid (checked here, where it is cheap)."""
    from benchmarks.options import NETS, OPTIONS, PLANS
    from benchmarks.throughput import SWEEP_MIN_EPOCHS

    full = PLANS["full"]
    assert set(OPTIONS) == {"plain", "bias", "skip", "dropout", "layer_lams", "lam_schedule", "target_active",
                            "proximal", "minibatch"}
    assert set(full["xor"][2]) == set(full["addition"][2]) == set(OPTIONS)
    assert {"plain", "bias"} <= set(full["breast_cancer"][2])
    for net, (n, epochs, options) in full.items():
        assert epochs >= SWEEP_MIN_EPOCHS and (net == "breast_cancer" or 2048 <= n <= 8192)
        assert options[0] == "plain"  # the baseline of the ratios comes first
        base = NETS[net]
        for o in options:
            base.replace(**OPTIONS[o])


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # real compile times (the JSON reports them)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [env.get("PYTHONPATH")])])  # runs from any folder
    return env


def _quick(out, *extra, cwd=ROOT):
    """`python -m benchmarks.run --device cpu --quick` into `out` (None: its default folder, from `cwd`)."""
    subprocess.run([sys.executable, "-m", "benchmarks.run", "--device", "cpu", "--quick",
                    *(["--out", str(out)] if out is not None else []), *extra],
                   cwd=cwd, env=_env(), check=True, timeout=300)
    return json.loads(((out or cwd / "runs" / "benchmarks") / "bench_cpu.json").read_text())


def _git_status(path: str) -> str | None:
    """`git status --porcelain` of `path` (None outside a git checkout)."""
    p = subprocess.run(["git", "status", "--porcelain", "--ignored", "--", path], cwd=ROOT, capture_output=True,
                       text=True, check=False)
    return p.stdout if p.returncode == 0 else None


@pytest.mark.slow  # ~25 s: a whole quick benchmark run; the default-folder logic is test_default_output_folder
def test_quick_run_without_peers_writes_our_side(tmp_path):
    """What runs without torch (the CI machine): our single runs and sweeps, the JSON and the plot.
    Run without --out: a quick run writes to ./runs/benchmarks/ and leaves the committed results alone."""
    committed = _git_status("benchmarks/results")
    r = _quick(None, "--no-peer", cwd=tmp_path)
    assert _git_status("benchmarks/results") == committed
    assert sorted(p.name for p in (tmp_path / "runs" / "benchmarks").iterdir()) == ["bench_cpu.json",
                                                                                     "throughput_cpu.png"]
    assert r["mode"] == "quick" and r["agreement"]["passed"] is None
    for task in ("xor", "addition"):
        s = r["single_run"][task]
        assert s["ours_compile_s"] > 0 and s["ours_steady_s"] > 0 and s["train_is_train_single"] is True
        assert "torch_loop_s" not in s
    assert {(rec["task"], rec["configs"]) for rec in r["sweep"]} == {("xor", 1), ("xor", 64), ("addition", 1),
                                                                      ("addition", 64)}
    for rec in r["sweep"]:
        assert rec["ours"]["config_epochs_per_s"] > 0 and "peer" not in rec
        assert rec["ours"]["chunk_per_device"] >= 1 and "peak_rss_mib" in rec["ours"]["memory"]
    _check_options(r["options"], with_peer=False)


def test_default_output_folder():
    """Only a complete --full run defaults to the committed benchmarks/results/; --quick and every
    partial run default to runs/benchmarks/ (under the working directory); --out wins."""
    from benchmarks.run import parse_args

    results = os.path.join(ROOT, "benchmarks", "results")
    assert parse_args(["--full"]).out == parse_args([]).out == results
    for argv in (["--quick"], ["--full", "--tasks", "xor"], ["--full", "--sizes", "1,64"], ["--full", "--no-peer"],
                 ["--full", "--options-only"], ["--full", "--no-options"], ["--full", "--chunk", "8"]):
        assert parse_args(argv).out == os.path.join("runs", "benchmarks"), argv
    assert parse_args(["--quick", "--out", "/tmp/x"]).out == "/tmp/x"


def test_bad_flags_are_one_line_errors(capsys):
    """Bad values end with argparse's one line (flag, value, what is allowed) and status 2, before any work."""
    from benchmarks.run import parse_args

    cases = {("--sizes", "1,-64"): "--sizes='1,-64' is invalid: allowed comma-separated integers >= 1",
             ("--sizes", "a"): "--sizes='a' is invalid: allowed comma-separated integers >= 1",
             ("--tasks", "xor,mnist"): "--tasks='xor,mnist' is invalid: 'mnist' is no task; allowed a comma-separated "
                                       "subset of xor,addition",
             ("--chunk", "0"): "--chunk=0 is invalid: allowed an integer >= 1",
             ("--options-only", "--no-options"): "--options-only and --no-options contradict each other"}
    for argv, message in cases.items():
        with pytest.raises(SystemExit) as ex:
            parse_args(["--quick", *argv])
        assert ex.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("python -m benchmarks.run: error: " + message), (argv, err)


def test_gpu_without_a_gpu_is_a_one_line_error(tmp_path):
    """On a machine without a GPU (this one), --device gpu stops at once: one line, status 2, nothing written."""
    import jax

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("a GPU is visible")
    p = subprocess.run([sys.executable, "-m", "benchmarks.run", "--device", "gpu", "--quick", "--out", str(tmp_path)],
                       cwd=ROOT, env=_env(), timeout=300, capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("python -m benchmarks.run: error: --device=gpu is invalid: no GPU visible to JAX "
                           "(jax.devices('gpu') raised: "), line
    assert line.endswith("; allowed: cpu"), line
    assert ("torch.cuda.is_available() is False" in line) == (importlib.util.find_spec("torch") is not None), line
    assert list(tmp_path.iterdir()) == []


@needs_torch
def test_peers_agree_with_sbp_jax():
    import jax

    from benchmarks import check_peers

    # conftest sets strict dtype promotion, which optax's Adam does not pass.
    with jax.numpy_dtype_promotion("standard"):
        report = check_peers.check(epochs=50, atol=1e-4, seeds=(0,), lams=(1e-2, 1e-1), lrs=(1e-3, 1e-2),
                                   forwards=("bmm",), backwards=("manual", "autograd"), biases=(False, True))
    assert report["passed"], report
    peers = {(c["task"], c["bias"], c["peer"]) for c in report["cases"]}
    for task in ("xor", "addition"):
        assert (task, False, "torch_loop") in peers
        for bias in (False, True):  # the batched peer, with bias edges too
            assert {(task, bias, f"torch_batched[bmm,{bw}]") for bw in ("manual", "autograd")} <= peers


@needs_torch
def test_batched_peer_bias_shapes():
    """With bias the peer's edges are `(C, n_out, n_in + 1)`; other shapes are refused."""
    import numpy as np

    from benchmarks.peers.torch_batched import BatchedSBP

    x, y = np.zeros((5, 2), np.float32), np.zeros((5, 1), np.float32)
    plain = [np.zeros((3, 4, 2), np.float32), np.zeros((3, 1, 4), np.float32)]
    bias = [np.zeros((3, 4, 3), np.float32), np.zeros((3, 1, 5), np.float32)]
    BatchedSBP(plain, x, y, 1e-2, 1e-3, loss="bce")
    BatchedSBP(bias, x, y, 1e-2, 1e-3, loss="bce", bias=True)
    with pytest.raises(ValueError, match="bias=True"):
        BatchedSBP(plain, x, y, 1e-2, 1e-3, loss="bce", bias=True)
    with pytest.raises(ValueError, match="bias=False"):
        BatchedSBP(bias, x, y, 1e-2, 1e-3, loss="bce")


@pytest.mark.slow  # ~45 s on 2 cores: the whole quick benchmark with the torch peer; its parts run by default
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
    _check_options(r["options"], with_peer=True)
    assert (tmp_path / "throughput_cpu.png").exists()


@needs_torch
@pytest.mark.parametrize("bias", [False, True])
def test_chunked_peer_keeps_its_best_chunk_size(bias):
    """`peer_chunked` times one chunk of every size in PEER_CHUNKS on a fresh instance and rates the
    whole grid by the best size (eager here, 2 epochs: shapes and bookkeeping, not speed); with bias
    edges too (`cfg` replaces the task's config)."""
    from benchmarks.nets import TASK_CONFIGS
    from benchmarks.throughput import PEER_CHUNKS, peer_chunked

    n, epochs = 2500, 2
    r = peer_chunked("xor", n, epochs, "cpu", {"forward": "bmm", "backward": "manual", "compile": False}, 1,
                     cfg=TASK_CONFIGS["xor"].replace(bias=bias))
    assert [t["chunk"] for t in r["tried"]] == list(PEER_CHUNKS)
    best = max(r["tried"], key=lambda t: t["config_epochs_per_s"])
    assert r["chunk"] == best["chunk"] and r["chunk_seconds"] == best["chunk_seconds"]
    assert r["chunks"] == -(-n // r["chunk"])
    assert r["seconds_extrapolated"] == r["chunk_seconds"] * r["chunks"]
    assert abs(r["config_epochs_per_s"] - n * epochs / r["seconds_extrapolated"]) < 1e-6 * r["config_epochs_per_s"]
