"""Sweeps: a grid of (λ, lr, ε, seed) trained through one compiled chunk program (the selected kernel).

The grid runs in fixed-size chunks through one compiled chunk program, so
memory stays bounded and every config goes through the same program whatever
its neighbours (no reduction crosses configs): a config's result is bitwise
independent of the chunk it shares and of the device that runs it. With more
than one device the chunk's config axis is split over a 1-D
`jax.sharding.Mesh` with `shard_map`; each device runs the same per-device
program on its share. Under `jax.distributed` (see `distributed.py`) the mesh
spans every process's devices: each process builds only its devices' shards
of a chunk and the results are gathered to every process. With a
`checkpoint_dir` each finished chunk is written to disk, so an interrupted
sweep resumes where it stopped (see `resume.py`). The chunk program itself is `chunks.py`.

A chunk is trained by the kernel `kernels.select` picks: the fast engine
(`engine.train_chunk`, configs on the last axis, every option) or, on
request, the reference (`vmap(reference.train_core)`); the evaluation is the
same `chunks.evaluate_one` either way, and `timing["kernel"]` records the kernel.
Warm starts: `init=` gives every config its start (stacked `TrainState`s or
edges), `keep_state=True` returns the final states to continue from.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np
from jax.sharding import Mesh

from . import distributed
from . import resume as resume_mod
from .config import TrainConfig, check_finite_nonneg, check_int
from .datasets import Dataset
from . import kernels
from .network import init_edges_batch
from .chunks import (CONFIG_SPEC, DATA_SPEC, RunOutputs, compiled, default_mesh, inputs_of, spec_of,
                     to_device)
from .train import check_data, check_init

DEFAULT_CHUNK = 1024  # configs per device per chunk (cache-sized for small nets)
# The engine (engine.py) wants its per-chunk activations (samples x configs) in cache:
# configs per device per chunk = FAST_CHUNK_SAMPLES // n_samples, within [32, 512]
# (measured on a 2-core CPU: 256 best for XOR's 100 samples, 128 for addition's 200).
FAST_CHUNK_SAMPLES = 25_600


def fast_chunk(n_samples: int) -> int:
    """The chunk cap of the fast engine for `n_samples` training samples."""
    return max(32, min(512, FAST_CHUNK_SAMPLES // max(n_samples, 1)))


class Grid(NamedTuple):
    """A flat list of C configs (numpy arrays of shape `(C,)`)."""

    lam: np.ndarray  # float32
    lr: np.ndarray  # float32
    eps: np.ndarray  # float32
    seed: np.ndarray  # int64 (any non-negative int)

    def __len__(self) -> int:
        return len(self.seed)

    def take(self, idx) -> "Grid":
        return Grid(*(a[idx] for a in self))


def make_grid(
    config: TrainConfig,
    *,
    lams: Sequence[float] | None = None,
    seeds: Sequence[int] | int = 1,
    lrs: Sequence[float] | None = None,
    epss: Sequence[float] | None = None,
) -> Grid:
    """Cartesian product λ × lr × ε × seed (seed fastest); a missing axis takes
    `config`'s value. `seeds` is a list of seeds or a count n (seeds 0..n−1)."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        check_int("seeds", int(seeds), 1)
        seeds = range(int(seeds))
    axes = {}
    for name, vals, default, positive in (
        ("lams", lams, config.lam, False),
        ("lrs", lrs, config.lr, True),
        ("epss", epss, config.eps, False),
    ):
        vals = [default] if vals is None else list(vals)
        if not vals:
            raise ValueError(f"{name}=[] is invalid: allowed a non-empty list of numbers")
        axes[name] = [check_finite_nonneg(f"{name}[{i}]", v, positive=positive) for i, v in enumerate(vals)]
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds=[] is invalid: allowed a non-empty list of integers >= 0 or a count >= 1")
    for i, s in enumerate(seeds):
        check_int(f"seeds[{i}]", s, 0)
    rows = list(itertools.product(axes["lams"], axes["lrs"], axes["epss"], seeds))
    cols = list(zip(*rows))
    return Grid(
        np.array(cols[0], np.float32),
        np.array(cols[1], np.float32),
        np.array(cols[2], np.float32),
        np.array(cols[3], np.int64),
    )


