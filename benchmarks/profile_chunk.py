"""Where an epoch of the sweep engine spends its time, kernel by kernel (CPU).

    python -m benchmarks.profile_chunk --task addition --chunk 128 [--epochs 50] [--top 15] [--json F]
        [--option bias=True ...]

Compiles `engine.train_chunk` (with the gradient kernel `kernels.select` picks for the task's
config, changed by the `--option`s) for one chunk of `--chunk` configs on ONE device
(XLA may still run independent kernels of the program on both cores), runs it
once to warm up, then once under `jax.profiler.trace` with XLA:CPU's per-kernel
trace events on (`--xla_cpu_enable_xprof_traceme`, set before jax is imported),
reads the trace back with `jax.profiler.ProfileData` and prints, per XLA kernel
(fusion, library call such as a YNNPACK reduction or product), its summed
thread time per epoch and its share of all kernel time. Tracing adds overhead to
every kernel, so read shares, not absolute times; the untraced wall time per
epoch is printed too. This is how the kernel changes in benchmarks/README.md
were chosen.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

if "jax" in sys.modules:  # the flag below must be set before XLA:CPU starts
    raise RuntimeError("benchmarks.profile_chunk must be imported before jax")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import collections  # noqa: E402
import dataclasses  # noqa: E402
import glob  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.nets import NETS as TASK_CONFIGS, load  # noqa: E402
from sbp_jax import engine, io  # noqa: E402
from sbp_jax.config import TrainConfig  # noqa: E402
from sbp_jax.kernels import select  # noqa: E402
from sbp_jax.loop import Hyper  # noqa: E402

# trace events that are not XLA kernels: the executor, Python frames, waits
_NOT_KERNELS = ("ThunkExecutor", "Await", "PjitFunction", "$", "while", "cond", "call")


def kernel_times(trace_dir: str) -> collections.Counter:
    """Summed duration in ns of every XLA kernel event in the trace under `trace_dir`."""
    paths = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError(f"no trace written under {trace_dir}")
    total: collections.Counter = collections.Counter()
    for plane in jax.profiler.ProfileData.from_file(paths[0]).planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_XLA"):  # XLA's worker threads and its client thread
                continue
            for ev in line.events:
                if not ev.name.startswith(_NOT_KERNELS):
                    total[ev.name] += ev.duration_ns
    return total


def profile(task: str, chunk: int, epochs: int, options: dict | None = None) -> dict:
    """Per-kernel thread time per epoch of one chunk of `chunk` configs of `task`
    (with the `TrainConfig` fields `options` changed), through the kernel `kernels.select` picks."""
    if task not in TASK_CONFIGS:
        raise ValueError(f"task={task!r} is invalid: allowed {sorted(TASK_CONFIGS)}")
    if chunk < 1 or epochs < 1:
        raise ValueError(f"chunk={chunk}, epochs={epochs} are invalid: allowed integers >= 1")
    cfg = TASK_CONFIGS[task].replace(epochs=epochs, history_every=0, **(options or {}))
    static = cfg.static_part()
    kernel = select(static, single=False).kernel
    d = load(task)
    args = (jnp.asarray(d.x_train), jnp.asarray(d.y_train), jnp.arange(chunk, dtype=jnp.uint32),
            Hyper(*(jnp.full((chunk,), v, jnp.float32) for v in (cfg.lam, cfg.lr, cfg.eps))))
    run = lambda x, y, s, h: engine.train_chunk(static, x, y, jax.vmap(jax.random.key)(s), h, kernel).edges
    compiled = jax.jit(run).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    wall = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            jax.block_until_ready(compiled(*args))
        times = kernel_times(tmp)
    all_ns = sum(times.values())
    kernels = [dict(name=k, us_per_epoch=v / 1e3 / epochs, share=v / all_ns) for k, v in times.most_common()]
    return dict(task=task, options=options or {}, kernel=kernel, chunk=chunk, epochs=epochs, wall_us_per_epoch=wall / epochs * 1e6,
                kernel_us_per_epoch=all_ns / 1e3 / epochs, kernels=kernels)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile_chunk", description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="addition", choices=sorted(TASK_CONFIGS))
    ap.add_argument("--chunk", type=int, default=128, help="configs in the chunk (one device)")
    ap.add_argument("--epochs", type=int, default=50, help="epochs of the profiled run (times are per epoch)")
    ap.add_argument("--top", type=int, default=15, help="kernels to print")
    ap.add_argument("--option", action="append", default=[], metavar="FIELD=VALUE",
                    help="a TrainConfig field to change, e.g. --option dropout=0.1 (repeatable)")
    ap.add_argument("--json", help="also write the result here (atomically)")
    a = ap.parse_args(argv)
    for flag in ("chunk", "epochs", "top"):
        if getattr(a, flag) < 1:
            ap.error(f"--{flag}={getattr(a, flag)} is invalid: allowed integers >= 1")
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    options = {}
    for item in a.option:
        field, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--option {item!r} is invalid: allowed FIELD=VALUE")
        if field not in fields:
            ap.error(f"--option {item!r} is invalid: {field!r} is no TrainConfig field; allowed {', '.join(fields)}")
        try:
            options[field] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[field] = value
    try:
        TASK_CONFIGS[a.task].replace(**options)
    except (ValueError, TypeError) as ex:
        ap.error(f"--option {' '.join(a.option)!r} is invalid for task {a.task}: {ex}")
    r = profile(a.task, a.chunk, a.epochs, options)
    print(f"{a.task} {options or ''} ({r['kernel']}), chunk {a.chunk}, {a.epochs} epochs: {r['wall_us_per_epoch']:.1f} us/epoch untraced; "
          f"{r['kernel_us_per_epoch']:.1f} us/epoch of kernel thread time traced, {len(r['kernels'])} kernels")
    for k in r["kernels"][:a.top]:
        print(f"  {k['us_per_epoch']:8.2f} us  {100 * k['share']:5.1f} %  {k['name']}")
    if a.json:
        io.write_json(a.json, r)
    return r


if __name__ == "__main__":
    main()
