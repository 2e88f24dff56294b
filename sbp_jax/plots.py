"""Matplotlib figures (Agg backend): training dynamics and the learned graph of a run, λ sweeps,
topology statistics and threshold sensitivity.

Each function returns a `Figure`; save it with `io.save_figure` (atomic).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .layout import layout_of  # noqa: E402
from .structure import live_nodes, masks  # noqa: E402


def _band(ax, x, runs, label, color):
    """Median line and 10–90 % band over runs (rows) of `runs` `(C, R)`."""
    runs = np.asarray(runs, np.float64)
    med = np.nanmedian(runs, axis=0)
    ax.plot(x, med, color=color, label=label + (" (median)" if len(runs) > 1 else ""))
    if len(runs) > 1:
        lo, hi = np.nanpercentile(runs, [10, 90], axis=0)
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def dynamics(history, history_every: int, total_edges: int, title: str, phases=None):
    """Loss terms and active edges over epochs; `history` fields are `(C, R)`
    arrays (C runs). Bands are the 10–90 % range over runs. `phases`, if
    given, is a list of (epoch, label) vertical markers."""
    epochs = (np.arange(np.asarray(history.loss).shape[1]) + 1) * history_every - 1
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    _band(a1, epochs, history.loss, "total loss", "C0")
    _band(a1, epochs, history.task_loss, "task loss", "C1")
    _band(a1, epochs, history.penalty, "λ·Σ|w|", "C2")
    a1.set(xlabel="epoch", ylabel="loss", title="objective")
    a1.legend()
    _band(a2, epochs, history.active_edges, "active edges", "C3")
    a2.set(xlabel="epoch", ylabel=f"active edges (of {total_edges})", title="structure", ylim=(0, total_edges + 0.5))
    for ax in (a1, a2):
        for ep, label in phases or ():
            ax.axvline(ep, color="grey", ls=":", lw=1)
            ax.text(ep, ax.get_ylim()[1], label, rotation=90, va="top", ha="right", fontsize=7, color="grey")
    fig.suptitle(title)
    return fig


def _node_positions(lay) -> list[list[tuple[float, float]]]:
    """(x, y) of every node of the `layout.Layout`, layer by layer: the ordinary nodes top down,
    then the layer's bias node (index `widths[l]`, see `Layout.columns`) below them."""
    return [[(l, (n - 1) / 2 - i) for i in range(n)] + ([(l, (n - 1) / 2 - n - 0.3)] if lay.bias and l < lay.n_layers else [])
            for l, n in enumerate(lay.widths)]


def _edge_xy(pos, lay, l: int, i: int, j: int):
    """x, y of the line drawn for edge `edges[l][i, j]`: straight between neighbouring layers, a
    shallow arc for a skip edge so that it does not run through the layers between."""
    k, jj = lay.columns(l)[j]
    (x0, y0), (x1, y1) = pos[k][jj], pos[l + 1][i]
    if k == l:
        return [x0, x1], [y0, y1]
    t = np.linspace(0, 1, 20)
    return x0 + (x1 - x0) * t, y0 + (y1 - y0) * t + 0.35 * (l + 1 - k) * np.sin(np.pi * t)


def _draw_node(ax, x, y, *, is_bias: bool, face, size: float, label: str = ""):
    """One node: a circle, or a square labelled "1" for a bias node (a constant-1 source)."""
    ax.scatter([x], [y], s=size, zorder=2, edgecolors="k", facecolors=face, marker="s" if is_bias else "o")
    label = "1" if is_bias else label
    if label:
        ax.annotate(label, (x, y), ha="center", va="center", fontsize=8 if size > 200 else 6, zorder=3)


