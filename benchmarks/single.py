"""Single-run latency: one config trained once, ours vs the idiomatic PyTorch loop.

Ours is `train(..., kernel='single')` (the single-run kernel forced): its first call
(compile + run), then the steady state (median of `repeats` calls). `sbp_jax.train.train`
with its automatic kernel choice is timed the same way, and `train_is_train_single` records
that both give bitwise the same result. The peer is `peers.torch_loop` (Python epoch loop,
`torch.optim.Adam`), with and without its per-epoch history, on one torch thread on CPU.
"""

from __future__ import annotations

import functools
import statistics
import time

import jax
import numpy as np

from benchmarks import nets
from sbp_jax import kernels
from sbp_jax.train import train


def single_run(name: str, repeats: int, torch_device: str, epochs: int | None = None,
               loop_repeats: int = 3, peer: bool = True) -> dict:
    """Time one run of task `name` (`nets.TASK_CONFIGS`, `epochs` replacing its own when given), and
    the torch loop unless `peer` is False or torch is missing. Returns the record
    `python -m benchmarks.run` writes under `single_run.<name>`."""
    cfg = nets.TASK_CONFIGS[name]
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    d = nets.load(name)
    key = jax.random.key(0)

    def timed_calls(fn):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(cfg, d.x_train, d.y_train, key))
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(cfg, d.x_train, d.y_train, key))
            times.append(time.perf_counter() - t0)
        return first, times

    # ours = the single-run kernel forced (`train(..., kernel="single")`); `train` with the automatic
    # choice is timed too, and `train_is_train_single` checks that it runs the same program.
    train_single = functools.partial(train, kernel="single")
    first, times = timed_calls(train_single)
    steady = statistics.median(times)
    t_first, t_times = timed_calls(train)
    same = all(bool(np.array_equal(np.asarray(a), np.asarray(b))) for a, b in zip(
        jax.tree.leaves(train(cfg, d.x_train, d.y_train, key)),
        jax.tree.leaves(train_single(cfg, d.x_train, d.y_train, key))))
    out = {
        "epochs": cfg.epochs,
        "layers": list(cfg.layers),
        "ours_call": "sbp_jax.train(config, x, y, key, kernel='single')",
        "ours_kernel": kernels.select(cfg.static_part(), single=True).kernel,
        "ours_first_call_s": first,
        "ours_compile_s": max(first - steady, 0.0),
        "ours_steady_s": steady,
        "ours_steady_min_s": min(times),
        "ours_repeats": repeats,
        "train_first_call_s": t_first,
        "train_steady_s": statistics.median(t_times),
        "train_steady_min_s": min(t_times),
        "train_is_train_single": same,
    }
    if not peer:
        return out
    try:
        from benchmarks.peers import torch_loop
    except ImportError:
        return out
    import torch

    from sbp_jax.network import init_edges

    e0 = [np.asarray(w) for w in init_edges(key, cfg.layers, cfg.init)]
    threads = torch.get_num_threads()
    if torch_device == "cpu":
        torch.set_num_threads(1)  # tiny tensors: one thread is the loop's fastest setting
    out["torch_loop_threads"] = torch.get_num_threads()
    for hist in (True, False):
        ts = []
        for _ in range(loop_repeats):
            t0 = time.perf_counter()
            torch_loop.train(e0, d.x_train, d.y_train, loss=cfg.loss, lam=cfg.lam, lr=cfg.lr,
                             epochs=cfg.epochs, eps=cfg.eps, history=hist)
            ts.append(time.perf_counter() - t0)
        out["torch_loop_s" if hist else "torch_loop_nohistory_s"] = min(ts)
    torch.set_num_threads(threads)
    out["ratio_torch_loop_over_ours_steady"] = out["torch_loop_s"] / steady
    out["ratio_torch_loop_over_train_steady"] = out["torch_loop_s"] / out["train_steady_s"]
    return out
