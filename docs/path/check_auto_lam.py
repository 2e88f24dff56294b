"""λ auto (1-SE on validation) on three small CSVs, with and without bias edges:

* planted: 600 rows, 8 columns p, q, a … f ~ N(0, 1), y = 1.5·p − 2·q + N(0, 0.1²)
  (only p and q matter);
* parity-3: 400 rows, bits x1, x2, x3 ~ Bernoulli(½), y = x1 ⊕ x2 ⊕ x3;
* nonlinear: 1000 rows, 6 columns x0 … x5 ~ N(0, 1), y = sin(2·x2)·x5 + x0² + N(0, 0.1²)
  (x0, x2, x5 matter; x0² is not positively homogeneous, so a bias-free net cannot fit it);
* and, for scale, the bundled breast_cancer set (569 × 30, binary).

Each CSV is written to a temporary folder and loaded through the ordinary
registry (`sources.load_source("csv", ...)`: 60/20/20 split, data seed 0,
standardised), run with the tabular defaults (`sources.default_config`:
[n_in, 32, 1], lr 3e-3, ε 1e-2) through `sbp_jax.path.auto_lam` (5 seeds), and
compared with the tabular default fixed λ = 1e-3 (1000 epochs, `sweep.run_grid`).

    python docs/path/check_auto_lam.py [--seeds 5] [--out docs/path]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sbp_jax import io, results, sources, sweep
from sbp_jax.path import auto_lam, plot_path, run_outputs


def write_planted(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 8))
    y = 1.5 * x[:, 0] - 2.0 * x[:, 1] + 0.1 * rng.normal(size=600)
    _write(path, ["p", "q", "a", "b", "c", "d", "e", "f"], x, y)


def write_parity(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(400, 3))
    _write(path, ["x1", "x2", "x3"], x, x.sum(axis=1) % 2)


def write_nonlinear(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1000, 6))
    y = np.sin(2 * x[:, 2]) * x[:, 5] + x[:, 0] ** 2 + 0.1 * rng.normal(size=1000)
    _write(path, [f"x{i}" for i in range(6)], x, y)


def _write(path: Path, names, x, y) -> None:
    with open(path, "w") as f:
        f.write(",".join(list(names) + ["y"]) + "\n")
        for row, t in zip(x, y):
            f.write(",".join(f"{v:.6g}" for v in row) + f",{t:.6g}\n")


def check(name: str, csv: Path | None, bias: bool, seeds: int, out: Path) -> dict:
    ds = sources.load_source("csv", path=str(csv), target="y") if csv else sources.load_source(name)
    cfg = sources.default_config("csv" if csv else name, ds).replace(bias=bias)
    metric = sources.headline(ds)
    t0 = time.perf_counter()
    a = auto_lam(cfg, ds, seeds)
    s = time.perf_counter() - t0
    outs, grid = run_outputs(a, ds)
    recs = results.records(outs, grid, cfg, ds)
    fixed = sweep.run_grid(cfg, ds, sweep.make_grid(cfg, seeds=seeds))
    frecs = results.records(fixed, sweep.make_grid(cfg, seeds=seeds), cfg, ds)
    io.save_figure(plot_path(a, f"{name}, bias={bias}: λ path, {seeds} seeds"), out / f"path_{name}_bias{int(bias)}.png")
    key = f"pruned_test_{metric}"
    return {"data": name, "bias": bias, "metric": metric, "lam": a.lam, "reason": a.choice.reason,
            "best_validation": a.best.reason, "seconds": s,
            "auto": [{"seed": r["seed"], "features": r["selected_features"], key: r["metrics"][key],
                      "effective_edges": r["structure"]["effective_edges"]} for r in recs],
            "fixed_lam_1e-3": [{"seed": r["seed"], "features": r["selected_features"], key: r["metrics"][key],
                                "effective_edges": r["structure"]["effective_edges"]} for r in frecs],
            "importances": [{k: r[k] for k in ("rank", "feature", "exit_lam_median", "stability")}
                            for r in a.importances]}


def _line(r: dict) -> str:
    key = f"pruned_test_{r['metric']}"
    feats = lambda x: f"{{{','.join(x['features'])}}} " if len(x["features"]) <= 8 else f"{len(x['features'])} inputs, "
    fmt = lambda rs: "; ".join(f"{feats(x)}{x[key]:.4f} ({x['effective_edges']} e)" for x in rs)
    return (f"| {r['data']} | {r['bias']} | {r['lam']:.3g} | {fmt(r['auto'])} | {fmt(r['fixed_lam_1e-3'])} | "
            f"{', '.join(x['feature'] for x in r['importances'][:3])} | {r['seconds']:.1f} |")


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("docs/path"))
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        planted, parity, nonlinear = (Path(tmp) / f"{n}.csv" for n in ("planted", "parity3", "nonlinear"))
        write_planted(planted)
        write_parity(parity)
        write_nonlinear(nonlinear)
        for name, csv in (("planted", planted), ("parity3", parity), ("nonlinear", nonlinear),
                          ("breast_cancer", None)):
            for bias in (False, True):
                rows.append(check(name, csv, bias, a.seeds, a.out))
                print(_line(rows[-1]), flush=True)
    head = ["| data | bias | λ (1-SE) | λ auto: per seed {selected} pruned test metric (effective edges) | fixed λ = 1e-3 "
            "(tabular default), same | top 3 importances | s (auto, incl. compile) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    command = ("python docs/path/check_auto_lam.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    io.write_json(a.out / "auto_lam.json", {"rows": rows, "provenance": io.provenance(argv)})
    with io.atomic_path(a.out / "auto_lam.md") as tmp:
        tmp.write_text("# λ auto (1-SE on validation) on the planted, parity-3 and nonlinear CSVs, and breast cancer\n\n"
                       f"Command: `{command}`\n\n" + "\n".join(head + [_line(r) for r in rows]) + "\n\n"
                       + "\n".join(f"* {r['data']}, bias={r['bias']}: {r['reason']}" for r in rows) + "\n")
    print("\n".join(head + [_line(r) for r in rows]))
    return rows


if __name__ == "__main__":
    main()
