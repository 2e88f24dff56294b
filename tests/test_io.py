"""Atomic writes, JSON conversion and summary statistics."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from sbp_jax import io


def test_write_json_roundtrip_and_nan_to_null(tmp_path):
    p = tmp_path / "r.json"
    io.write_json(p, {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": (1, 2)})
    assert json.loads(p.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [1, 2]}


def test_written_file_has_default_permissions(tmp_path):
    io.write_json(tmp_path / "r.json", {})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "results.json"
    io.write_json(p, {"v": 1})
    with pytest.raises(TypeError):
        io.write_json(p, {"v": object()})  # not serialisable: fails mid-write
    assert json.loads(p.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["results.json"]


def test_killed_writer_never_leaves_partial_file(tmp_path):
    """A process killed in the middle of writing leaves the old file intact."""
    p = tmp_path / "results.json"
    io.write_json(p, {"old": True})
    script = (
        "import sys, time\n"
        "from sbp_jax import io\n"
        f"with io.atomic_path({str(p)!r}) as tmp:\n"
        "    f = open(tmp, 'w'); f.write('{\"half\": '); f.flush()\n"
        "    print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert json.loads(p.read_text()) == {"old": True}
