"""λ × seed sweeps: `python -m experiments.sweep --dataset xor --lams logspace:-4:-1:13 --seeds 100`.

Every (λ, lr, ε, seed) of the grid is one run of the method on the data (any
source: the paper's tasks, the bundled sets, `--csv`, `--npz`; with a
validation split every run is also scored there). The whole grid is one
compiled program run in chunks, sharded over all devices (and over all
processes with `--distributed`), checkpointed per chunk so `--resume`
continues an interrupted sweep.
"""

from __future__ import annotations

import sys

from sbp_jax import distributed

from . import _cli, _run

PROG = "python -m experiments.sweep"
EPILOG = ("Training options not given default to the data source's (the paper's for xor and addition). On CPU "
          "the grid is sharded over one XLA host device per core (set by the experiments package unless XLA_FLAGS "
          "already sets --xla_force_host_platform_device_count); on GPUs over all visible GPUs.")


def parser():
    """This CLI's argument parser."""
    p = _cli.parser(PROG, "Sweep λ × seeds (and lr, ε) of structure-aware backprop as one compiled, chunked, "
                    "device-sharded program; writes results.json and plots.", grid=True, epilog=EPILOG)
    p.set_defaults(lam="logspace:-4:-1:13")
    return p


@_cli.guarded(PROG)
def main(argv: list[str] | None = None) -> dict:
    p = parser()
    args = _cli.parse(p, argv)
    if isinstance(args.lam, str):
        args.lam = _cli.options.grid_values(args.lam)
    if args.distributed:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    src, ds, params = _cli.load_data(args)
    cfg = _cli.make_config(args, src, ds, history_every=lambda epochs: epochs)
    grid = _cli.make_grid(args, cfg)
    doc, _, folder = _run.execute(ds.name, args, argv, src, ds, params, cfg, grid, checkpoints=True,
                                       folder=f"sweep_{ds.name}")
    if distributed.is_main():
        _run.print_groups(doc, cfg, ds, folder)
    return doc


if __name__ == "__main__":
    main(sys.argv[1:])