def graph(edges, eps: float, title: str, bias: bool | None = None):
    """The learned graph: nodes by layer; active edges drawn with width ∝ |w|
    (blue > 0, red < 0), pruned edges as faint dotted lines; nodes off every
    active input→output path drawn hollow. Bias nodes (constant 1, see
    `network.py`) are drawn as squares labelled "1" below their layer; skip
    edges (layers more than one apart) as arcs. `bias`: the net's bias flag
    (needed with skip edges, see `layout.layout_of`)."""
    edges = [np.asarray(w) for w in edges]
    m = [np.asarray(a) for a in masks(edges, eps)]
    lay = layout_of(edges, bias=bias)
    live = [np.asarray(v) for v in live_nodes(tuple(m), lay.bias)]
    pos = _node_positions(lay)
    wmax = max(float(np.abs(w).max()) if w.size else 0.0 for w in edges) or 1.0
    fig, ax = plt.subplots(figsize=(2.2 * len(pos) + 1, 0.6 * max(map(len, pos)) + 2))
    for l, (w, mk) in enumerate(zip(edges, m)):
        for (i, j), v in np.ndenumerate(w):
            xs, ys = _edge_xy(pos, lay, l, i, j)
            if mk[i, j]:
                ax.plot(xs, ys, color="C0" if v > 0 else "C3", lw=0.5 + 4 * abs(v) / wmax, alpha=0.9, zorder=1)
            else:
                ax.plot(xs, ys, color="0.8", lw=0.5, ls=":", zorder=0)
    for l, layer in enumerate(pos):
        for i, (x, y) in enumerate(layer):
            is_bias = i >= lay.widths[l]
            _draw_node(ax, x, y, is_bias=is_bias, size=250,
                       face=("#f2c14e" if is_bias else "0.3") if live[l][i] else "white")
    n_active = int(sum(a.sum() for a in m))
    live_real = [int(v[:n].sum()) for v, n in zip(live, lay.widths)]
    bias_note = f", live bias nodes {sum(int(v[-1]) for v in live[:-1])}" if lay.bias else ""
    ax.set_title(f"{title}\n{n_active}/{sum(a.size for a in m)} edges active (|w| ≥ {eps:g}); "
                 f"live nodes {live_real}{bias_note}")
    ax.set_xticks(range(len(pos)), ["input"] + [f"hidden {l}" for l in range(1, len(pos) - 1)] + ["output"])
    ax.set_yticks([])
    ax.spines[["top", "right", "left"]].set_visible(False)
    return fig


# ---- λ sweeps (experiments.sweep) -------------------------------------------------------------


def _lam_axis(ax, lams):
    """Log x-axis for λ; symlog (linear below the smallest λ > 0) when λ = 0 is swept."""
    lams = np.asarray(lams, np.float64)
    pos = lams[lams > 0]
    if (lams == 0).any():
        ax.set_xscale("symlog", linthresh=float(pos.min()) if len(pos) else 1.0, linscale=0.5)
    elif len(pos):
        ax.set_xscale("log")


def _lam_colors(lams):
    """(unique λ, colour per unique λ) on a viridis ramp."""
    u = np.unique(np.asarray(lams, np.float64))
    cmap = plt.get_cmap("viridis")
    return u, [cmap(i / max(len(u) - 1, 1)) for i in range(len(u))]


def sweep_curves(lams, metrics: dict, active_edges, *, metric_label: str, total_edges: int,
                 paper_lam: float | None = None, title: str = ""):
    """Metric vs λ and active edges vs λ over seeds.

    Args:
      lams: λ of each run, shape `(C,)`.
      metrics: label -> metric of each run `(C,)` (e.g. {"test": ..., "pruned test": ...}).
      active_edges: active edges of each run `(C,)`.
      metric_label: y label of the metric panel; total_edges: y limit of the edge panel.
      paper_lam: λ the paper used, marked by a vertical line.
    Lines are medians over the runs at each λ, bands the 10–90 % range, dots the means.
    NaNs (diverged runs) are ignored.
    """
    lams = np.asarray(lams, np.float64)
    u = np.unique(lams)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    series = [(a1, lbl, np.asarray(v, np.float64), f"C{i}") for i, (lbl, v) in enumerate(metrics.items())]
    series.append((a2, "active edges", np.asarray(active_edges, np.float64), "C3"))
    for ax, lbl, v, color in series:
        med, lo, hi, mean = np.array([(np.nanmedian(g), *np.nanpercentile(g, [10, 90]), np.nanmean(g))
                                      if np.isfinite(g).any() else (np.nan,) * 4 for g in (v[lams == l] for l in u)]).T
        ax.plot(u, med, "-", color=color, label=f"{lbl} (median)")
        ax.fill_between(u, lo, hi, color=color, alpha=0.2, lw=0, label=f"{lbl} (10–90 % of seeds)")
        ax.plot(u, mean, "o", ms=3, color=color, label=f"{lbl} (mean)")
    for ax in (a1, a2):
        _lam_axis(ax, lams)
        if paper_lam is not None:
            ax.axvline(paper_lam, color="grey", ls=":", lw=1)
            ax.text(paper_lam, ax.get_ylim()[1], " paper λ", va="top", ha="left", fontsize=8, color="grey")
        ax.set_xlabel("λ" + (" (symlog: linear near 0)" if (lams == 0).any() else ""))
        ax.legend(fontsize=7)
    a1.set(ylabel=metric_label, title=f"{metric_label} vs λ")
    a2.set(ylabel=f"active edges (of {total_edges})", title="sparsity vs λ", ylim=(0, total_edges + 0.5))
    n = len(lams) // max(len(u), 1)
    fig.suptitle(f"{title} — {len(u)} λ values × {n} runs each")
    return fig


