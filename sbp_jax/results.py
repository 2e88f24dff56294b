"""Runs into results: the one place that turns a sweep's stacked outputs into
per-run records, per-(λ, lr, ε) summaries and the files every CLI writes.

A run over seeds is a grid with one (λ, lr, ε) group, so a single
experiment and a λ × seed sweep share every step:

    out = sweep.run_grid(cfg, ds, grid)
    recs = records(out, grid, cfg, ds)            # one dict per config
    groups = summarise(recs, out.result.history, cfg.history_every)
    write(folder, document(...), out, grid)       # results.json + edges.npz, atomically

Intervals respect their quantity's range (`stats.describe` with
`stats.bounds_of`): a bootstrap percentile interval for bounded metrics and
counts, the t-interval for unbounded ones.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from . import io, stats
from .config import TrainConfig
from .datasets import Dataset
from .metrics import evaluate
from .structure import selected_features_per_run, structure_dict
from .chunks import SPLITS, RunOutputs
from .sweep import Grid, select


def metric_arrays(out: RunOutputs) -> dict[str, np.ndarray]:
    """`{split_metric: (C,) array}` over the splits `out` has (`chunks.SPLITS`)."""
    return {f"{split}_{k}": np.asarray(v) for split in SPLITS for k, v in getattr(out, split).items()}


def evaluate_stacked(edges, x, y, cfg: TrainConfig) -> dict[str, np.ndarray]:
    """Metrics of every run's net on `(x, y)`: `edges` with a leading run axis
    `(C, n_out, n_in)` per layer; returns `{metric: (C,) array}`."""
    ev = jax.jit(jax.vmap(lambda e: evaluate(e, x, y, loss=cfg.loss, hidden_activation=cfg.hidden_activation)))
    return {k: np.asarray(v) for k, v in ev(tuple(jax.numpy.asarray(w) for w in edges)).items()}


def records(out: RunOutputs, grid: Grid, cfg: TrainConfig, ds: Dataset,
            extra: dict[str, np.ndarray] | None = None) -> list[dict]:
    """One JSON-ready record per config of `grid`: its (λ, lr, ε, seed), every
    metric (`extra` adds `{name: (C,) array}`, e.g. retrained metrics), its
    structure (`structure.structure_dict`), the input features it still uses,
    the final task loss and the epoch it diverged at (None if it did not)."""
    metric = metric_arrays(out) | dict(extra or {})
    div = np.asarray(out.result.diverged_at)
    task = np.asarray(out.result.history.task_loss)
    edges = [np.asarray(w) for w in out.result.edges]
    selected = selected_features_per_run(tuple(edges), np.asarray(grid.eps, np.float32), ds.feature_names, cfg.bias)
    recs = []
    for i in range(len(grid)):
        r = {"lam": float(grid.lam[i]), "lr": float(grid.lr[i]), "eps": float(grid.eps[i]), "seed": int(grid.seed[i]),
             "metrics": {k: float(v[i]) for k, v in metric.items()},
             "structure": structure_dict(select(out.structure, i), cfg.layout),
             "selected_features": selected[i],
             "final_task_loss": float(task[i, -1]) if task.shape[1] else None,
             "diverged_at_epoch": int(div[i]) if div[i] >= 0 else None}
        recs.append(r)
    return recs


def warn_diverged(recs: list[dict], file=None) -> None:
    """One line on stderr per diverged run: which config, which epoch."""
    for r in recs:
        if r["diverged_at_epoch"] is not None:
            print(f"WARNING: λ={r['lam']:g}, lr={r['lr']:g}, ε={r['eps']:g}, seed {r['seed']} diverged at epoch "
                  f"{r['diverged_at_epoch']} (non-finite loss); excluded from the summary (counted in n_diverged)",
                  file=file or sys.stderr)


def phases(task_loss: np.ndarray, active: np.ndarray, every: int) -> dict:
    """When things happen (median over runs): the epochs at which the task
    loss has made 50 % / 90 % of its total drop, the first epoch with a pruned
    edge and the last epoch at which the active-edge count changed.
    `task_loss`, `active`: `(runs, records)` histories recorded every `every` epochs."""
    if every == 0 or task_loss.shape[1] < 2 or task_loss.shape[0] == 0:
        return {}
    ep = (np.arange(task_loss.shape[1]) + 1) * every - 1
    task = np.asarray(task_loss, np.float64)
    drop = task[:, :1] - task
    total = drop[:, -1:]
    out = {}
    for frac in (0.5, 0.9):
        reached = np.where(total > 0, drop >= frac * total, True)
        out[f"loss_{int(frac * 100)}pct_drop_epoch"] = float(np.median(ep[np.argmax(reached, axis=1)]))
    pruned = active < active[:, :1]
    first = np.where(pruned.any(1), ep[np.argmax(pruned, axis=1)], np.nan)
    changes = np.diff(active, axis=1) != 0
    last = np.where(changes.any(1), ep[1:][changes.shape[1] - 1 - np.argmax(changes[:, ::-1], axis=1)], np.nan)
    out["first_prune_epoch"] = float(np.nanmedian(first)) if np.isfinite(first).any() else None
    out["last_structure_change_epoch"] = float(np.nanmedian(last)) if np.isfinite(last).any() else None
    return out


def _describe(name: str, values) -> dict:
    return stats.describe(values, **stats.bounds_of(name))


def summarise(recs: list[dict], history=None, every: int = 0, *, one_group: bool = False) -> list[dict]:
    """Per (λ, lr, ε) group: every metric, the active and effective edges
    (mean, range-respecting 95 % interval, min, max) over the runs that did
    not diverge; the number that diverged; per-layer active edges; the compact
    architectures and the selected features with their counts; and, given
    the stacked `history` (a `loop.History` aligned with `recs`), the phases.
    With `one_group`, every record is one group (runs whose λ a rule chose
    per run); its λ, lr, ε are None where the runs differ."""
    index = collections.defaultdict(list)
    for i, r in enumerate(recs):
        index[None if one_group else (r["lam"], r["lr"], r["eps"])].append(i)
    out = []
    for key, idx in index.items():  # groups in order of first appearance
        rs = [recs[i] for i in idx]
        if key is None:
            key = tuple(rs[0][k] if len({r[k] for r in rs}) == 1 else None for k in ("lam", "lr", "eps"))
        ok = [r for r in rs if r["diverged_at_epoch"] is None]
        ok_idx = [i for i in idx if recs[i]["diverged_at_epoch"] is None]
        archs = collections.Counter(tuple(r["structure"]["compact_layers"]) for r in ok)
        feats = collections.Counter(f for r in ok for f in r["selected_features"])
        g = {"lam": key[0], "lr": key[1], "eps": key[2], "n_runs": len(rs), "n_diverged": len(rs) - len(ok),
             "metrics": {k: _describe(k, [r["metrics"][k] for r in ok]) for k in rs[0]["metrics"]},
             "active_edges": _describe("active_edges", [r["structure"]["active_edges"] for r in ok]),
             "effective_edges": _describe("effective_edges", [r["structure"]["effective_edges"] for r in ok]),
             "active_per_layer_mean": (np.mean([r["structure"]["active_per_layer"] for r in ok], axis=0).tolist()
                                       if ok else None),
             "compact_layers_counts": [{"layers": list(a), "count": c} for a, c in archs.most_common()],
             "selected_features_counts": dict(feats.most_common())}
        if history is not None and ok_idx:
            g["phases"] = phases(np.asarray(history.task_loss)[ok_idx], np.asarray(history.active_edges)[ok_idx],
                                 every)
        out.append(g)
    return out


def document(name: str, cfg: TrainConfig, ds: Dataset, data_params: dict, recs: list[dict], summary: list[dict],
             *, paper: dict | None = None, timing: dict | None = None, argv=None, **extra: Any) -> dict:
    """The results.json document: task name, the shared config (λ, lr, ε of a
    sweep are in `grid`), the data (description and the parameters it was
    loaded with), the grid's values, records, summary, the paper's numbers,
    provenance, timing, and any `extra` sections."""
    grid = {"lams": sorted({r["lam"] for r in recs}), "lrs": sorted({r["lr"] for r in recs}),
            "epss": sorted({r["eps"] for r in recs}), "seeds": sorted({r["seed"] for r in recs})}
    conf = cfg.to_dict()
    for field, values in (("lam", grid["lams"]), ("lr", grid["lrs"]), ("eps", grid["epss"])):
        if len(values) > 1:
            conf[field] = None
    return {"task": name, "config": conf, "data": ds.info() | {"params": data_params}, "grid": grid,
            "records": recs, "summary": summary, "paper": paper or {}, "provenance": io.provenance(argv),
            "timing": timing or {}, **extra}


def ensure_folder(folder: str | Path) -> Path:
    """Create `folder` (and its parents); raises `OSError` naming it when it
    cannot be created — call it before training, not after."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"--out={str(folder)!r} is invalid: cannot create the folder ({e.strerror or e}): allowed a "
                      "writable path") from None
    return folder


def write(folder: str | Path, doc: dict, out: RunOutputs, grid: Grid) -> None:
    """Write `results.json` and `edges.npz` (every config's final edges, with
    its λ, lr, ε and seed) under `folder`, each atomically. Raises
    `OSError` naming the folder when it cannot be created."""
    folder = ensure_folder(folder)
    io.write_json(folder / "results.json", doc)
    io.write_npz(folder / "edges.npz", lam=np.asarray(grid.lam), lr=np.asarray(grid.lr), eps=np.asarray(grid.eps),
                 seed=np.asarray(grid.seed), **{f"layer{l}": np.asarray(w) for l, w in enumerate(out.result.edges)})
