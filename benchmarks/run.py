"""Benchmarks: sbp_jax against PyTorch peers, measured in one run on one machine.

    python -m benchmarks.run --device cpu --full  [--out benchmarks/results]
    python -m benchmarks.run --device cpu --quick --out /tmp/bench
    python -m benchmarks.run --device cpu --full --options-only --out /tmp/bench_options

Sections (all written to `<out>/bench_<device>.json`, plot `<out>/throughput_<device>.png`):
  * machine: platform, CPU model, cores, versions, devices;
  * agreement: the peers' final edges vs sbp_jax's `train` (`benchmarks.check_peers`);
  * single_run: XOR (1000 epochs) and addition (2000 epochs), one config:
    ours = `train(..., kernel='single')` (first call = compile + run, then the
    steady state, median of repeats; `sbp_jax.train.train` is timed too) vs the
    idiomatic PyTorch loop (`peers.torch_loop`); both record the per-epoch history;
  * sweep: throughput in config-epochs/s for growing config counts, ours =
    `sbp_jax.sweep.run_grid` (history_every=0; compile excluded by a warm-up on
    the same chunk shapes) vs the batched PyTorch peer (`peers.torch_batched`,
    warmed up on the same instance), all configs in one batch and, above 1,024
    compiled configs, also in chunks of 256, 512 and 1,024 configs (a fresh
    instance per size, one chunk timed; its best size counts); with the ratios
    and memory for each. At least 300 epochs
    per sweep measurement (`SWEEP_MIN_EPOCHS`);
  * options: the same sweep throughput per `TrainConfig` option (bias, skip,
    dropout, per-layer λ, λ schedule, target sparsity, proximal, minibatches)
    on XOR, addition and a [30,64,1] breast-cancer net, with the ratio to the
    plain setting, the kernel that ran and, for plain and bias, the ratio to
    the batched peer (`benchmarks.options`; `--options-only` runs just this).
On CPU, XLA is given one host device per core (`XLA_FLAGS`) before jax is
imported, so `run_grid` shards the config axis over all cores.
"""

from __future__ import annotations

import argparse
import os
import sys

_DEVICE = "gpu" if "--device" in sys.argv and sys.argv[sys.argv.index("--device") + 1:][:1] == ["gpu"] else "cpu"
if _DEVICE == "cpu" and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={os.cpu_count()}"
    ).strip()
if _DEVICE == "cpu":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from sbp_jax import kernels, sweep, tasks  # noqa: E402
from sbp_jax.config import TrainConfig  # noqa: E402
from sbp_jax.train import train  # noqa: E402

TASK_CONFIGS = {
    "xor": TrainConfig(layers=(2, 4, 1), loss="bce", lam=1e-2, lr=1e-3, eps=1e-2, epochs=1000),
    "addition": TrainConfig(layers=(2, 8, 1), loss="mse", lam=1e-2, lr=1e-3, eps=1e-2, epochs=2000),
}
FULL_SIZES = (1, 64, 1024, 8192, 32768, 131072)
QUICK_SIZES = (1, 64)


def task_data(name: str):
    return tasks.xor() if name == "xor" else tasks.addition()


# ---------------------------------------------------------------- machine and memory

