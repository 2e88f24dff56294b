"""Real data: `python -m experiments.tabular --dataset digits | --csv FILE --target COL | --npz FILE`.

Loads the data (`sbp_jax.sources`: stratified train/validation/test splits,
inputs standardised on the training split), trains `--seeds` seeds as one
vmapped sweep, and reports train / validation / test metrics, active edges
and the input features the pruned nets still use.
"""

from __future__ import annotations

import sys

from . import _cli, _run

PROG = "python -m experiments.tabular"


def parser():
    """This CLI's argument parser."""
    p = _cli.parser(PROG, "Structure-aware backprop on real tabular data: a pruned net and the features it uses.")
    return p


@_cli.guarded(PROG)
def main(argv: list[str] | None = None) -> dict:
    p = parser()
    args = p.parse_args(argv)
    src, ds, params = _cli.load_data(args)
    cfg = _cli.make_config(args, src, ds)
    doc, _, folder = _run.execute(f"tabular/{ds.name}", args, argv, src, ds, params, cfg, _cli.make_grid(args, cfg))
    _run.print_runs(doc, cfg, folder)
    return doc


if __name__ == "__main__":
    main(sys.argv[1:])
