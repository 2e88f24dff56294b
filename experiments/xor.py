"""XOR with the paper's settings: `python -m experiments.xor [--seeds 100]`."""

from __future__ import annotations

import sys

from sbp_jax import tasks
from sbp_jax.config import TrainConfig

from . import _cli

DEFAULTS = TrainConfig(layers=(2, 4, 1), loss="bce", epochs=1000)
PAPER = {"accuracy": 0.745, "active_edges": 8, "total_edges_stated": 12, "final_loss": 2.625}


def main(argv: list[str] | None = None) -> dict:
    p = _cli.parser("python -m experiments.xor", "Structure-aware backprop on XOR (paper §4.1).", DEFAULTS)
    p.add_argument("--bare", action="store_true", help="train on the four bare corners instead of noisy XOR")
    p.add_argument("--copies", type=int, default=25, help="noisy copies of each corner")
    p.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian noise on the corners")
    args = p.parse_args(argv)
    cfg = _cli.config_from_args(args, DEFAULTS)
    if args.copies < 1:
        p.error(f"--copies={args.copies} is invalid: allowed an integer >= 1")
    if not args.noise >= 0:
        p.error(f"--noise={args.noise} is invalid: allowed a finite number >= 0")
    data = tasks.xor(args.data_seed, copies=args.copies, noise=args.noise, bare=args.bare)
    info = {"name": "xor", "bare": args.bare, "copies": args.copies, "noise": args.noise,
            "data_seed": args.data_seed, "n_train": len(data.x_train), "n_test": len(data.x_test)}
    return _cli.run("xor", cfg, data, args, PAPER, info, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
