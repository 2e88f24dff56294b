"""The report of a benchmark run: where it goes, the JSON, the throughput plot and the console lines.

Files are written by the library's atomic writers (`sbp_jax.io.write_json`, `io.save_figure`),
so an interrupted run leaves the previous file or the new one, never half of one.
"""

from __future__ import annotations

import os

from sbp_jax import io

# The committed results of a complete --full run (benchmarks/README.md quotes them).
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Every other run (--quick, a subset of tasks or sizes, ...) goes here, relative to the working
# directory, like the experiments' `runs/<task>`: it never overwrites the committed results.
SCRATCH_DIR = os.path.join("runs", "benchmarks")


def json_path(out: str, device: str) -> str:
    return os.path.join(out, f"bench_{device}.json")


def plot_path(out: str, device: str) -> str:
    return os.path.join(out, f"throughput_{device}.png")


def write(out: str, device: str, results: dict) -> str:
    """Write `results` to `<out>/bench_<device>.json` atomically; return the path."""
    path = json_path(out, device)
    io.write_json(path, results)
    return path


def plot(results: dict, path: str) -> None:
    """Config-epochs/s against configs, log-log: ours and the peer (one batch, and best chunks) per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = {"xor": "C0", "addition": "C1"}
    for task in ("xor", "addition"):
        recs = [r for r in results["sweep"] if r["task"] == task]
        if not recs:
            continue
        xs = [r["configs"] for r in recs]
        ax.loglog(xs, [r["ours"]["config_epochs_per_s"] for r in recs], "o-", color=colors[task],
                  label=f"sbp_jax {task}")
        if all("peer" in r for r in recs):
            ax.loglog(xs, [r["peer"]["config_epochs_per_s"] for r in recs], "s--", color=colors[task],
                      alpha=0.7, label=f"torch batched {task}")
        ch = [r for r in recs if "peer_chunked" in r]
        if ch:
            ax.loglog([r["configs"] for r in ch], [r["peer_chunked"]["config_epochs_per_s"] for r in ch], "^:",
                      color=colors[task], alpha=0.7, label=f"torch batched {task}, 1k chunks")
    m = results["machine"]
    ax.set_xlabel("configs in the sweep")
    ax.set_ylabel("config-epochs / s")
    ax.set_title(f"{m['device']}: {m['cpu_model'] if m['device'] == 'cpu' else m['jax_devices'][0]}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    io.save_figure(fig, path)


# ---------------------------------------------------------------- console lines

def agreement_line(a: dict) -> str:
    return f"agreement: passed={a['passed']} max|Δ|={max(c['max_abs_diff'] for c in a['cases']):.2e}"


def single_line(name: str, r: dict) -> str:
    msg = f"single {name}: ours compile {r['ours_compile_s']:.2f}s, steady {r['ours_steady_s'] * 1e3:.2f} ms"
    if "torch_loop_s" in r:
        msg += (f"; torch loop {r['torch_loop_s'] * 1e3:.0f} ms "
                f"({r['torch_loop_nohistory_s'] * 1e3:.0f} ms w/o history) -> "
                f"{r['ratio_torch_loop_over_ours_steady']:.0f}x")
    return msg


def sweep_line(rec: dict) -> str:
    msg = (f"sweep {rec['task']:8s} C={rec['configs']:>6d} E={rec['epochs']:>4d}: "
           f"ours {rec['ours']['config_epochs_per_s']:.3g}")
    if "peer" in rec:
        msg += (f", torch {rec['peer']['config_epochs_per_s']:.3g} config-epochs/s "
                f"-> ratio {rec['ratio_ours_over_peer']:.2f}x")
    if "peer_chunked" in rec:
        msg += (f"; torch in {rec['peer_chunked']['chunk']}-config chunks "
                f"{rec['peer_chunked']['config_epochs_per_s']:.3g}"
                f" -> ratio vs best {rec['ratio_ours_over_peer_best']:.2f}x")
    msg += f"  (rss ours {rec['ours']['memory']['peak_rss_mib']:.0f} MiB"
    return msg + (f", torch {rec['peer']['memory']['peak_rss_mib']:.0f} MiB)" if "peer" in rec else ")")
