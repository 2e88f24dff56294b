"""Canonical forms of learned graphs and topology statistics across runs."""

from __future__ import annotations

import numpy as np
import pytest

from sbp_jax.topology import canonical_form, canonical_forms, topology_stats

EPS = 0.01


def _net(rng, layers, p_zero=0.3):
    return tuple(rng.normal(size=(b, a)).astype(np.float32) * (rng.random((b, a)) > p_zero)
                 for a, b in zip(layers[:-1], layers[1:]))


def _permute(edges, perms):
    """Permute hidden units: perms[l] for hidden layer l+1."""
    out = list(edges)
    for l, p in enumerate(perms, start=1):
        out[l - 1] = out[l - 1][p, :]
        out[l] = out[l][:, p]
    return tuple(out)


@pytest.mark.parametrize("layers", [(2, 4, 1), (2, 8, 1), (3, 5, 4, 2)])
@pytest.mark.parametrize("seed", range(5))
def test_permuted_copies_have_equal_forms(layers, seed):
    rng = np.random.default_rng(seed)
    e = _net(rng, layers)
    perms = [rng.permutation(n) for n in layers[1:-1]]
    for signed in (False, True):
        a, b = canonical_form(e, EPS, signed=signed), canonical_form(_permute(e, perms), EPS, signed=signed)
        assert a == b and a.key == b.key and a.exact


def test_different_graphs_differ():
    w1 = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    w2 = np.array([[1.0, 1.0, 1.0]], np.float32)
    base = canonical_form((w1, w2), EPS)
    moved = w1.copy()
    moved[1] = [0.0, 1.0]  # unit 1 now reads x1 instead of x0: a different graph
    assert canonical_form((moved, w2), EPS) != base
    # swapping the inputs is not a symmetry (inputs are labelled)
    asym = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    assert canonical_form((asym, w2), EPS) != canonical_form((asym[:, ::-1], w2), EPS)
    # sign matters only when asked
    neg = (w1, -w2)
    assert canonical_form(neg, EPS) == base
    assert canonical_form(neg, EPS, signed=True) != canonical_form((w1, w2), EPS, signed=True)


def test_dead_nodes_and_subthreshold_edges_are_removed():
    w1 = np.array([[1.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32)
    w2 = np.array([[1.0, 1.0, 0.001]], np.float32)  # unit 2 has no active out-edge: dead
    f = canonical_form((w1, w2), EPS)
    assert f.widths == (2, 2, 1) and f.n_edges == 5
    assert f == canonical_form((w1[:2], w2[:, :2]), EPS)


def test_two_non_isomorphic_graphs_with_equal_degrees():
    """Refinement alone cannot split these (all hidden units look alike);
    the exact tie search must still tell them apart and match permutations."""
    # layers (2, 4, 4, 1): two different bipartite wirings between hidden layers
    w1 = np.ones((4, 2), np.float32)
    w3 = np.ones((1, 4), np.float32)
    cycle = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], np.float32)  # an 8-cycle
    two = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)  # two 4-cycles
    a, b = canonical_form((w1, cycle, w3), EPS), canonical_form((w1, two, w3), EPS)
    assert a != b
    rng = np.random.default_rng(0)
    p, q = rng.permutation(4), rng.permutation(4)
    assert canonical_form((w1[p], cycle[q][:, p], w3[:, q]), EPS) == a


def test_stats_counts_survival_consensus():
    rng = np.random.default_rng(1)
    w1 = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
    w2 = np.array([[1.0, 1.0, 1.0, 0.0]], np.float32)
    runs = [_permute((w1, w2), [rng.permutation(4)]) for _ in range(3)]
    other = (np.array([[1.0, 1.0], [0, 0], [0, 0], [0, 0]], np.float32), np.array([[1.0, 0, 0, 0]], np.float32))
    runs.append(other)
    stacked = [np.stack([r[l] for r in runs]) for l in range(2)]
    st = topology_stats(stacked, EPS, (2, 4, 1))
    assert st.n_distinct == 2
    assert [c for _, c in st.counts] == [3, 1]
    assert st.counts[0][0] == canonical_form((w1, w2), EPS)
    np.testing.assert_allclose(sum(s.sum() for s in st.survival), (7 * 3 + 3) / 4)
    assert int(sum(c.sum() for c in st.consensus)) == 7  # the 3-of-4 graph
    assert len(canonical_forms(stacked, EPS)) == 4


def test_topology_cli_end_to_end(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "topo"
    r = subprocess.run([sys.executable, "-m", "experiments.topology", "--task", "xor", "--seeds", "3", "--epochs", "20",
                        "--penalty", "proximal", "--no-plots", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads((out / "results.json").read_text())
    assert d["summary"]["n_runs"] == 3 and d["config"]["penalty"] == "proximal"
    assert d["export"]["verification"]["train"]["max_abs_deviation"] <= 1e-6
    t = d["threshold_sensitivity"]["at_training_eps"]
    assert t["active_edges"] == t["direct_count"]
    assert (out / "graph.json").exists() and (out / "graph.dot").exists()
