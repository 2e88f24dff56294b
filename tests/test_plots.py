"""plots: every figure draws what it claims (one line per edge, bias nodes as squares "1", skip edges
as arcs, one panel per graph, one bar per margin), not just that it runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import XOR7

from sbp_jax import plots
from sbp_jax.loop import History
from sbp_jax.network import init_edges
from sbp_jax.topology import topology_stats


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _nodes(ax):
    """Scatter collections of an axes (one per node), with their face colours."""
    return [c for c in ax.collections if len(c.get_offsets()) == 1]


def _is_white(c):
    return np.allclose(c.get_facecolor()[0][:3], 1.0)


def test_graph_plot_draws_bias_nodes():
    fig = plots.graph(XOR7, 1e-2, "xor7")
    assert "live bias nodes 1" in fig.axes[0].get_title()


def test_graph_draws_every_edge_and_node_of_the_seven_edge_xor_net():
    ax = plots.graph(XOR7, 1e-2, "xor7").axes[0]
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert len(ax.lines) == 9 and len(solid) == 7 and len(dotted) == 2  # 9 edges, 7 active
    colors = [ln.get_color() for ln in solid]
    assert colors.count("C0") == 4 and colors.count("C3") == 3  # w > 0 blue, w < 0 red
    nodes = _nodes(ax)
    assert len(nodes) == 2 + 1 + 2 + 1 + 1  # inputs, layer 0's bias, hidden, layer 1's bias, output
    assert sum(t.get_text() == "1" for t in ax.texts) == 2  # the two bias nodes
    assert sum(map(_is_white, nodes)) == 1  # layer 0's bias node feeds nothing: hollow
    assert "7/9 edges active" in ax.get_title() and "live nodes [2, 2, 1]" in ax.get_title()


def test_graph_draws_skip_edges_as_arcs():
    e = init_edges(jax.random.key(0), (2, 3, 1), skip=True)  # edges[1] reads x0, x1, h0, h1, h2
    ax = plots.graph(e, 1e-2, "skip", bias=False).axes[0]
    assert len(ax.lines) == 3 * 2 + 1 * 5
    assert sum(len(ln.get_xdata()) > 2 for ln in ax.lines) == 2  # x0→y and x1→y
    assert len(_nodes(ax)) == 6 and not any(t.get_text() == "1" for t in ax.texts)


def test_top_graphs_one_panel_per_graph_one_line_per_edge():
    perm = (XOR7[0][::-1], XOR7[1][:, jnp.array([1, 0, 2])])  # the same graph
    other = (XOR7[0].at[0, 2].set(0.3), XOR7[1])  # one edge more
    stacked = [jnp.stack(ws) for ws in zip(XOR7, perm, other)]
    st = topology_stats(stacked, 1e-2, (2, 2, 1), bias=True)
    fig = plots.top_graphs(st.counts, st.n_runs, "xor")
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 2 and "2 distinct graph(s)" in fig._suptitle.get_text()
    for ax, (form, c) in zip(panels, st.counts):
        assert len(ax.lines) == form.n_edges
        assert ax.get_title().startswith(f"{c}/3 runs")
        assert sum(t.get_text() == "1" for t in ax.texts) == 2
        assert {"x0", "x1", "y0"} <= {t.get_text() for t in ax.texts}
    assert [len(ax.lines) for ax in panels] == [7, 8]


def test_dynamics_bands_over_runs_and_phase_markers():
    C, R = 3, 5
    rng = np.random.default_rng(0)
    h = History(*(rng.uniform(size=(C, R)) for _ in range(3)), rng.integers(0, 12, (C, R)))
    fig = plots.dynamics(h, 10, 12, "t", phases=[(19, "a"), (39, "b")])
    a1, a2 = fig.axes
    assert len(a1.lines) == 3 + 2 and len(a2.lines) == 1 + 2  # medians, then the two phase lines
    assert len(a1.collections) == 3 and len(a2.collections) == 1  # the 10–90 % bands
    np.testing.assert_array_equal(a1.lines[0].get_xdata(), [9, 19, 29, 39, 49])
    np.testing.assert_allclose(a1.lines[0].get_ydata(), np.median(h.loss, axis=0))
    assert a2.get_ylim() == (0, 12.5)


def test_sweep_curves_medians_per_lam_and_symlog_with_zero():
    lams = np.repeat([0.0, 1e-3, 1e-2], 4)
    test = np.arange(12, dtype=float)
    test[8:] = np.nan  # every run at λ = 1e-2 diverged
    fig = plots.sweep_curves(lams, {"test": test}, np.arange(12), metric_label="acc", total_edges=12,
                             paper_lam=1e-2)
    a1, a2 = fig.axes
    assert a1.get_xscale() == "symlog" and a2.get_xscale() == "symlog"
    median = a1.lines[0].get_ydata()
    np.testing.assert_array_equal(median[:2], [1.5, 5.5])
    assert np.isnan(median[2])
    assert len(a1.lines) == 3  # median, means, paper λ
    assert "3 λ values × 4 runs each" in fig._suptitle.get_text()


def test_pareto_one_scatter_per_lam_and_the_paper_star():
    lams = np.repeat([1e-3, 1e-2], 3)
    fig = plots.pareto([6, 7, 6, 4, 4, 5], [1.0, 0.9, 1.0, 0.8, np.nan, 0.7], lams, metric_label="acc",
                       total_edges=12, paper_point=(6, 1.0))
    ax = fig.axes[0]
    assert len(ax.collections) == 2 + 1
    assert len(ax.collections[1].get_offsets()) == 2  # the NaN run is left out
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [4, 5, 6, 7])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.8, 0.7, 1.0, 0.9])


def test_architectures_counts_and_other():
    archs = [(2, 2, 1)] * 3 + [(2, 3, 1)] * 2 + [(2, 4, 1)]
    fig = plots.architectures(archs, [0.1] * 6, top=2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["[2, 2, 1]", "[2, 3, 1]", "other"]
    assert [t.get_text().strip() for t in ax.texts] == ["3", "2", "1"]


def test_edge_survival_one_map_per_layer_one_number_per_edge():
    surv = (np.full((3, 3), 0.5), np.array([[1.0, 0.0, 0.25, 0.75]]))
    fig = plots.edge_survival(surv, "s")
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 2 and [len(ax.texts) for ax in maps] == [9, 4]


def test_threshold_sensitivity_one_bar_per_edge_margin():
    eps = np.array([0.0, 1e-3, 1e-2, 1e-1])
    margins = (np.array([[0.5, -0.005]]), np.array([[0.02, 0.3, -0.009]]))
    fig = plots.threshold_sensitivity(eps, [1.0, 1.0, 0.9, 0.5], [5, 5, 3, 1], margins, 1e-2, "acc", "t")
    bars = fig.axes[1]
    assert len(bars.patches) == 5 and bars.get_yscale() == "symlog"
    assert len(fig.axes[0].lines[0].get_xdata()) == 3  # ε = 0 is off the log axis
