"""Matplotlib figures (Agg backend): training dynamics and the learned graph.

Each function returns a `Figure`; save it with `io.save_figure` (atomic).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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


def graph(edges, eps: float, title: str):
    """The learned graph: nodes by layer; active edges drawn with width ∝ |w|
    (blue > 0, red < 0), pruned edges as faint dotted lines; nodes off every
    active input→output path drawn hollow."""
    edges = [np.asarray(w) for w in edges]
    m = [np.asarray(a) for a in masks(edges, eps)]
    live = [np.asarray(v) for v in live_nodes(tuple(m))]
    widths = [edges[0].shape[1]] + [w.shape[0] for w in edges]
    pos = [[(l, (n - 1) / 2 - i) for i in range(n)] for l, n in enumerate(widths)]
    wmax = max(float(np.abs(w).max()) for w in edges) or 1.0
    fig, ax = plt.subplots(figsize=(2.2 * len(widths) + 1, 0.6 * max(widths) + 2))
    for l, (w, mk) in enumerate(zip(edges, m)):
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                (x0, y0), (x1, y1) = pos[l][j], pos[l + 1][i]
                if mk[i, j]:
                    ax.plot([x0, x1], [y0, y1], color="C0" if w[i, j] > 0 else "C3",
                            lw=0.5 + 4 * abs(w[i, j]) / wmax, alpha=0.9, zorder=1)
                else:
                    ax.plot([x0, x1], [y0, y1], color="0.8", lw=0.5, ls=":", zorder=0)
    for l, layer in enumerate(pos):
        for i, (x, y) in enumerate(layer):
            ax.scatter([x], [y], s=250, zorder=2, edgecolors="k",
                       facecolors="0.3" if live[l][i] else "white")
    n_active = int(sum(a.sum() for a in m))
    ax.set_title(f"{title}\n{n_active}/{sum(a.size for a in m)} edges active (|w| ≥ {eps:g}); "
                 f"live nodes {[int(v.sum()) for v in live]}")
    ax.set_xticks(range(len(widths)), ["input"] + [f"hidden {l}" for l in range(1, len(widths) - 1)] + ["output"])
    ax.set_yticks([])
    for s in ("top", "right", "left"):
        ax.spines[s].set_visible(False)
    return fig
