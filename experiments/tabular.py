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
    return _cli.parser(PROG, "Structure-aware backprop on real tabular data: a pruned net and the features it uses.",
                       lam_default="auto")


@_cli.guarded(PROG)
def main(argv: list[str] | None = None) -> dict:
    return _run.run_seeds(parser(), argv, lambda ds: f"tabular/{ds.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
