"""sbp_jax: Structure-Aware Backpropagation in JAX.

Every possible connection of a layered net is an edge weight; an L1 penalty
(an optax transformation chained before Adam) drives useless edges to zero;
what survives the threshold ε is the learned architecture.
"""

from .config import TrainConfig
from .network import SparseMLP, forward, init_edges
from .objective import objective, task_loss
from .penalty import add_l1_subgradient, l1_norm, make_optimizer
from .structure import Structure, analyse, live_nodes, masked, masks, prune
from .metrics import evaluate
from .loop import History, Hyper, TrainResult, TrainState
from .train import check_data, train, train_core
from .kernels import select as select_kernel
from .chunks import RunOutputs
from .sweep import Grid, make_grid, run_grid
from . import tasks

__all__ = [
    "TrainConfig",
    "SparseMLP",
    "forward",
    "init_edges",
    "objective",
    "task_loss",
    "add_l1_subgradient",
    "l1_norm",
    "make_optimizer",
    "Structure",
    "analyse",
    "live_nodes",
    "masked",
    "masks",
    "prune",
    "evaluate",
    "History",
    "Hyper",
    "TrainResult",
    "TrainState",
    "select_kernel",
    "check_data",
    "train",
    "train_core",
    "Grid",
    "RunOutputs",
    "make_grid",
    "run_grid",
    "tasks",
]
