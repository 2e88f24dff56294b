"""Sweep throughput: config-epochs/s of a whole grid, ours (`sweep.run_grid`) vs the batched PyTorch peer.

Each side is set up and warmed up first (ours: the chunk program compiled on the same chunk
shapes as the timed runs; the peer: 3 epochs on the same instance, `torch.compile` included),
then the whole grid is timed (`measure`: best of `repeats`). Big grids are also run by the peer
in sequential chunks at its best chunk size (`peer_chunked`), what a user would do.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import numpy as np

from benchmarks import nets
from benchmarks.machine import Memory
from sbp_jax import sweep
from sbp_jax.config import TrainConfig
from sbp_jax.datasets import Dataset

SWEEP_MIN_EPOCHS = 300  # long enough that per-call and per-step overheads are amortised on both sides

PEER_COMPILE_MIN = 1024  # --peer-compile auto: compile from this many configs (eager wins below, on tiny nets)

# Chunk sizes tried for the batched peer on big grids (a fresh compiled instance each; its best is kept).
# Measured: its rate is ~flat from 256 to 1,024 configs and falls beyond (its activations spill), and a
# compiled instance is sometimes ~3x slower than another of the same shape (inductor/OpenMP), so one
# size, one instance would understate it at random.
PEER_CHUNKS = (256, 512, 1024)


def make_sweep_grid(cfg: TrainConfig, n: int) -> sweep.Grid:
    """n configs: 16 λ values (log-spaced 1e-4..1e-1) × n/16 seeds, or n seeds at cfg.lam."""
    if n >= 16 and n % 16 == 0:
        return sweep.make_grid(cfg, lams=np.geomspace(1e-4, 1e-1, 16).tolist(), seeds=n // 16)
    return sweep.make_grid(cfg, seeds=n)


def sweep_epochs(name: str, n: int, mode: str) -> int:
    """Epochs of one sweep measurement: 20 in 'quick'; in 'full' the task's own count, cut for big
    grids to a time budget, never below `SWEEP_MIN_EPOCHS`."""
    if mode == "quick":
        return 20
    full = nets.TASK_CONFIGS[name].epochs
    work = {"xor": 2e6, "addition": 5e5}[name]  # config-epochs per measurement (time budget)
    return int(min(full, max(SWEEP_MIN_EPOCHS, round(work / n / 50) * 50)))


def ours_sweep(name: str, n: int, epochs: int, chunk: int | None, *, cfg: TrainConfig | None = None,
               data: Dataset | None = None):
    """Warm up (compile) and return `(info, timed)`: `timed()` runs the whole grid once. `info` names
    the kernel `run_grid` ran (`kernel`, None before run_grid recorded it). `cfg` and `data`
    replace the net's config and data (`benchmarks.options`: other options and nets)."""
    cfg = (cfg or nets.NETS[name]).replace(epochs=epochs, history_every=0)
    d = nets.load(name) if data is None else data
    grid = make_sweep_grid(cfg, n)
    n_dev = len(jax.devices())
    per_dev = chunk or sweep.chunk_for(cfg, len(d.x_train), n, n_dev)  # what run_grid will use
    per_chunk = per_dev * n_dev
    t0 = time.perf_counter()
    warm_timing = {}  # compile that chunk program (the same program as the timed runs', so the same kernel)
    sweep.run_grid(cfg, d, grid.take(np.arange(min(n, per_chunk))), chunk=per_dev, timing=warm_timing)
    warm = time.perf_counter() - t0

    def timed() -> float:
        t0 = time.perf_counter()
        out = sweep.run_grid(cfg, d, grid, chunk=chunk)
        dt = time.perf_counter() - t0
        assert out.result.edges[0].shape[0] == n
        return dt

    return {"warmup_s": warm, "devices": n_dev, "chunk_per_device": per_chunk // n_dev,
            "kernel": warm_timing.get("kernel")}, timed