def pareto(active_edges, metric, lams, *, metric_label: str, total_edges: int,
           paper_point: tuple[float, float] | None = None, title: str = ""):
    """Metric vs active edges, one dot per run coloured by λ (edges jittered
    sideways by < 0.4 so the integer counts do not hide each other), the
    median metric at each edge count, and the paper's (edges, metric) as a star."""
    e = np.asarray(active_edges, np.float64)
    m = np.asarray(metric, np.float64)
    lams = np.asarray(lams, np.float64)
    u, colors = _lam_colors(lams)
    jitter = np.random.default_rng(0).uniform(-0.35, 0.35, len(e))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for l, c in zip(u, colors):
        k = (lams == l) & np.isfinite(m)
        ax.scatter(e[k] + jitter[k], m[k], s=8, color=c, alpha=0.5, lw=0, label=f"λ={l:.3g}")
    ok = np.isfinite(m)
    counts = np.unique(e[ok])
    ax.plot(counts, [np.median(m[ok & (e == c)]) for c in counts], "k-", lw=1, label="median at each edge count")
    if paper_point is not None:
        ax.scatter([paper_point[0]], [paper_point[1]], marker="*", s=200, color="red", edgecolors="k",
                   zorder=5, label=f"paper: {paper_point[1]:g} at {paper_point[0]:g} edges")
    ax.set(xlabel=f"active edges (|w| ≥ ε, of {total_edges})", ylabel=metric_label, title=title,
           xlim=(-0.6, total_edges + 0.6))
    ax.legend(fontsize=7, ncol=2 if len(u) > 7 else 1)
    return fig


def architectures(archs, lams, *, title: str = "", top: int = 12):
    """How often each compact architecture (live nodes per layer, e.g. (2, 3, 1))
    occurs over the runs, the `top` most common as bars split by λ, the rest
    lumped as "other"."""
    labels = [str(list(a)) for a in archs]
    lams = np.asarray(lams, np.float64)
    names, counts = np.unique(labels, return_counts=True)
    order = [names[i] for i in np.argsort(-counts, kind="stable")]
    shown = order[:top] + (["other"] if len(order) > top else [])
    key = np.array([lbl if lbl in order[:top] else "other" for lbl in labels])
    u, colors = _lam_colors(lams)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(shown) + 1.6))
    left = np.zeros(len(shown))
    for l, c in zip(u, colors):
        n = np.array([np.sum((key == s) & (lams == l)) for s in shown], np.float64)
        ax.barh(range(len(shown)), n, left=left, color=c, label=f"λ={l:.3g}")
        left += n
    for i, total in enumerate(left):
        ax.text(total, i, f" {int(total)}", va="center", fontsize=8)
    ax.set_yticks(range(len(shown)), shown)
    ax.invert_yaxis()
    ax.set(xlabel=f"runs (of {len(labels)})", ylabel="compact architecture (live nodes per layer)", title=title)
    ax.legend(fontsize=7, ncol=2 if len(u) > 7 else 1, loc="lower right")
    return fig