def default_chunk(n: int, n_dev: int = 1, cap: int = DEFAULT_CHUNK) -> int:
    """Configs per device per chunk for `n` configs on `n_dev` devices: at most
    `cap` (`DEFAULT_CHUNK`; `fast_chunk(n_samples)` on the fast path), balanced so that
    the last chunk is not mostly padding."""
    per_dev = -(-n // n_dev)
    n_chunks = -(-per_dev // cap)
    return -(-per_dev // n_chunks)


def chunk_for(config: TrainConfig, n_samples: int, n: int, n_dev: int = 1, kernel: str = "auto") -> int:
    """The configs per device per chunk `run_grid` uses by default for `n` configs of
    `config` on `n_samples` training samples: `default_chunk` with the engine's cap
    (`fast_chunk`), or `DEFAULT_CHUNK` for the reference kernel."""
    chosen = kernels.select(config.static_part(), single=False, kernel=kernel).kernel
    return default_chunk(n, n_dev, DEFAULT_CHUNK if chosen == "reference" else fast_chunk(n_samples))


def run_grid(
    config: TrainConfig,
    data,
    grid: Grid,
    *,
    chunk: int | None = None,
    mesh: Mesh | None | str = "auto",
    on_chunk: Callable[[int, int], None] | None = None,
    timing: dict | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    kernel: str = "auto",
    init=None,
    keep_state: bool = False,
) -> RunOutputs:
    """Run every config of `grid` and return stacked numpy `RunOutputs` (axis 0 = config).

    Args:
      config: shared static settings (its λ, lr, ε are ignored: the grid's are used).
      data: a `datasets.Dataset` (`tasks.xor()`, `sources.load_source(...)`,
        `datasets.from_arrays(...)`, `datasets.plain(...)`); validated before
        tracing. Every run is evaluated on its train, validation (when not
        empty) and test splits.
      grid: the configs (`make_grid`).
      chunk: configs per device per chunk (default `default_chunk`: all of
        them, at most `DEFAULT_CHUNK`, balanced); one compiled program serves
        every chunk.
      mesh: a 1-D `Mesh` with axis 'c', None for one device, or "auto" (all
        devices of all processes; under `jax.distributed` each process runs
        its devices' share and every process gets the gathered results).
      on_chunk: called as `on_chunk(done_configs, total)` after each chunk.
      timing: if a dict, filled with `compile_s` (0 when the program was
        already compiled in this process; with the initial-edge program of
        `network.init_edges_batch` when that was compiled now), `run_s` (chunks computed now, no
        compile), `chunks`, `chunks_resumed`, `configs_run` and `chunk`.
      checkpoint_dir: if given, each finished chunk is written there
        atomically (process 0 only) with a manifest fingerprinting the
        config, grid, data and chunk layout (see `resume.ChunkStore`).
      resume: with `checkpoint_dir`, reuse the chunks already there (the
        manifest must match, else `ValueError`) and compute only the rest.
      on_start: called as `on_start(done_configs, total)` once compiled,
        before the first chunk is launched (e.g. to start a progress bar).
      kernel: 'auto' (`kernels.select`) or a kernel name to force (e.g.
        'reference'); recorded in `timing["kernel"]`.
      init: warm starts, one per config (leading axis `len(grid)`): stacked
        `TrainState`s (e.g. an earlier sweep's `result.state` with
        `keep_state=True`; continues those runs exactly) or a tuple of stacked
        edge arrays (a fresh optimizer from those edges).
      keep_state: return each config's final `TrainState` in `result.state`.
    """
    x, y, xv, yv, xt, yt = split_arrays(config, data)
    if mesh == "auto":
        mesh = default_mesh()
    n_dev = 1 if mesh is None else mesh.size
    n = len(grid)
    static = config.static_part()
    choice = kernels.select(static, single=False, kernel=kernel)
    # stacked numpy TrainStates, or edges (each config's fresh optimizer state there, built inside the chunk
    # program with its own λ, lr, ε), or None
    start = check_init(config, init, n)
    start = None if start is None else jax.tree.map(np.asarray, start)
    if chunk is None:
        chunk = chunk_for(config, x.shape[0], n, n_dev, choice.kernel)
    check_int("chunk", chunk, 1)
    step = chunk * n_dev
    n_chunks = -(-n // step)
    pad = n_chunks * step - n
    rows = np.concatenate([np.arange(n), np.full(pad, n - 1)]).astype(int)
    padded = grid.take(rows)
    padded_init = None if start is None else jax.tree.map(lambda a: np.asarray(a)[rows], start)
    host_data = tuple(np.asarray(a) for a in (x, y, xv, yv, xt, yt))
    dev_data = to_device(host_data, mesh, DATA_SPEC)
    part = lambda tree, i: None if tree is None else jax.tree.map(lambda a: a[i * step:(i + 1) * step], tree)

    draw_timing = {}
    # fresh runs: every config's initial edges from the shared init program (host arrays the size of the
    # final edges this function returns), not drawn inside the chunk program
    drawn = padded_init if padded_init is not None else init_edges_batch(
        padded.seed, static.layers, static.init, bias=static.bias, bias_init=static.bias_init, skip=static.skip,
        timing=draw_timing)
    chunk_inputs = lambda i: inputs_of(part(padded, i), part(drawn, i))
    prog, compile_s = compiled(static, mesh, choice.kernel, keep_state, spec_of((host_data, chunk_inputs(0))))
    compile_s += draw_timing.get("compile_s", 0.0)
    out_tree = prog.out_tree
    expect = [(tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(prog.out_info)]

    store, done = None, []
    if checkpoint_dir is not None:
        fp = resume_mod.fingerprint(static.to_dict(), grid, host_data, step, padded_init, choice.kernel)
        store = resume_mod.ChunkStore(checkpoint_dir, fp, resume=resume, write=distributed.is_main())
        mask = np.zeros(n_chunks, bool)
        mask[[i for i in store.done(expect) if i < n_chunks]] = True
        done = list(np.flatnonzero(distributed.broadcast(mask)))
    outs: list = [None] * n_chunks
    for i in done:
        try:
            leaves = store.load(i, expect)
        except FileNotFoundError:  # another process's disk (no shared filesystem): not needed here
            leaves = [np.zeros(s, d) for s, d in expect]
        outs[i] = jax.tree.unflatten(out_tree, leaves)
    n_valid = lambda i: min((i + 1) * step, n) - i * step
    finished = sum(n_valid(i) for i in done)
    if on_start:
        on_start(finished, n)

    def finish(i, launched):
        nonlocal finished
        outs[i] = distributed.gather(launched)
        if store is not None:
            store.save(i, jax.tree.leaves(outs[i]))
        finished += n_valid(i)
        if on_chunk:
            on_chunk(finished, n)

    todo = [i for i in range(n_chunks) if i not in set(done)]
    t0 = time.perf_counter()
    pending = None
    for i in todo:  # launch chunk i, then fetch chunk i-1 while i runs
        launched = prog(dev_data, *to_device(chunk_inputs(i), mesh, CONFIG_SPEC))
        if pending is not None:
            finish(*pending)
        pending = (i, launched)
    if pending is not None:
        finish(*pending)
    run_s = time.perf_counter() - t0
    if on_chunk and not todo:
        on_chunk(n, n)
    stacked = jax.tree.map(lambda *a: np.concatenate(a)[:n], *outs)
    if timing is not None:
        timing.update(compile_s=compile_s, run_s=run_s, chunks=n_chunks, chunks_resumed=len(done),
                      configs_run=sum(n_valid(i) for i in todo), chunk=chunk, kernel=choice.kernel,
                      kernel_note=choice.why_not_faster)
    return stacked


def split_arrays(config: TrainConfig, data: Dataset) -> tuple:
    """`(x, y, x_val, y_val, x_test, y_test)` of `data`, each split checked
    against `config` (`train.check_data`); raises TypeError for anything but a `Dataset`."""
    if not isinstance(data, Dataset):
        raise TypeError(f"data={type(data).__name__} is invalid: allowed a datasets.Dataset (tasks.xor(), "
                        "sources.load_source(...), datasets.from_arrays(...) or datasets.plain(...))")
    x, y = check_data(config, data.x_train, data.y_train)
    if data.x_val.shape[0]:
        xv, yv = check_data(config, data.x_val, data.y_val, name="x_val")
    else:
        xv, yv = np.zeros((0, x.shape[1]), np.float32), np.zeros((0, *y.shape[1:]), y.dtype)
    xt, yt = check_data(config, data.x_test, data.y_test, name="x_test")
    return x, y, xv, yv, xt, yt


def kernel_line(timing: dict) -> str:
    """'kernel K' (and why not a faster one) from `run_grid`'s `timing`, for a CLI's summary."""
    note = timing.get("kernel_note")
    return f"kernel {timing['kernel']}" + (f" ({note})" if note else "")


def select(out: RunOutputs, i: int) -> RunOutputs:
    """The outputs of config `i` of a sweep."""
    return jax.tree.map(lambda a: a[i], out)
