"""a + b regression with the paper's settings: `python -m experiments.addition [--seeds 100]`.

Every training option and data source of the other CLIs works here too; the
defaults are the paper's addition task (§4.2)."""

from __future__ import annotations

import sys

from . import _cli, _run

PROG = "python -m experiments.addition"


def parser():
    """This CLI's argument parser."""
    return _cli.parser(PROG, "Structure-aware backprop on the paper's a + b (§4.2), seeds as one vmapped run.",
                       dataset="addition")


@_cli.guarded(PROG)
def main(argv: list[str] | None = None) -> dict:
    return _run.run_seeds(parser(), argv, lambda ds: ds.name if ds.name == "addition" else f"addition/{ds.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
