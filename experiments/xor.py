"""XOR with the paper's settings: `python -m experiments.xor [--seeds 100]`."""

from __future__ import annotations

import sys

import jax
import numpy as np

from sbp_jax import tasks
from sbp_jax.network import forward
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
    return _cli.run("xor", cfg, data, args, PAPER, info, argv,
                    analyse=lambda res: corner_analysis(res, data, cfg))


def corner_analysis(res, data, cfg: TrainConfig) -> dict:
    """Training accuracy per XOR corner cluster (mean over runs), and the
    largest violation of positive homogeneity |f(2x) − 2 f(x)| of the logit
    over runs and training points: 0 for a bias-free ReLU net, which is why
    the noisy points around (0, 0), spread over every direction, cannot all
    be classified."""
    x, y = data.x_train, data.y_train[:, 0]
    z = jax.vmap(lambda e: forward(e, x, cfg.hidden_activation))(res.result.edges)[..., 0]
    z2 = jax.vmap(lambda e: forward(e, 2 * x, cfg.hidden_activation))(res.result.edges)[..., 0]
    correct = np.asarray((z > 0) == (y[None, :] > 0.5))
    corner = np.argmin(((x[:, None, :] - tasks.XOR_CORNERS[None]) ** 2).sum(-1), axis=1)
    per = {f"({int(a)},{int(b)})": round(float(correct[:, corner == i].mean()), 4)
           for i, (a, b) in enumerate(tasks.XOR_CORNERS)}
    scale = float(np.max(np.abs(np.asarray(z)))) or 1.0
    return {"train_accuracy_per_corner": per,
            "homogeneity_violation_rel": float(np.max(np.abs(np.asarray(z2 - 2 * z)))) / scale}


if __name__ == "__main__":
    main(sys.argv[1:])