def peer_sweep(name: str, n: int, epochs: int, torch_device: str, peer_kw: dict, *,
               cfg: TrainConfig | None = None, data: Dataset | None = None) -> tuple:
    """The batched peer on n configs of the net (or of `cfg` and `data`: plain or `bias=True`, what
    `BatchedSBP` implements), warmed up; returns `(info, timed)` like `ours_sweep`."""
    import torch

    from benchmarks.peers.torch_batched import BatchedSBP

    cfg = cfg or nets.NETS[name]
    d = nets.load(name) if data is None else data
    grid = make_sweep_grid(cfg, n)
    # Initial edges: the same scheme as ours (drawn in numpy for speed; values do not affect timing),
    # with bias a zero last column (`bias_init='zeros'`): `(n, n_out, n_in [+ 1])`.
    rng = np.random.default_rng(0)
    e0 = [np.concatenate([rng.standard_normal((n, o, i)) * (2.0 / i) ** 0.5, np.zeros((n, o, int(cfg.bias)))],
                         axis=2).astype(np.float32)
          for i, o in zip(cfg.layers[:-1], cfg.layers[1:])]
    b = BatchedSBP(e0, d.x_train, d.y_train, grid.lam, grid.lr, loss=cfg.loss, bias=cfg.bias, **peer_kw)
    if torch_device != "cpu":
        for attr in ("flat", "m", "v", "x", "y", "lam", "lr"):
            setattr(b, attr, getattr(b, attr).to(torch_device))

    def sync():
        if torch_device != "cpu":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    b.run(3)  # warm-up (and torch.compile) on this instance and shape
    sync()
    warm = time.perf_counter() - t0

    def timed() -> float:
        t0 = time.perf_counter()
        b.run(epochs)
        sync()
        return time.perf_counter() - t0

    return {"warmup_s": warm}, timed


def peer_chunked(name: str, n: int, epochs: int, torch_device: str, peer_kw: dict, repeats: int,
                 **net) -> dict:
    """The batched peer run as sequential chunks (what a user would do for a big grid), at its best
    size: for each size in PEER_CHUNKS one chunk is timed (every chunk of a size has the same shapes
    and work) on a fresh instance; the rate is the best size's; `seconds_extrapolated` = that chunk's
    time × the number of chunks. `tried` lists every size's chunk rate. `net`: `peer_sweep`'s
    `cfg` and `data`."""
    tried = []
    for size in PEER_CHUNKS:
        info, timed = peer_sweep(name, size, epochs, torch_device, peer_kw, **net)
        t = min(timed() for _ in range(repeats))
        tried.append(dict(info, chunk=size, chunk_seconds=t, config_epochs_per_s=size * epochs / t))
    best = max(tried, key=lambda r: r["config_epochs_per_s"])
    n_chunks = -(-n // best["chunk"])
    return dict(best, chunks=n_chunks, seconds_extrapolated=best["chunk_seconds"] * n_chunks,
                config_epochs_per_s=n * epochs / (best["chunk_seconds"] * n_chunks), tried=tried)


def measure(setup: Callable[[], tuple], n: int, epochs: int, repeats: int, mem: Memory) -> dict:
    """`setup()` -> `(info, timed)` (`ours_sweep`, `peer_sweep`); time `timed()` `repeats` times and
    add the best time, the rate in config-epochs/s and the section's peak memory to `info`."""
    mem.reset()
    info, timed = setup()
    times = [timed() for _ in range(repeats)]
    info.update(seconds=min(times), seconds_all=times, config_epochs_per_s=n * epochs / min(times),
                memory=mem.read())
    return info


def sweep_record(name: str, n: int, mode: str, *, chunk: int | None, peer_kw: dict | None,
                 torch_device: str, mem: Memory) -> dict:
    """One row of the `sweep` section: ours on `n` configs of task `name`, and with `peer_kw`
    (None: no peer) the batched peer in one batch and, when compiled above `max(PEER_CHUNKS)`
    configs, in chunks; with the ratios."""
    epochs = sweep_epochs(name, n, mode)
    rec = {"task": name, "configs": n, "epochs": epochs}
    reps = 1 if mode == "quick" or n > 8192 else 2
    rec["ours"] = measure(lambda: ours_sweep(name, n, epochs, chunk), n, epochs, reps, mem)
    if peer_kw is None:
        return rec
    rec["peer"] = measure(lambda: peer_sweep(name, n, epochs, torch_device, peer_kw), n, epochs, reps, mem)
    rec["peer"]["variant"] = peer_kw
    rec["ratio_ours_over_peer"] = rec["ours"]["config_epochs_per_s"] / rec["peer"]["config_epochs_per_s"]
    if n > max(PEER_CHUNKS) and peer_kw["compile"]:
        rec["peer_chunked"] = peer_chunked(name, n, epochs, torch_device, peer_kw, reps)
        best = max(rec["peer"]["config_epochs_per_s"], rec["peer_chunked"]["config_epochs_per_s"])
        rec["ratio_ours_over_peer_best"] = rec["ours"]["config_epochs_per_s"] / best
    return rec
