"""a + b regression with the paper's settings: `python -m experiments.addition [--seeds 100]`."""

from __future__ import annotations

import sys

from sbp_jax import tasks
from sbp_jax.config import TrainConfig

from . import _cli

DEFAULTS = TrainConfig(layers=(2, 8, 1), loss="mse", epochs=2000)
PAPER = {"mse": 0.378, "mae": 0.437, "r2": 0.796, "active_edges": 12, "total_edges_stated": 16}


def main(argv: list[str] | None = None) -> dict:
    p = _cli.parser("python -m experiments.addition", "Structure-aware backprop on a + b (paper §4.2).", DEFAULTS)
    p.add_argument("--n-train", type=int, default=200, help="training samples, a, b ~ U[0, 1]")
    p.add_argument("--n-test", type=int, default=1000, help="test samples (a separate draw)")
    args = p.parse_args(argv)
    cfg = _cli.config_from_args(args, DEFAULTS)
    for flag, v in (("--n-train", args.n_train), ("--n-test", args.n_test)):
        if v < 1:
            p.error(f"{flag}={v} is invalid: allowed an integer >= 1")
    data = tasks.addition(args.data_seed, n_train=args.n_train, n_test=args.n_test)
    info = {"name": "addition", "distribution": "a, b ~ U[0, 1] iid", "data_seed": args.data_seed,
            "n_train": args.n_train, "n_test": args.n_test}
    return _cli.run("addition", cfg, data, args, PAPER, info, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
