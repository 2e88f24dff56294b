"""Benchmarks: sbp_jax against PyTorch peers, measured in one run on one machine.

    python -m benchmarks.run --device cpu --full                # the committed results: benchmarks/results/
    python -m benchmarks.run --device cpu --quick               # a smoke run: runs/benchmarks/
    python -m benchmarks.run --device cpu --full --options-only --out /tmp/bench_options

Sections (all written to `<out>/bench_<device>.json`, plot `<out>/throughput_<device>.png`):
  * machine: platform, CPU model, cores, versions, devices (`benchmarks.machine`);
  * agreement: the peers' final edges vs sbp_jax's `train` (`benchmarks.check_peers`);
  * single_run: XOR (1000 epochs) and addition (2000 epochs), one config:
    ours = `train(..., kernel='single')` (first call = compile + run, then the
    steady state, median of repeats; `sbp_jax.train.train` is timed too) vs the
    idiomatic PyTorch loop (`peers.torch_loop`); both record the per-epoch history
    (`benchmarks.single`);
  * sweep: throughput in config-epochs/s for growing config counts, ours =
    `sbp_jax.sweep.run_grid` (history_every=0; compile excluded by a warm-up on
    the same chunk shapes) vs the batched PyTorch peer (`peers.torch_batched`,
    warmed up on the same instance), all configs in one batch and, above 1,024
    compiled configs, also in chunks of 256, 512 and 1,024 configs (a fresh
    instance per size, one chunk timed; its best size counts); with the ratios
    and memory for each. At least 300 epochs per sweep measurement
    (`SWEEP_MIN_EPOCHS`; `benchmarks.throughput`);
  * options: the same sweep throughput per `TrainConfig` option (bias, skip,
    dropout, per-layer λ, λ schedule, target sparsity, proximal, minibatches)
    on XOR, addition and a [30,64,1] breast-cancer net, with the ratio to the
    plain setting, the kernel that ran and, for plain and bias, the ratio to
    the batched peer (`benchmarks.options`; `--options-only` runs just this).
The JSON, the plot and the console lines are `benchmarks.report`'s. Only a complete
`--full` run writes to `benchmarks/results/` by default; every other run defaults to
`runs/benchmarks/` (under the working directory).
On CPU, XLA is given one host device per core (`XLA_FLAGS`) before jax is
imported, so `run_grid` shards the config axis over all cores.
"""

from __future__ import annotations

import argparse
import os
import sys


def _configure_host(argv: list[str]) -> None:
    """On CPU (the default device), one XLA host device per core; must run before jax is imported."""
    gpu = any(a == "--device=gpu" or (a == "--device" and argv[i + 1:i + 2] == ["gpu"]) for i, a in enumerate(argv))
    if gpu:
        return
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={os.cpu_count()}"
        ).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


if __name__ == "__main__":  # as a program only: importing this module changes no environment
    _configure_host(sys.argv[1:])

import time  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.machine import Memory, gpu_problems, machine_info  # noqa: E402
from benchmarks.nets import TASK_CONFIGS  # noqa: E402
from benchmarks.single import single_run  # noqa: E402
from benchmarks.throughput import PEER_COMPILE_MIN, sweep_record  # noqa: E402

FULL_SIZES = (1, 64, 1024, 8192, 32768, 131072)
QUICK_SIZES = (1, 64)
DEFAULT_TASKS = "xor,addition"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="where both sides run (gpu: JAX and torch must each see an NVIDIA GPU)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every section (minutes)")
    mode.add_argument("--full", action="store_true", help="1 .. 128k configs (the default; ~16 min on 2 cores)")
    p.add_argument("--out", default=None,
                   help=f"output folder (default: benchmarks/results/ for a complete --full run, the results "
                        f"benchmarks/README.md quotes; {report.SCRATCH_DIR}/ under the working directory for "
                        "any other run)")
    p.add_argument("--sizes", default=None,
                   help="config counts of the sweeps instead of the mode's, comma-separated, e.g. 1,64,1024")
    p.add_argument("--tasks", default=DEFAULT_TASKS,
                   help=f"tasks of the single runs and sweeps, comma-separated, from {','.join(TASK_CONFIGS)}")
    p.add_argument("--chunk", type=int, default=None,
                   help="configs per device per chunk for run_grid (default: run_grid's own choice)")
    p.add_argument("--peer-compile", choices=("auto", "on", "off"), default="auto",
                   help=f"torch.compile the batched peer (auto: in --full for >= {PEER_COMPILE_MIN} configs, "
                        "where it is faster than eager on CPU; never in --quick)")
    p.add_argument("--no-peer", action="store_true", help="skip the PyTorch peers (time sbp_jax alone)")
    p.add_argument("--options", action=argparse.BooleanOptionalAction, default=True,
                   help="the per-option sweep table (a tiny one in --quick)")
    p.add_argument("--options-only", action="store_true",
                   help="machine, agreement and the per-option table only (no single runs, no sweeps)")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the flags; a bad value ends the program with exit status 2 and one line
    naming the flag, the value and what is allowed, before any work starts."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.options_only and not args.options:
        p.error("--options-only and --no-options contradict each other")
    if args.sizes is not None:
        raw = args.sizes
        try:
            args.sizes = [int(v) for v in raw.split(",")]
        except ValueError:
            args.sizes = []
        if not args.sizes or min(args.sizes) < 1:
            p.error(f"--sizes={raw!r} is invalid: allowed comma-separated integers >= 1, e.g. 1,64,1024")
    args.task_names = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in args.task_names if t not in TASK_CONFIGS]
    if unknown:
        p.error(f"--tasks={args.tasks!r} is invalid: {unknown[0]!r} is no task; allowed a comma-separated "
                f"subset of {','.join(TASK_CONFIGS)}")
    if args.chunk is not None and args.chunk < 1:
        p.error(f"--chunk={args.chunk} is invalid: allowed an integer >= 1 (or leave it out)")
    if args.device == "gpu":
        problems = gpu_problems(need_torch=not args.no_peer)
        if problems:
            allowed = "cpu" if "jax" in problems else "cpu, or gpu with --no-peer"
            p.error(f"--device=gpu is invalid: {' / '.join(problems.values())}; allowed: {allowed}")
    args.mode = "quick" if args.quick else "full"
    if args.out is None:
        args.out = report.RESULTS_DIR if is_complete_full_run(args) else report.SCRATCH_DIR
    return args