def machine_info(device: str) -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "device": device,
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "loadavg_at_start": os.getloadavg(),
        "versions": {"jax": jax.__version__, "numpy": np.__version__},
    }
    try:
        import jaxlib

        info["versions"]["jaxlib"] = jaxlib.__version__
    except ImportError:
        pass
    try:
        import torch

        info["versions"]["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if device == "gpu" and torch.cuda.is_available():
            info["torch_device"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["versions"]["torch"] = None
    return info


class Memory:
    """Peak memory of one measured section: host RSS high-water mark (reset per
    section through /proc/self/clear_refs where Linux allows it, else the
    process-lifetime `ru_maxrss`), and on GPU the device peaks of jax and torch."""

    def __init__(self, device: str):
        self.device = device

    @staticmethod
    def _hwm_kib() -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def reset(self):
        self.resettable = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.resettable = True
        except OSError:
            pass
        if self.device == "gpu":
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.reset_peak_memory_stats()
            except ImportError:
                pass

    def read(self) -> dict:
        hwm = self._hwm_kib() if self.resettable else None
        out = {
            "peak_rss_mib": round((hwm if hwm is not None else
                                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1),
            "peak_rss_scope": "section" if hwm is not None else "process",
        }
        if self.device == "gpu":
            try:
                stats = jax.devices()[0].memory_stats() or {}
                out["jax_device_peak_mib"] = round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
            except Exception:  # noqa: BLE001 - not every backend reports stats
                pass
            try:
                import torch

                if torch.cuda.is_available():
                    out["torch_device_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            except ImportError:
                pass
        return out


# ---------------------------------------------------------------- single run latency

def _block(tree):
    return jax.block_until_ready(tree)


def single_run(name: str, repeats: int, torch_device: str, epochs: int | None = None,
               loop_repeats: int = 3) -> dict:
    cfg = TASK_CONFIGS[name]
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    d = task_data(name)
    key = jax.random.key(0)

    def timed_calls(fn):
        t0 = time.perf_counter()
        _block(fn(cfg, d.x_train, d.y_train, key))
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _block(fn(cfg, d.x_train, d.y_train, key))
            times.append(time.perf_counter() - t0)
        return first, times

    # ours = the single-run kernel forced (`train(..., kernel="single")`); `train` with the automatic
    # choice is timed too, and `train_is_train_single` checks that it runs the same program.
    train_single = functools.partial(train, kernel="single")
    first, times = timed_calls(train_single)
    steady = statistics.median(times)
    t_first, t_times = timed_calls(train)
    same = all(bool(np.array_equal(np.asarray(a), np.asarray(b))) for a, b in zip(
        jax.tree.leaves(train(cfg, d.x_train, d.y_train, key)), jax.tree.leaves(train_single(cfg, d.x_train, d.y_train, key))))
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
    try:
        from benchmarks.peers import torch_loop
    except ImportError:
        return out
    from sbp_jax.network import init_edges

    import torch

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


# ---------------------------------------------------------------- sweep throughput

def make_sweep_grid(cfg: TrainConfig, n: int) -> sweep.Grid:
    """n configs: 16 λ values (log-spaced 1e-4..1e-1) × n/16 seeds, or n seeds at cfg.lam."""
    if n >= 16 and n % 16 == 0:
        return sweep.make_grid(cfg, lams=np.geomspace(1e-4, 1e-1, 16).tolist(), seeds=n // 16)
    return sweep.make_grid(cfg, seeds=n)


SWEEP_MIN_EPOCHS = 300  # long enough that per-call and per-step overheads are amortised on both sides


def sweep_epochs(name: str, n: int, mode: str) -> int:
    if mode == "quick":
        return 20
    full = TASK_CONFIGS[name].epochs
    work = {"xor": 2e6, "addition": 5e5}[name]  # config-epochs per measurement (time budget)
    return int(min(full, max(SWEEP_MIN_EPOCHS, round(work / n / 50) * 50)))


def ours_sweep(name: str, n: int, epochs: int, chunk: int | None, *, cfg: TrainConfig | None = None,
               data: tasks.TaskData | None = None):
    """Warm up (compile) and return `(info, timed)`: `timed()` runs the whole grid once. `info` names
    the kernel `run_grid` ran (`kernel`, None before run_grid recorded it). `cfg` and `data`
    replace the task's config and data (`benchmarks.options`: other options and nets)."""
    cfg = (cfg or TASK_CONFIGS[name]).replace(epochs=epochs, history_every=0)
    d = task_data(name) if data is None else data
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
               cfg: TrainConfig | None = None, data: tasks.TaskData | None = None) -> tuple:
    """The batched peer on n configs of the task (or of `cfg` and `data`: plain or `bias=True`, what
    `BatchedSBP` implements), warmed up; returns `(info, timed)` like `ours_sweep`."""
    import torch

    from benchmarks.peers.torch_batched import BatchedSBP

    cfg = cfg or TASK_CONFIGS[name]
    d = task_data(name) if data is None else data
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


PEER_COMPILE_MIN = 1024  # --peer-compile auto: compile from this many configs (eager wins below, on tiny nets)

# Chunk sizes tried for the batched peer on big grids (a fresh compiled instance each; its best is kept).
# Measured: its rate is ~flat from 256 to 1,024 configs and falls beyond (its activations spill), and a
# compiled instance is sometimes ~3x slower than another of the same shape (inductor/OpenMP), so one
# size, one instance would understate it at random.
PEER_CHUNKS = (256, 512, 1024)


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


def measure(setup, n: int, epochs: int, repeats: int, mem: Memory) -> dict:
    mem.reset()
    info, timed = setup()
    times = [timed() for _ in range(repeats)]
    info.update(seconds=min(times), seconds_all=times, config_epochs_per_s=n * epochs / min(times),
                memory=mem.read())
    return info


# ---------------------------------------------------------------- output

def write_json_atomic(path: str, obj) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = {"xor": "C0", "addition": "C1"}
    for rec_task in ("xor", "addition"):
        recs = [r for r in results["sweep"] if r["task"] == rec_task]
        if not recs:
            continue
        xs = [r["configs"] for r in recs]
        ax.loglog(xs, [r["ours"]["config_epochs_per_s"] for r in recs], "o-", color=colors[rec_task],
                  label=f"sbp_jax {rec_task}")
        if all("peer" in r for r in recs):
            ax.loglog(xs, [r["peer"]["config_epochs_per_s"] for r in recs], "s--", color=colors[rec_task],
                      alpha=0.7, label=f"torch batched {rec_task}")
        ch = [r for r in recs if "peer_chunked" in r]
        if ch:
            ax.loglog([r["configs"] for r in ch], [r["peer_chunked"]["config_epochs_per_s"] for r in ch], "^:",
                      color=colors[rec_task], alpha=0.7, label=f"torch batched {rec_task}, 1k chunks")
    m = results["machine"]
    ax.set_xlabel("configs in the sweep")
    ax.set_ylabel("config-epochs / s")
    ax.set_title(f"{m['device']}: {m['cpu_model'] if m['device'] == 'cpu' else m['jax_devices'][0]}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny sizes (the test suite)")
    mode.add_argument("--full", action="store_true", help="1 .. 128k configs (default)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=None,
                   help="override the config counts, e.g. 1,64,1024")
    p.add_argument("--tasks", default="xor,addition")
    p.add_argument("--chunk", type=int, default=None, help="run_grid chunk per device (default: its own)")
    p.add_argument("--peer-compile", choices=("auto", "on", "off"), default="auto",
                   help="torch.compile the batched peer (auto: in --full for >= 1024 configs, where "
                        "it is faster than eager on CPU; never in --quick)")
    p.add_argument("--no-peer", action="store_true", help="skip the PyTorch peers")
    p.add_argument("--options", action=argparse.BooleanOptionalAction, default=True,
                   help="the per-option sweep table (benchmarks.options; a tiny one in --quick)")
    p.add_argument("--options-only", action="store_true",
                   help="machine, agreement and the per-option table only (no single runs, no sweeps)")
    args = p.parse_args(argv)
    if args.options_only and not args.options:
        p.error("--options-only and --no-options contradict each other")
    run_mode = "quick" if args.quick else "full"
    sizes = args.sizes or (QUICK_SIZES if run_mode == "quick" else FULL_SIZES)
    task_names = [] if args.options_only else [t for t in args.tasks.split(",") if t]

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

    peer_kw = {"forward": "bmm", "backward": "manual", "compile": args.peer_compile}

    results = {
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks.run"] + (argv or sys.argv[1:])),
        "mode": run_mode,
        "machine": machine_info(args.device),
        "peer_batched": {"class": "benchmarks.peers.torch_batched.BatchedSBP", **peer_kw},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    mem = Memory(args.device)
    out_json = os.path.join(args.out, f"bench_{args.device}.json")
    t_start = time.perf_counter()

    if have_torch:
        from benchmarks import check_peers

        t0 = time.perf_counter()
        kw = dict(seeds=(0,), lams=(1e-2,), lrs=(1e-3, 1e-2)) if run_mode == "quick" else {}
        results["agreement"] = check_peers.check(**kw)
        results["agreement"]["seconds"] = time.perf_counter() - t0
        print(f"agreement: passed={results['agreement']['passed']} "
              f"max|Δ|={max(c['max_abs_diff'] for c in results['agreement']['cases']):.2e}", flush=True)
    else:
        results["agreement"] = {"passed": None, "skipped": "torch not installed"}

    results["single_run"] = {}
    for name in task_names:
        mem.reset()
        if run_mode == "quick":
            r = single_run(name, 3, torch_device, epochs=TASK_CONFIGS[name].epochs // 10, loop_repeats=1)
        else:
            r = single_run(name, 20, torch_device)
        r["memory"] = mem.read()
        results["single_run"][name] = r
        msg = (f"single {name}: ours compile {r['ours_compile_s']:.2f}s, steady {r['ours_steady_s'] * 1e3:.2f} ms")
        if "torch_loop_s" in r:
            msg += (f"; torch loop {r['torch_loop_s'] * 1e3:.0f} ms "
                    f"({r['torch_loop_nohistory_s'] * 1e3:.0f} ms w/o history) -> "
                    f"{r['ratio_torch_loop_over_ours_steady']:.0f}x")
        print(msg, flush=True)
        write_json_atomic(out_json, results)

    results["sweep"] = []
    for name in task_names:
        for n in sizes:
            epochs = sweep_epochs(name, n, run_mode)
            rec = {"task": name, "configs": n, "epochs": epochs}
            reps = 1 if run_mode == "quick" or n > 8192 else 2
            rec["ours"] = measure(lambda: ours_sweep(name, n, epochs, args.chunk), n, epochs, reps, mem)
            msg = f"sweep {name:8s} C={n:>6d} E={epochs:>4d}: ours {rec['ours']['config_epochs_per_s']:.3g}"
            if have_torch:
                rec["peer"] = measure(lambda: peer_sweep(name, n, epochs, torch_device, peer_kw_for(n)),
                                      n, epochs, reps, mem)
                rec["peer"]["variant"] = peer_kw_for(n)
                rec["ratio_ours_over_peer"] = rec["ours"]["config_epochs_per_s"] / rec["peer"]["config_epochs_per_s"]
                msg += (f", torch {rec['peer']['config_epochs_per_s']:.3g} config-epochs/s "
                        f"-> ratio {rec['ratio_ours_over_peer']:.2f}x")
                if n > max(PEER_CHUNKS) and rec["peer"]["variant"]["compile"]:
                    rec["peer_chunked"] = peer_chunked(name, n, epochs, torch_device, peer_kw_for(n), reps)
                    best = max(rec["peer"]["config_epochs_per_s"], rec["peer_chunked"]["config_epochs_per_s"])
                    rec["ratio_ours_over_peer_best"] = rec["ours"]["config_epochs_per_s"] / best
                    msg += (f"; torch in {rec['peer_chunked']['chunk']}-config chunks "
                            f"{rec['peer_chunked']['config_epochs_per_s']:.3g}"
                            f" -> ratio vs best {rec['ratio_ours_over_peer_best']:.2f}x")
            print(msg + f"  (rss ours {rec['ours']['memory']['peak_rss_mib']:.0f} MiB"
                  + (f", torch {rec['peer']['memory']['peak_rss_mib']:.0f} MiB)" if have_torch else ")"), flush=True)
            results["sweep"].append(rec)
            write_json_atomic(out_json, results)

    if args.options:
        from benchmarks.options import measure_options

        def on_row(rows):
            results["options"] = rows
            write_json_atomic(out_json, results)

        measure_options(run_mode, torch_device, have_torch, peer_kw_for, mem, on_row)

    results["total_seconds"] = time.perf_counter() - t_start
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    write_json_atomic(out_json, results)
    try:
        if results["sweep"]:
            plot(results, os.path.join(args.out, f"throughput_{args.device}.png"))
    except Exception as ex:  # noqa: BLE001 - a plot failure must not lose the JSON
        print(f"plot failed: {ex!r}", file=sys.stderr)
    print(f"wrote {out_json} ({results['total_seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
