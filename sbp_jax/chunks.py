"""One chunk of a sweep: the compiled program that trains and evaluates C
configs with the selected kernel (`run_chunk`, `chunk_program`), what it keeps
per config (`RunOutputs`), and the layout of its inputs over a device mesh.

A chunk's configs share the data; its inputs are per config (seed, λ, lr, ε,
warm start), split over the mesh's one axis 'c' with `shard_map` when there
is more than one device. Programs are compiled ahead of time once per static
setting, kernel and input shapes (`compiled`), so every chunk of a sweep, and
every later sweep of the same shapes in this process, reuses one program.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from . import distributed
from .config import TrainConfig
from .engine import train_chunk
from .loop import Hyper, TrainResult
from .metrics import evaluate
from .reference import train_core
from .structure import Structure, analyse, masked


class RunOutputs(NamedTuple):
    """What a sweep keeps per config (leading axis C in a sweep)."""

    result: TrainResult
    train: dict  # metric name -> scalar, full trained net on the training set
    val: dict  # same on the validation set ({} when the data has none)
    test: dict  # same on the test set
    pruned_val: dict  # masked net (|w| < ε set to 0) on the validation set ({} when none)
    pruned_test: dict  # masked net on the test set
    structure: Structure


SPLITS = ("train", "val", "test", "pruned_val", "pruned_test")  # the metric dicts of `RunOutputs`


def evaluate_one(static: TrainConfig, data, res: TrainResult, hyper: Hyper) -> RunOutputs:
    """The `RunOutputs` of one trained config (metrics and structure of `res.edges`);
    `data` is `(x, y, x_val, y_val, x_test, y_test)`, the validation split possibly empty."""
    x, y, xv, yv, xt, yt = data
    ev = functools.partial(evaluate, loss=static.loss, hidden_activation=static.hidden_activation)
    pruned = masked(res.edges, hyper.eps)
    has_val = xv.shape[0] > 0
    return RunOutputs(
        result=res,
        train=ev(res.edges, x, y),
        val=ev(res.edges, xv, yv) if has_val else {},
        test=ev(res.edges, xt, yt),
        pruned_val=ev(pruned, xv, yv) if has_val else {},
        pruned_test=ev(pruned, xt, yt),
        structure=analyse(res.edges, hyper.eps, static.bias),
    )


def run_chunk(static: TrainConfig, kernel: str, keep_state: bool, data, seeds, hyper: Hyper, init=None) -> RunOutputs:
    """Train and evaluate one chunk of configs (`seeds`, `hyper`, `init`: leading axis C) with `kernel`."""
    if kernel == "reference":
        res = jax.vmap(lambda s, h, i: train_core(static, data[0], data[1], jax.random.key(s), h, i))(seeds, hyper, init)
    else:
        res = train_chunk(static, data[0], data[1], jax.vmap(jax.random.key)(seeds), hyper, kernel, init)
    if not keep_state:
        res = res._replace(state=None)
    return jax.vmap(functools.partial(evaluate_one, static), in_axes=(None, 0, 0))(data, res, hyper)


@functools.lru_cache(maxsize=None)
def chunk_program(static: TrainConfig, mesh: Mesh | None, kernel: str, keep_state: bool = False) -> Callable:
    """The chunk program `(data, seeds, hyper, init) -> RunOutputs` for
    `static` and `kernel` (jitted; `init` None or per-config start states);
    sharded over `mesh`'s one axis 'c' when given."""
    body = functools.partial(run_chunk, static, kernel, keep_state)
    if mesh is not None:
        body = jax.shard_map(body, mesh=mesh, in_specs=(P(), P("c"), P("c"), P("c")), out_specs=P("c"),
                             check_vma=False)
    return jax.jit(body)


def inputs_of(g, init=None) -> tuple:
    """`(seeds, Hyper, init)` of the grid `g` as numpy arrays (uint32 seeds, float32 hyper-parameters)."""
    return (np.asarray(g.seed, np.uint32), Hyper(*(np.asarray(a, np.float32) for a in (g.lam, g.lr, g.eps))),
            init)


DATA_SPEC, CONFIG_SPEC = P(), P("c")


def to_device(tree, mesh: Mesh | None, spec: P):
    """Device arrays of the numpy `tree`: plain for one device, global arrays
    laid out by `spec` over `mesh` otherwise (each process builds its own shards)."""
    if mesh is None:
        return jax.tree.map(jnp.asarray, tree)
    return distributed.put(tree, mesh, spec)


def spec_of(tree) -> tuple:
    """Hashable (treedef, shapes, dtypes) of `tree`: the key of a compiled program."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((tuple(a.shape), str(a.dtype)) for a in leaves)


COMPILED: dict = {}


def compiled(static: TrainConfig, mesh: Mesh | None, kernel: str, keep_state: bool,
              spec: tuple) -> tuple[Callable, float]:
    """Ahead-of-time compiled chunk program for inputs `(data, (seeds, hyper, init))`
    of `spec`, and the seconds spent compiling it now (0 when this process
    compiled it before)."""
    key = (static, mesh, kernel, keep_state, spec)
    if key in COMPILED:
        return COMPILED[key], 0.0
    treedef, shapes = spec
    args = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(s, d) for s, d in shapes])
    if mesh is not None:
        data, inputs = args
        lay = lambda tree, spec: jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=NamedSharding(mesh, spec)), tree)
        args = (lay(data, DATA_SPEC), lay(inputs, CONFIG_SPEC))
    t0 = time.perf_counter()
    COMPILED[key] = chunk_program(static, mesh, kernel, keep_state).lower(args[0], *args[1]).compile()
    return COMPILED[key], time.perf_counter() - t0


def default_mesh() -> Mesh | None:
    """A 1-D mesh (axis 'c') over all devices of all processes, or None with a single device."""
    devs = jax.devices()
    return None if len(devs) == 1 else Mesh(np.array(devs), ("c",))