# --- topology statistics and threshold sensitivity ------------------------


def _draw_adjacency(ax, form, title: str):
    """Draw one canonical graph (`topology.CanonicalGraph`; edges in {−1, 0, 1}
    or {0, 1}); bias nodes as squares "1" below their layer, skip edges as arcs."""
    lay = form.layout
    pos = _node_positions(lay)
    for l, a in enumerate(form.arrays()):
        for i, j in zip(*np.nonzero(a)):
            ax.plot(*_edge_xy(pos, lay, l, i, j), color="C3" if a[i, j] < 0 else "C0", lw=1.5, zorder=1)
    labels = [[f"x{k}" for k in form.inputs]] + [[""] * n for n in lay.widths[1:-1]] + [[f"y{k}" for k in form.outputs]]
    for l, layer in enumerate(pos):
        for i, (x, y) in enumerate(layer):
            is_bias = i >= lay.widths[l]
            _draw_node(ax, x, y, is_bias=is_bias, size=160, label="" if is_bias else labels[l][i],
                       face="#f2c14e" if is_bias else "0.3" if 0 < l < len(pos) - 1 else "white")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.spines[:].set_visible(False)


def top_graphs(counts, n_runs: int, title: str, top: int = 6):
    """The most frequent canonical graphs of a sweep, one panel each.

    `counts`: list of (CanonicalGraph, count), most frequent first
    (`topology.TopologyStats.counts`)."""
    shown = counts[:top] or []
    n = max(len(shown), 1)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    for ax, (form, c) in zip(axes.ravel(), shown):
        _draw_adjacency(ax, form, f"{c}/{n_runs} runs ({100 * c / n_runs:.0f} %)\n{list(form.widths)}, {form.n_edges} edges")
    fig.suptitle(f"{title}: {len(counts)} distinct graph(s)")
    fig.tight_layout()
    return fig


def edge_survival(aligned_survival, title: str):
    """Per-edge survival frequency (canonical hidden order) as one heat map per layer."""
    L = len(aligned_survival)
    fig, axes = plt.subplots(1, L, figsize=(3.2 * L + 1, 3), squeeze=False)
    for l, (ax, s) in enumerate(zip(axes[0], aligned_survival)):
        im = ax.imshow(np.asarray(s), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set(title=f"edges into layer {l + 1}", xlabel="from (source node, layer by layer; bias last)",
               ylabel=f"to (layer {l + 1})")
        for (i, j), v in np.ndenumerate(np.asarray(s)):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w" if v < 0.5 else "k")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="fraction of runs")
    fig.suptitle(title)
    return fig


def threshold_sensitivity(eps, metric, active, margins, eps_train: float, metric_name: str, title: str):
    """Metric and active edges vs ε (log x axis) and the sorted edge margins |w| − ε."""
    eps = np.asarray(eps, np.float64)
    pos = eps > 0
    fig, (a1, a3) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(eps[pos], np.asarray(metric)[pos], color="C0")
    a1.set(xscale="log", xlabel="ε", title="masked net vs threshold")
    a1.set_ylabel(metric_name, color="C0")
    a2 = a1.twinx()
    a2.step(eps[pos], np.asarray(active)[pos], where="post", color="C3")
    a2.set_ylabel("active edges", color="C3")
    a1.axvline(eps_train, color="grey", ls=":", lw=1)
    a1.text(eps_train, a1.get_ylim()[1], f" ε={eps_train:g}", va="top", fontsize=8, color="grey")
    m = np.sort(np.concatenate([np.asarray(v).ravel() for v in margins]))
    a3.bar(np.arange(len(m)), m, color=np.where(m >= 0, "C0", "0.6"))
    a3.axhline(0, color="k", lw=0.8)
    a3.set(ylabel="|w| − ε", xlabel="edges (sorted)", title=f"edge margins at ε={eps_train:g}")
    a3.set_yscale("symlog", linthresh=max(eps_train, 1e-6))
    fig.suptitle(title)
    fig.tight_layout()
    return fig
