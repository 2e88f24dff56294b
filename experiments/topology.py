"""Topology statistics across seeds, the verified minimal-graph export and
threshold sensitivity:

    python -m experiments.topology --task xor --seeds 100 [--penalty proximal] [--out DIR]

Runs the seeds as one sweep, prints how many distinct graphs (up to hidden-
unit permutation, dead nodes removed) were learned and how often, per-edge
survival and the consensus graph; exports the most common graph to JSON and
DOT and checks that the compact net reproduces the full masked net; sweeps ε
on the first seed's net; writes `results.json` and plots under `--out`.
"""

from __future__ import annotations

import sys
import time
from typing import NamedTuple

import numpy as np

from sbp_jax import export, io, plots, stats, sweep, threshold, topology
from sbp_jax.sources import headline
from sbp_jax.structure import analyse

from . import _cli, _run

PROG = "python -m experiments.topology"


def _adjacency_text(form: topology.CanonicalGraph) -> str:
    return " | ".join("".join("".join("+" if v > 0 else "-" if v < 0 else "." for v in row) + " " for row in a).strip()
                      for a in form.adjacency)


def _top(text: str) -> int:
    return _cli._at_least("--top", 1)(text)


def parser():
    """This CLI's argument parser."""
    p = _cli.parser(PROG, "Topology statistics across seeds, verified graph export, threshold sensitivity.",
                    dataset="xor")
    g = p.add_argument_group("topology")
    g.add_argument("--signed", action="store_true", help="edge signs are part of a graph's identity")
    g.add_argument("--top", type=_top, default=6, help="graphs to list and plot (6)")
    return p


class Sections(NamedTuple):
    """What `sections` adds and the printout and plots read."""

    st: topology.TopologyStats  # graph counts, survival, consensus
    stats: dict  # the summary's `topology`
    export: dict  # the exported graph and its verification (or the refusal)
    sens: threshold.Sensitivity  # the first run's threshold sensitivity
    sens_d: dict  # the same, as written to results.json
    margins: list  # per layer |w| − ε of the first run
    n_eps: int  # ε values of the sensitivity pass


def sections(doc: dict, res, cfg, out, ds, args) -> Sections:
    """`_run`'s `extend` hook: the topology statistics (graph keys on the records, the
    summary's `topology`), the verified export of the most common graph (graph.json,
    graph.dot under `out`) and the first run's threshold sensitivity, added to `doc`
    before it is written. Returns what the printout and the plots need."""
    edges = [np.asarray(w) for w in res.result.edges]
    seeds = [r["seed"] for r in doc["records"]]
    t1 = time.perf_counter()
    st = topology.topology_stats(edges, cfg.eps, cfg.layers, signed=args.signed, bias=cfg.bias)
    forms = topology.canonical_forms(edges, cfg.eps, signed=args.signed, bias=cfg.bias)
    doc["timing"]["topology_s"] = time.perf_counter() - t1
    runs = doc["records"]
    for r, form in zip(runs, forms):
        r["graph"] = form.key
    stats_d = topology.stats_dict(st, top=args.top)
    main_metric = f"pruned_test_{headline(ds)}"
    for g in stats_d["top_graphs"]:
        vals = [r["metrics"][main_metric] for r in runs if r["graph"] == g["key"]]
        g[main_metric] = stats.describe(vals, **stats.bounds_of(main_metric))

    # export the most common graph (its first run) and verify it
    top_form = st.counts[0][0]
    i_top = forms.index(top_form)
    e_top = tuple(w[i_top] for w in edges)
    exported = {"seed": seeds[i_top], "graph": top_form.key}
    try:
        g = export.compact(e_top, cfg.eps, cfg.hidden_activation, cfg.output_activation, cfg.bias)
        ver = {split: export.verify(g, e_top, cfg.eps, x)._asdict()
               for split, x in (("train", ds.x_train), ("test", ds.x_test))}
        doc_g = export.to_json(g, meta={"task": ds.name, "seed": seeds[i_top], "eps": cfg.eps, "graph": top_form.key,
                                      "verification": ver})
        io.write_json(out / "graph.json", doc_g)
        with io.atomic_path(out / "graph.dot") as tmp:
            tmp.write_text(export.to_dot(g))
        back = export.from_json(doc_g)
        ver["reloaded_train"] = export.verify(back, e_top, cfg.eps, ds.x_train)._asdict()
        exported.update(layers=list(g.layers), n_edges=doc_g["n_edges"], verification=ver)
    except ValueError as err:
        exported["error"] = str(err)

    # threshold sensitivity of the first seed's net, on the test set
    e0 = tuple(w[0] for w in edges)
    grid = threshold.default_eps_grid(e0, cfg.eps)
    sens = threshold.sensitivity(e0, ds.x_test, ds.y_test, grid, loss=cfg.loss, hidden_activation=cfg.hidden_activation,
                                 bias=cfg.bias)
    at = int(np.flatnonzero(np.asarray(sens.eps) == np.float32(cfg.eps))[0])
    margins = threshold.margins(e0, cfg.eps)
    sens_d = {"seed": seeds[0], "eps": np.asarray(sens.eps).tolist(),
              "metrics": {k: np.asarray(v).tolist() for k, v in sens.metrics.items()},
              "active_edges": np.asarray(sens.active_edges).tolist(),
              "effective_edges": np.asarray(sens.effective_edges).tolist(),
              "at_training_eps": {"active_edges": int(sens.active_edges[at]),
                                  "direct_count": int(np.sum(analyse(e0, cfg.eps, cfg.bias).active_per_layer))},
              "margins": [m.tolist() for m in margins],
              "smallest_positive_margin": float(min((m[m >= 0].min() for m in margins if (m >= 0).any()), default=np.nan)),
              "largest_negative_margin": float(max((m[m < 0].max() for m in margins if (m < 0).any()), default=np.nan))}

    doc["summary"][0]["topology"] = stats_d
    doc.update(export=exported, threshold_sensitivity=sens_d)
    return Sections(st, stats_d, exported, sens, sens_d, margins, len(grid))


