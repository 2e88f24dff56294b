"""XOR with the paper's settings: `python -m experiments.xor [--seeds 100]`.

Every training option and data source of the other CLIs works here too; the
defaults are the paper's XOR (§4.1)."""

from __future__ import annotations

import sys

import jax
import numpy as np

from sbp_jax import tasks
from sbp_jax.config import TrainConfig
from sbp_jax.network import forward

from . import _cli, _run

PROG = "python -m experiments.xor"


def parser():
    """This CLI's argument parser."""
    return _cli.parser(PROG, "Structure-aware backprop on the paper's XOR (§4.1), seeds as one vmapped run.",
                       dataset="xor")


@_cli.guarded(PROG)
def main(argv: list[str] | None = None) -> dict:
    return _run.run_seeds(parser(), argv, lambda ds: ds.name if ds.name == "xor" else f"xor/{ds.name}", _analysis)


def _analysis(ds, cfg: TrainConfig):
    """The corner analysis of the plain paper setting on XOR data (None otherwise), as
    `_run.execute`'s `extend` hook: it adds the document's `analysis` section."""
    if ds.name != "xor" or cfg.bias or cfg.skip:
        return None
    return lambda doc, out, cfg, folder: doc.update(analysis=corner_analysis(out, ds, cfg))


def corner_analysis(out, ds, cfg: TrainConfig) -> dict:
    """Training accuracy per XOR corner cluster (mean over runs), and the
    largest violation of positive homogeneity |f(2x) − 2 f(x)| of the logit
    over runs and training points: 0 for a bias-free ReLU net, which is why
    the noisy points around (0, 0), spread over every direction, cannot all
    be classified."""
    x, y = ds.x_train, ds.y_train[:, 0]
    z = jax.vmap(lambda e: forward(e, x, cfg.hidden_activation))(out.result.edges)[..., 0]
    z2 = jax.vmap(lambda e: forward(e, 2 * x, cfg.hidden_activation))(out.result.edges)[..., 0]
    correct = np.asarray((z > 0) == (y[None, :] > 0.5))
    corner = np.argmin(((x[:, None, :] - tasks.XOR_CORNERS[None]) ** 2).sum(-1), axis=1)
    per = {f"({int(a)},{int(b)})": round(float(correct[:, corner == i].mean()), 4)
           for i, (a, b) in enumerate(tasks.XOR_CORNERS)}
    scale = float(np.max(np.abs(np.asarray(z)))) or 1.0
    return {"train_accuracy_per_corner": per,
            "homogeneity_violation_rel": float(np.max(np.abs(np.asarray(z2 - 2 * z)))) / scale}


if __name__ == "__main__":
    main(sys.argv[1:])
