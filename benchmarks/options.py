"""Per-option sweep throughput: every `TrainConfig` option's `run_grid` rate beside the plain setting's.

Called by `python -m benchmarks.run` (section `options`; `--options-only` runs just this one):

    python -m benchmarks.run --device cpu --full --options-only --out /tmp/bench_options

For each net in `NETS` and each option of its plan, `sweep.run_grid(cfg.replace(**option,
history_every=0), data, grid)` is timed exactly as `throughput.ours_sweep` times the plain sweeps (compile
excluded by a warm-up on the same chunk shape, best of `repeats` whole-grid runs), on a grid of
16 λ × configs/16 seeds (`throughput.make_sweep_grid`). Each row records the rate in config-epochs/s, its
ratio to the same net's plain row, the kernel `run_grid` ran, the Adam steps per epoch (ceil(n/b) with
minibatches, else 1), the rate in config-steps/s and its ratio to the plain row's (one step per epoch):
a minibatch epoch is that many steps, each on b samples instead of n, so config-epochs/s alone charges
minibatches for the steps they are asked to take; and, for the rows the batched PyTorch
peer implements (`PEER_OPTIONS`: plain and bias), the ratio to that peer at its best chunking
(`throughput.peer_sweep`, all configs in one batch, compiled whenever `run.main` compiles the peer for a
grid of `PEER_COMPILE_MIN` configs (--full; --peer-compile auto or on); when compiled, also
`throughput.peer_chunked` above `max(PEER_CHUNKS)` configs and the eager peer at or below it; the
fastest counts: none wins everywhere, see `_peer_best`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from benchmarks import nets
from benchmarks.machine import Memory
from benchmarks.throughput import (
    PEER_CHUNKS,
    PEER_COMPILE_MIN,
    SWEEP_MIN_EPOCHS,
    measure,
    ours_sweep,
    peer_chunked,
    peer_sweep,
)
from sbp_jax.config import TrainConfig
from sbp_jax.datasets import Dataset
from sbp_jax.loop import minibatch_plan

# The `TrainConfig` changes of each row; "plain" is the paper's setting, the baseline of the ratios.
OPTIONS = {
    "plain": {},
    "bias": {"bias": True},
    "skip": {"skip": True},
    "dropout": {"dropout": 0.1},
    "layer_lams": {"layer_lams": (1.0, 0.5)},
    "lam_schedule": {"lam_schedule": "warmup_ramp", "lam_warmup": 50, "lam_ramp": 100},
    "target_active": {"target_active": 0.5},
    "proximal": {"penalty": "proximal"},
    "minibatch": {"batch_size": 32},
}
PEER_OPTIONS = ("plain", "bias")  # what `peers.torch_batched.BatchedSBP` implements

# The nets of the table (`benchmarks.nets`: config and data): XOR [2,4,1] bce, addition [2,8,1] mse,
# a tabular [30,64,1] bce net on breast_cancer (341 training rows).
NETS: dict[str, TrainConfig] = {net: nets.NETS[net] for net in ("xor", "addition", "breast_cancer")}

# mode -> net -> (configs, epochs, options). --full: 4,096 configs (2k–8k configs: enough to fill both sides' batches) × 300 epochs
# for the small nets; the [30,64,1] net at 256 configs, plain and bias only (autodiff kernel, 2026-12-01:
# 1.4e4 config-epochs/s quiet, 3–8e3 under CPU contention, i.e. 6–25 s a run plus a 10–27 s warm-up;
# every other option there would add ~0.5–1 min; its peer, compiled and eager, about as much).
# --quick: a smoke test of the table's plumbing (ratios, kernel, peer columns, the wide net's data), plain
# and bias on XOR and [30,64,1]: each row compiles a program (~2.5 s on XOR, 4–8 s on [30,64,1]), so every
# option on XOR would add ~20 s to each quick run; the options' own paths are the engine tests' job.
PLANS = {
    "full": {"xor": (4096, SWEEP_MIN_EPOCHS, tuple(OPTIONS)),
             "addition": (4096, SWEEP_MIN_EPOCHS, tuple(OPTIONS)),
             "breast_cancer": (256, SWEEP_MIN_EPOCHS, PEER_OPTIONS)},
    "quick": {"xor": (16, 5, PEER_OPTIONS),
              "breast_cancer": (16, 5, PEER_OPTIONS)},
}


def _peer_best(net: str, cfg: TrainConfig, data: Dataset, n: int, epochs: int, torch_device: str,
               peer_kw: dict, repeats: int, mem: Memory) -> dict:
    """The batched peer on `n` configs of `cfg` at its best: all configs in one batch with `peer_kw`
    (`peer`); when compiled, also above `max(PEER_CHUNKS)` configs in chunks (`peer_chunked`, the best
    of its chunk sizes, as `run.main` does) and at or below it eager (`peer_eager`). On [30,64,1] at
    256 configs compiled won on a quiet machine (plain 2.3e4 vs 1.4e4 config-epochs/s eager, bias 1.8e4
    vs 7.5e3) but not under CPU contention (plain 5.5–6.1e3 compiled vs 8.6–9.6e3 eager), so both are
    timed there. `peer_best_config_epochs_per_s` is the fastest."""
    def one_batch(kw: dict) -> dict:
        rec = measure(lambda: peer_sweep(net, n, epochs, torch_device, kw, cfg=cfg, data=data), n, epochs, repeats, mem)
        return dict(rec, variant=kw)

    out = {"peer": one_batch(peer_kw)}
    if peer_kw["compile"] and n > max(PEER_CHUNKS):
        out["peer_chunked"] = peer_chunked(net, n, epochs, torch_device, peer_kw, repeats, cfg=cfg, data=data)
    elif peer_kw["compile"]:
        out["peer_eager"] = one_batch(dict(peer_kw, compile=False))
    return dict(out, peer_best_config_epochs_per_s=max(r["config_epochs_per_s"] for r in out.values()))


def flops_per_config_epoch(cfg: TrainConfig, n_samples: int) -> float:
    """Floating-point operations of one full-batch epoch of `cfg` on `n_samples` samples, counted from its
    matrix products only: 2 per multiply-add, 3 products per layer (the forward pass, the backward
    pass's deltas and its weight gradients), `cfg.layout.total_edges` multiply-adds per sample each."""
    return 2.0 * 3.0 * n_samples * cfg.layout.total_edges


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The machine's dense float32 matrix-product rate in GFLOP/s, measured now: XLA's jitted
    `(size, size) @ (size, size)` on the default device, best of `repeats` after a warm-up. What a
    compute-bound sweep of large layers can at best approach."""
    a = jnp.ones((size, size), jnp.float32)
    f = jax.jit(lambda u, v: u @ v)
    f(a, a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a, a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * size ** 3 / best / 1e9


def measure_options(mode: str, torch_device: str, have_torch: bool, peer_kw_for: Callable[[int], dict],
                    mem: Memory, on_row: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Time every (net, option) row of `PLANS[mode]`; print one line per row.

    Args:
      mode: 'full' or 'quick'.
      torch_device: 'cpu' or 'cuda' (the peer's device).
      have_torch: also time the batched peer on the `PEER_OPTIONS` rows.
      peer_kw_for: config count -> `BatchedSBP` keyword arguments (`run.main`'s choice of compile;
        asked for at least `PEER_COMPILE_MIN` configs, see the module docstring).
      mem: the section memory meter.
      on_row: called with the rows so far after each row (e.g. to write the JSON).
    Returns:
      one dict per row: `net`, `layers`, `loss`, `option`, `changes` (the `TrainConfig` fields set),
      `configs`, `epochs`, `config_epochs_per_s`, `ratio_to_plain`, `steps_per_epoch`,
      `config_steps_per_s`, `ratio_to_plain_per_step` (config-steps/s over the plain row's),
      `kernel`, `gflops` (rate × `flops_per_config_epoch`), `matmul_gflops` (`matmul_gflops()`, once per
      call) and `fraction_of_matmul`, `ours` (`throughput.measure`'s
      record: seconds, warm-up, chunk, memory); on peer rows also `peer`, `peer_chunked` or
      `peer_eager` (see `_peer_best`), `peer_best_config_epochs_per_s` and `ratio_ours_over_peer_best`.
    """
    repeats = 1 if mode == "quick" else 2
    size = 512 if mode == "quick" else 2048
    roof = matmul_gflops(size)
    print(f"options: dense float32 matmul {roof:.3g} GFLOP/s on this machine now ({size}², XLA)", flush=True)
    rows = []
    for net, (n, epochs, options) in PLANS[mode].items():
        base = NETS[net]
        data = nets.load(net)
        plain_rate = None
        for option in options:
            cfg = base.replace(**OPTIONS[option])
            ours = measure(lambda: ours_sweep(net, n, epochs, None, cfg=cfg, data=data), n, epochs, repeats, mem)
            rate = ours["config_epochs_per_s"]
            plain_rate = rate if option == "plain" else plain_rate
            steps = minibatch_plan(len(data.x_train), cfg.batch_size)[0]
            row = {"net": net, "layers": list(cfg.layers), "loss": cfg.loss, "option": option,
                   "changes": OPTIONS[option], "configs": n, "epochs": epochs, "config_epochs_per_s": rate,
                   "ratio_to_plain": rate / plain_rate if plain_rate else None, "steps_per_epoch": steps,
                   "config_steps_per_s": rate * steps,
                   "ratio_to_plain_per_step": rate * steps / plain_rate if plain_rate else None,
                   "kernel": ours["kernel"], "ours": ours}
            gflops = rate * flops_per_config_epoch(cfg, len(data.x_train)) / 1e9
            row.update(gflops=gflops, matmul_gflops=roof, fraction_of_matmul=gflops / roof)
            msg = (f"options {net:13s} {option:13s} C={n:>5d} E={epochs:>4d}: {rate:.3g} config-epochs/s, "
                   f"{row['ratio_to_plain'] or float('nan'):.2f}x plain, kernel {row['kernel']}")
            if steps > 1:
                msg += f"; {steps} steps/epoch: {rate * steps:.3g} config-steps/s, {row['ratio_to_plain_per_step']:.2f}x plain per step"
            if have_torch and option in PEER_OPTIONS:
                peer_kw = peer_kw_for(max(n, PEER_COMPILE_MIN))
                row.update(_peer_best(net, cfg, data, n, epochs, torch_device, peer_kw, repeats, mem))
                row["ratio_ours_over_peer_best"] = rate / row["peer_best_config_epochs_per_s"]
                msg += (f"; torch peer best {row['peer_best_config_epochs_per_s']:.3g} "
                        f"-> {row['ratio_ours_over_peer_best']:.2f}x")
            msg += f"; {gflops:.3g} GFLOP/s in matrix products ({100 * gflops / roof:.0f} % of the matmul rate)"
            print(msg, flush=True)
            rows.append(row)
            if on_row:
                on_row(rows)
    return rows