@_cli.guarded(PROG)
def main(argv: list[str] | None = None) -> dict:
    p = parser()
    args = _cli.parse(p, argv)
    src, ds, params = _cli.load_data(args)
    cfg = _cli.make_config(args, src, ds)
    found: list[Sections] = []  # the hook's result (the hook runs once, before results.json is written)
    doc, _, out, cfg = _run.run_any(ds.name, args, argv, src, ds, params, cfg, folder=f"topology_{ds.name}",
                                    extend=lambda doc, res, cfg, out: found.append(sections(doc, res, cfg, out, ds,
                                                                                            args)))
    timing = doc["timing"]
    st, stats_d, exported, sens, sens_d, margins, n_eps = found[0]
    seeds, main_metric = [r["seed"] for r in doc["records"]], f"pruned_test_{headline(ds)}"
    lam = "λ per run (path)" if doc["summary"][0]["lam"] is None else f"λ={cfg.lam:g}"
    if not args.no_plots:
        title = f"{ds.name} {list(cfg.layers)}, {cfg.penalty}, {lam}"
        io.save_figure(plots.top_graphs(st.counts, st.n_runs, title, top=args.top), out / "top_graphs.png")
        io.save_figure(plots.edge_survival(st.aligned_survival, f"edge survival (canonical order), {title}"),
                       out / "edge_survival.png")
        mname = headline(ds)
        io.save_figure(plots.threshold_sensitivity(sens.eps, sens.metrics[mname], sens.active_edges, margins, cfg.eps,
                                                   f"test {mname}", f"{title}, seed {seeds[0]}"), out / "threshold.png")

    print(f"\n{ds.name}: {list(cfg.layers)}, penalty {cfg.penalty}, {lam}, ε={cfg.eps:g}, "
          f"{cfg.epochs} epochs, {len(seeds)} seed(s); sweep {timing['run_s']:.2f} s (+{timing['compile_s']:.2f} s compile), "
          + sweep.kernel_line(timing))
    d = doc["summary"][0]["metrics"][main_metric]
    print(f"{main_metric}: mean {d['mean']:.4g} [{d['ci95'][0]:.4g}, {d['ci95'][1]:.4g}]")
    if "path" in doc:
        _run.print_path(doc["path"])
    if "search" in doc:
        _run.print_search(doc["search"])
    print(f"distinct graphs: {st.n_distinct} in {st.n_runs} runs (canonical: dead nodes removed, hidden units sorted)")
    for g in stats_d["top_graphs"]:
        print(f"  {g['count']:>4} × {g['key']}  widths {g['widths']}  {g['n_edges']:>2} edges  "
              f"{main_metric} {g[main_metric]['mean']:.3g}  {_adjacency_text(topology.CanonicalGraph(*[tuple(g['widths']), tuple(g['inputs']), tuple(g['outputs']), tuple(tuple(tuple(r) for r in a) for a in g['adjacency']), g['exact']]))}")
    print("edge survival (raw positions, fraction of runs):")
    for l, s in enumerate(st.survival):
        print(f"  layer {l}: " + np.array2string(s, precision=2, suppress_small=True).replace("\n", "\n           "))
    print(f"consensus graph (≥50 % of runs, canonical order): {stats_d['consensus_edges']} edges")
    for l, c in enumerate(st.consensus):
        print(f"  layer {l}: " + np.array2string(c.astype(int)).replace("\n", "\n           "))
    if "error" in exported:
        print(f"export of the most common graph refused: {exported['error']}")
    else:
        v = exported["verification"]
        print(f"exported seed {exported['seed']}'s graph {exported['layers']} ({exported['n_edges']} edges) to "
              f"{out}/graph.json, graph.dot; max |compact − full masked| = {v['train']['max_abs_deviation']:.3g} (train), "
              f"{v['test']['max_abs_deviation']:.3g} (test), reloaded {v['reloaded_train']['max_abs_deviation']:.3g}")
    a = sens_d["at_training_eps"]
    print(f"threshold sensitivity (seed {seeds[0]}): {n_eps} ε values in one pass; at ε={cfg.eps:g}: "
          f"{a['active_edges']} active (direct count {a['direct_count']}); smallest margin of an active edge "
          f"{sens_d['smallest_positive_margin']:.3g}, largest of a pruned one {sens_d['largest_negative_margin']:.3g}")
    print(f"wrote {out}/results.json" + ("" if args.no_plots else ", top_graphs.png, edge_survival.png, threshold.png"))
    return doc


if __name__ == "__main__":
    main(sys.argv[1:])
