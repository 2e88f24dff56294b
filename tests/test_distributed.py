"""Scale-out (`sbp_jax.distributed` and the sweep's mesh): sharding over 4
devices, two processes under `jax.distributed` (chunk checkpoints and resume:
test_resume.py).

The device-count tests run in subprocesses because the XLA device count is
fixed when a process first touches JAX (this test process has 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # 1 vs 2 devices bitwise runs by default (test_engine, test_sweep); 4 devices here
def test_sharded_over_4_devices_equals_unsharded_bitwise():
    # 3 per device per chunk over 4 devices: 12 per chunk, 22 configs -> 2 chunks, the last padded.
    script = textwrap.dedent("""
        import jax, numpy as np
        from sbp_jax import chunks, sweep, tasks
        from sbp_jax.config import TrainConfig
        cfg = TrainConfig(layers=(2, 3, 1), loss="bce", lr=5e-2, epochs=40, eps=5e-2, history_every=10)
        d = tasks.xor(0)
        g = sweep.make_grid(cfg, lams=[0.0, 1e-2], lrs=[5e-2, 1e-1], seeds=[0, 1, 2, 3, 4, 7])
        g = g.take(np.arange(22))
        mesh = chunks.default_mesh()
        assert mesh is not None and mesh.size == 4, jax.devices()
        one = sweep.run_grid(cfg, d, g, mesh=None, chunk=3)
        four = sweep.run_grid(cfg, d, g, mesh=mesh, chunk=3)
        la, lb = jax.tree.leaves(one), jax.tree.leaves(four)
        assert jax.tree.structure(one) == jax.tree.structure(four)
        bad = [i for i, (a, b) in enumerate(zip(la, lb)) if a.shape != b.shape or a.tobytes() != b.tobytes()]
        assert not bad, bad
        assert len(np.unique(np.asarray(one.structure.active_per_layer).sum(1))) > 1  # not all identical
        print("OK", len(la))
    """)
    r = subprocess.run([sys.executable, "-c", script], env=_env(4), cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


@pytest.mark.slow  # ~20 s: three processes; 1 vs 2 devices bitwise stays in the default run
def test_two_processes_under_jax_distributed_equal_single_process(tmp_path):
    args = [sys.executable, "-m", "experiments.sweep", "--task", "xor", "--lams", "0,1e-2,1e-1", "--seeds", "5",
            "--epochs", "60", "--chunk", "2", "--no-plots", "--no-progress"]
    port = _free_port()
    multi_args = args + ["--out", str(tmp_path / "multi"), "--distributed", "--coordinator", f"127.0.0.1:{port}",
                         "--num-processes", "2"]
    runs = [(multi_args + ["--process-id", str(i)], 2) for i in range(2)]
    runs.append((args + ["--out", str(tmp_path / "single")], 1))  # the reference, on one device
    procs = [subprocess.Popen(a, env=_env(n), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for a, n in runs]
    try:
        logs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n----\n".join(logs)
    multi = json.loads((tmp_path / "multi" / "results.json").read_text())
    one = json.loads((tmp_path / "single" / "results.json").read_text())
    assert multi["timing"]["processes"] == 2 and multi["timing"]["devices"] == 4
    assert one["timing"]["processes"] == 1 and one["timing"]["devices"] == 1
    assert len(multi["records"]) == 15
    assert multi["records"] == one["records"]
    assert multi["summary"] == one["summary"]
    assert "wrote" in logs[0] and "wrote" not in logs[1]  # only process 0 reports and writes
