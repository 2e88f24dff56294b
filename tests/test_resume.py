"""Chunk checkpoints and resume (`sbp_jax.resume`): a resumed sweep equals an
uninterrupted one, a different grid/config/data/chunk is refused, and a
missing, truncated, corrupt or checksum-less chunk is reported, recomputed
and healed (library level and through `python -m experiments.sweep`).

The kill -9 test of the CLI is `test_sweep_cli.test_killed_then_resumed_sweep_equals_uninterrupted`."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL, adam_promotion, assert_tree_bitwise_equal
from experiments import sweep as cli
from sbp_jax import resume, sweep

ROOT = Path(__file__).resolve().parent.parent
CHUNKS = ["chunk_00000.npz", "chunk_00001.npz", "chunk_00002.npz"]


def _grid():
    return sweep.make_grid(SMALL, lams=[0.0, 1e-2, 1e-1], seeds=3)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, xor_data):
    """(uninterrupted outputs, a folder of a finished checkpointed run): 9 configs,
    chunk 2 on 2 devices, so 3 chunks of 4 (the last padded)."""
    folder = tmp_path_factory.mktemp("finished")
    with adam_promotion():
        ref = sweep.run_grid(SMALL, xor_data, _grid(), chunk=2)
        sweep.run_grid(SMALL, xor_data, _grid(), chunk=2, checkpoint_dir=folder)
    return ref, folder


def _resume(folder, xor_data, timing=None):
    with adam_promotion():
        return sweep.run_grid(SMALL, xor_data, _grid(), chunk=2, checkpoint_dir=folder, resume=True, timing=timing)


def _heal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "sbp_jax" and r.levelno == logging.WARNING and "sbp_jax resume:" in r.getMessage()]


# ---- the checksum helpers ----

def test_leaves_sha256_covers_count_dtype_shape_and_bytes():
    a = np.arange(6, dtype=np.float32)
    base = resume.leaves_sha256([a])
    assert len(base) == 64 and base == resume.leaves_sha256([a.copy()])
    flipped = a.copy()
    flipped.view(np.uint32)[3] ^= 1
    others = [[flipped], [a.reshape(2, 3)], [a.view(np.int32)], [a, a[:0]], [], [a[:3], a[3:]]]
    digests = {resume.leaves_sha256(x) for x in others}
    assert base not in digests and len(digests) == len(others)
    assert resume.leaves_sha256([a.reshape(2, 3).T]) == resume.leaves_sha256([np.ascontiguousarray(a.reshape(2, 3).T)])


def test_pack_unpack_round_trip_and_each_failure_is_named():
    leaves = [np.arange(4, dtype=np.float32), np.ones((2, 3), np.int32)]
    entries = resume.pack_chunk(leaves)
    assert sorted(entries) == ["leaf_000", "leaf_001", "sha256"] and entries["sha256"].dtype.kind == "U"
    expect = [((4,), "float32"), ((2, 3), "int32")]
    assert_tree_bitwise_equal(resume.unpack_chunk(entries, expect), leaves)
    bad = {
        "no checksum": {k: v for k, v in entries.items() if k != "sha256"},
        "checksum mismatch": entries | {"leaf_000": leaves[0] + 1},
        "not leaf_000": {"leaf_001": leaves[1], "sha256": entries["sha256"]},
    }
    for why, e in bad.items():
        with pytest.raises(resume.CorruptChunk, match=why):
            resume.unpack_chunk(e)
    with pytest.raises(resume.CorruptChunk, match="shapes/dtypes"):
        resume.unpack_chunk(entries, [((4,), "float32"), ((3, 2), "int32")])
    assert issubclass(resume.CorruptChunk, ValueError)


def test_read_chunk_rejects_truncated_flipped_and_foreign_files(tmp_path):
    leaves = [np.linspace(0, 1, 1000, dtype=np.float32)]
    good = tmp_path / "good.npz"
    np.savez(good, **resume.pack_chunk(leaves))
    assert_tree_bitwise_equal(resume.read_chunk(good), leaves)
    raw = good.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF  # inside leaf_000's data: the zip's CRC or the checksum catches it
    cases = {"half": raw[: len(raw) // 2], "empty": b"", "flipped": bytes(flipped), "text": b"not a chunk\n"}
    for name, data in cases.items():
        (tmp_path / f"{name}.npz").write_bytes(data)
        with pytest.raises(resume.CorruptChunk, match="unreadable|checksum mismatch"):
            resume.read_chunk(tmp_path / f"{name}.npz")
    with pytest.raises(FileNotFoundError):
        resume.read_chunk(tmp_path / "absent.npz")


# ---- sweeps ----

def test_checkpointed_resume_equals_uninterrupted(tmp_path, xor_data):
    g = _grid()
    with adam_promotion():
        ref = sweep.run_grid(SMALL, xor_data, g, chunk=2)
        t1: dict = {}
        first = sweep.run_grid(SMALL, xor_data, g, chunk=2, checkpoint_dir=tmp_path, timing=t1)
        files = sorted(p.name for p in tmp_path.iterdir())
        assert files == [*CHUNKS, "manifest.json"]
        (tmp_path / "chunk_00001.npz").unlink()  # as if killed before chunk 1 was written
        t2: dict = {}
        calls = []
        again = sweep.run_grid(SMALL, xor_data, g, chunk=2, checkpoint_dir=tmp_path, resume=True, timing=t2,
                               on_start=lambda d, n: calls.append(("start", d, n)),
                               on_chunk=lambda d, n: calls.append(("chunk", d, n)))
    assert_tree_bitwise_equal(ref, first)
    assert_tree_bitwise_equal(ref, again)
    assert t1["chunks_resumed"] == 0 and t1["configs_run"] == 9
    assert t2["chunks_resumed"] == 2 and t2["configs_run"] == 4 and t2["compile_s"] == 0.0
    assert calls == [("start", 5, 9), ("chunk", 9, 9)]


def test_resume_refuses_a_different_grid_config_data_or_chunk(tmp_path, xor_data):
    g = _grid()
    data = tuple(np.asarray(getattr(xor_data, k)) for k in ("x_train", "y_train", "x_test", "y_test"))
    base = resume.fingerprint(SMALL.static_part().to_dict(), g, data, 4)
    resume.ChunkStore(tmp_path, base, resume=False)
    resume.ChunkStore(tmp_path, base, resume=True)  # same fingerprint: accepted
    other_grid = sweep.make_grid(SMALL, lams=[0.0, 1e-2, 3e-2], seeds=3)
    cases = {
        "grid": resume.fingerprint(SMALL.static_part().to_dict(), other_grid, data, 4),
        "config": resume.fingerprint(SMALL.replace(epochs=61).static_part().to_dict(), g, data, 4),
        "data_sha256": resume.fingerprint(SMALL.static_part().to_dict(), g, (data[0] + 1, *data[1:]), 4),
        "chunk_configs": resume.fingerprint(SMALL.static_part().to_dict(), g, data, 2),
    }
    for part, fp in cases.items():
        with pytest.raises(ValueError, match=f"--resume refused.*different {part}") as e:
            resume.ChunkStore(tmp_path, fp, resume=True)
        assert "without --resume" in str(e.value)
    assert (tmp_path / "manifest.json").exists()
    # Without --resume a fresh start replaces the old chunks and manifest.
    (tmp_path / "chunk_00000.npz").write_bytes(b"old")
    resume.ChunkStore(tmp_path, cases["grid"], resume=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    resume.ChunkStore(tmp_path, cases["grid"], resume=True)


def _truncate(p: Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip_bytes(p: Path):
    raw = bytearray(p.read_bytes())
    for k in range(len(raw) // 3, len(raw) // 3 + 8):
        raw[k] ^= 0x5A
    p.write_bytes(bytes(raw))


def _tamper(p: Path):
    """A valid zip with the stored checksum but one changed bit in leaf_000: only the checksum catches it."""
    with np.load(p) as f:
        entries = {k: f[k] for k in f.files}
    leaf = entries["leaf_000"].copy()
    leaf.reshape(-1).view(np.uint8)[0] ^= 1
    np.savez(p, **(entries | {"leaf_000": leaf}))


def _strip_checksum(p: Path):
    """A chunk as an older sbp_jax wrote it: leaves only."""
    with np.load(p) as f:
        entries = {k: f[k] for k in f.files if k != "sha256"}
    np.savez(p, **entries)


def _reshape(p: Path):
    """A chunk with a valid checksum but the wrong shapes (e.g. of another program)."""
    with np.load(p) as f:
        leaves = [f[f"leaf_{j:03d}"] for j in range(len(f.files) - 1)]
    np.savez(p, **resume.pack_chunk([a[:1] for a in leaves]))


DAMAGES = {"truncated": (_truncate, "unreadable"), "flipped bytes": (_flip_bytes, "unreadable|checksum mismatch"),
           "tampered": (_tamper, "checksum mismatch"), "no checksum": (_strip_checksum, "no checksum"),
           "wrong shapes": (_reshape, "shapes/dtypes"), "missing": (Path.unlink, "is missing")}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_chunk_is_reported_recomputed_and_healed(damage, finished, tmp_path, xor_data, caplog):
    ref, template = finished
    folder = tmp_path / "chunks"
    shutil.copytree(template, folder)
    damage_fn, why = DAMAGES[damage]
    damage_fn(folder / "chunk_00001.npz")
    (folder / ".chunk_00002.npz.abc123.tmp.npz").write_bytes(b"PK\x03\x04 cut short")  # a kill -9 mid-write
    timing: dict = {}
    with caplog.at_level(logging.WARNING, logger="sbp_jax"):
        again = _resume(folder, xor_data, timing)
    lines = _heal_lines(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("sbp_jax resume: chunk 1 (") and lines[0].endswith("recomputing it"), lines[0]
    assert str(folder / "chunk_00001.npz") in lines[0]
    assert any(w in lines[0] for w in why.split("|")), lines[0]
    assert timing["chunks_resumed"] == 2 and timing["configs_run"] == 4
    assert_tree_bitwise_equal(ref, again)
    assert sorted(p.name for p in folder.iterdir()) == [*CHUNKS, "manifest.json"]  # healed, leftover gone
    for name in CHUNKS:
        assert_tree_bitwise_equal(resume.read_chunk(folder / name), resume.read_chunk(template / name))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sbp_jax"):
        assert_tree_bitwise_equal(ref, _resume(folder, xor_data))  # now nothing to heal
    assert _heal_lines(caplog) == []


def test_only_the_writing_process_removes_and_reports(finished, tmp_path, caplog):
    _, template = finished
    folder = tmp_path / "chunks"
    shutil.copytree(template, folder)
    _truncate(folder / "chunk_00000.npz")
    fp = json.loads((folder / "manifest.json").read_text())["fingerprint"]
    with caplog.at_level(logging.WARNING, logger="sbp_jax"):
        reader = resume.ChunkStore(folder, fp, resume=True, write=False)
        assert reader.done() == [1, 2] and [i for i, _ in reader.healed] == [0]
        assert (folder / "chunk_00000.npz").exists() and _heal_lines(caplog) == []
        writer = resume.ChunkStore(folder, fp, resume=True)
        assert writer.done() == [1, 2] and not (folder / "chunk_00000.npz").exists()
    assert len(_heal_lines(caplog)) == 1


def test_cli_resume_heals_a_corrupt_chunk_and_says_so_on_stderr(tmp_path):
    out = tmp_path / "sw"
    argv = ["--task", "xor", "--lams", "0,1e-1", "--seeds", "3", "--epochs", "30", "--chunk", "1",
            "--no-plots", "--no-progress", "--out", str(out)]
    with adam_promotion():
        cli.main(argv)
    first = json.loads((out / "results.json").read_text())
    n_dev = first["timing"]["devices"]
    chunks = sorted(p.name for p in (out / "chunks").glob("chunk_*.npz"))
    assert len(chunks) == -(-6 // n_dev) >= 2, chunks  # 6 configs, 1 per device per chunk
    _truncate(out / "chunks" / "chunk_00001.npz")
    (out / "results.json").unlink()
    r = subprocess.run([sys.executable, "-m", "experiments.sweep", *argv, "--resume"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    heal = [line for line in r.stderr.splitlines() if line.startswith("sbp_jax resume:")]
    assert len(heal) == 1 and "chunk 1 (" in heal[0] and "unreadable" in heal[0], r.stderr
    assert "Traceback" not in r.stderr
    again = json.loads((out / "results.json").read_text())
    assert again["timing"]["chunks_resumed"] == len(chunks) - 1 and again["timing"]["configs_run"] == n_dev
    assert again["records"] == first["records"]
    for k in set(first) - {"records", "provenance", "timing"}:  # summary, config, ...: all but the run's own
        assert again[k] == first[k], k