def is_complete_full_run(args: argparse.Namespace) -> bool:
    """Whether `args` asks for the whole --full measurement (every task, size, section and peer, the
    default chunking): only such a run may default to the committed `benchmarks/results/`."""
    return (args.mode == "full" and args.sizes is None and args.tasks == DEFAULT_TASKS and args.chunk is None
            and args.peer_compile == "auto" and not args.no_peer and args.options and not args.options_only)


def main(argv=None) -> dict:
    args = parse_args(argv)
    run_mode = args.mode
    sizes = args.sizes or (QUICK_SIZES if run_mode == "quick" else FULL_SIZES)
    task_names = [] if args.options_only else args.task_names

    have_torch = False
    if not args.no_peer:
        try:
            import torch

            torch.set_num_threads(os.cpu_count() if args.device == "cpu" else torch.get_num_threads())
            have_torch = True
        except ImportError:
            print("torch not installed: peers skipped (pip install -e '.[bench]')", file=sys.stderr)
    torch_device = "cuda" if args.device == "gpu" else "cpu"

    def peer_kw_for(n: int) -> dict:
        auto = run_mode == "full" and n >= PEER_COMPILE_MIN
        compile_peer = {"auto": auto, "on": True, "off": False}[args.peer_compile]
        return {"forward": "bmm", "backward": "manual", "compile": compile_peer}

    results = {
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks.run"] + (argv or sys.argv[1:])),
        "mode": run_mode,
        "machine": machine_info(args.device),
        "peer_batched": {"class": "benchmarks.peers.torch_batched.BatchedSBP", "forward": "bmm",
                         "backward": "manual", "compile": args.peer_compile},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    mem = Memory(args.device)
    t_start = time.perf_counter()

    def save():
        return report.write(args.out, args.device, results)

    if have_torch:
        from benchmarks import check_peers

        t0 = time.perf_counter()
        kw = dict(seeds=(0,), lams=(1e-2,), lrs=(1e-3, 1e-2)) if run_mode == "quick" else {}
        results["agreement"] = check_peers.check(**kw)
        results["agreement"]["seconds"] = time.perf_counter() - t0
        print(report.agreement_line(results["agreement"]), flush=True)
    else:
        results["agreement"] = {"passed": None, "skipped": "torch not installed" if not args.no_peer else "--no-peer"}

    results["single_run"] = {}
    for name in task_names:
        mem.reset()
        if run_mode == "quick":
            r = single_run(name, 3, torch_device, epochs=TASK_CONFIGS[name].epochs // 10, loop_repeats=1,
                           peer=have_torch)
        else:
            r = single_run(name, 20, torch_device, peer=have_torch)
        r["memory"] = mem.read()
        results["single_run"][name] = r
        print(report.single_line(name, r), flush=True)
        save()

    results["sweep"] = []
    for name in task_names:
        for n in sizes:
            rec = sweep_record(name, n, run_mode, chunk=args.chunk, peer_kw=peer_kw_for(n) if have_torch else None,
                               torch_device=torch_device, mem=mem)
            print(report.sweep_line(rec), flush=True)
            results["sweep"].append(rec)
            save()

    if args.options:
        from benchmarks.options import measure_options

        def on_row(rows):
            results["options"] = rows
            save()

        measure_options(run_mode, torch_device, have_torch, peer_kw_for, mem, on_row)

    results["total_seconds"] = time.perf_counter() - t_start
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    out_json = save()
    try:
        if results["sweep"]:
            report.plot(results, report.plot_path(args.out, args.device))
    except Exception as ex:  # noqa: BLE001 - a plot failure must not lose the JSON
        print(f"plot failed: {ex!r}", file=sys.stderr)
    print(f"wrote {out_json} ({results['total_seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
