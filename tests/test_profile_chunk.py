"""`python -m benchmarks.profile_chunk`: per-kernel profile of the fast chunk program (CPU).
Runs in a subprocess (it sets an XLA flag before jax starts). Timing is never asserted."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, check=True):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    return subprocess.run([sys.executable, "-m", "benchmarks.profile_chunk", *args], cwd=ROOT, env=env,
                          check=check, timeout=300, capture_output=True, text=True)


def test_profile_lists_the_kernels_of_an_epoch(tmp_path):
    out = tmp_path / "p.json"
    _run("--task", "addition", "--chunk", "4", "--epochs", "3", "--json", str(out), "--option", "bias=True")
    r = json.loads(out.read_text())
    assert (r["task"], r["chunk"], r["epochs"]) == ("addition", 4, 3)
    assert r["options"] == {"bias": True} and r["kernel"] == "two_layer"
    assert r["wall_us_per_epoch"] > 0 and r["kernel_us_per_epoch"] > 0
    shares = [k["share"] for k in r["kernels"]]
    assert len(shares) > 3 and abs(sum(shares) - 1.0) < 1e-6
    assert shares == sorted(shares, reverse=True)
    # executor, loop and Python events are not kernels (they would count their kernels twice)
    assert not any(k["name"].startswith(("ThunkExecutor", "while", "$")) for k in r["kernels"])


def test_profile_rejects_bad_flags():
    """Bad flag values: one argparse line naming the flag, the value and what is allowed; status 2."""
    p = _run("--chunk", "0", check=False)
    assert p.returncode == 2 and "error: --chunk=0 is invalid: allowed integers >= 1" in p.stderr
    p = _run("--option", "bias", check=False)
    assert p.returncode == 2 and "--option 'bias' is invalid: allowed FIELD=VALUE" in p.stderr
    p = _run("--option", "biass=True", check=False)
    assert p.returncode == 2 and "--option 'biass=True' is invalid: 'biass' is no TrainConfig field; allowed" in p.stderr
    assert "Traceback" not in p.stderr
