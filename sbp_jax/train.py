"""Training one run: `train(config, x, y, key)`, validated before tracing.

`train` validates the config and the data, asks `kernels.select` which
kernel implements the config, and runs it jitted (one compiled program per
static setting: λ, lr and ε are traced, so every value shares it):

* the paper's plain setting: the single-run kernel (`single.py`);
* anything else: the fast engine (`engine.py`) with one config;
* `kernel="reference"`: the executable specification (`reference.train_core`).

Every kernel runs the same method and returns the same `TrainResult`; the
conformance tests pin them to the reference to float32 rounding. A run
continues from an earlier one with `init=` (its `result.state`, or edges
alone for a fresh optimizer): N epochs then N more equal 2N epochs.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from . import engine, kernels
from .config import TrainConfig
from .loop import Hyper, TrainResult, TrainState, fresh_state, hyper_of
from .network import init_edges
from .reference import train_core
from .single import train_single


def _program(static: TrainConfig, kernel: str, x, y, key, hyper: Hyper, init) -> TrainResult:
    """The jitted body of `train`: the chosen kernel on one config."""
    if kernel == "single":
        return train_single(static, x, y, key, hyper, init)
    if kernel == "reference":
        return train_core(static, x, y, key, hyper, init)
    batched = lambda tree: None if tree is None else jax.tree.map(lambda a: a[None], tree)
    res = engine.train_chunk(static, x, y, key[None], batched(hyper), kernel, batched(init))
    return jax.tree.map(lambda a: a[0], res)


_train_jit = jax.jit(_program, static_argnums=(0, 1))


def check_data(config: TrainConfig, x, y, name: str = "x") -> tuple[jax.Array, jax.Array]:
    """Validate `(x, y)` against `config` and return them as device arrays.

    `x` must be a non-empty finite float array `(n, layers[0])`; `y` must be
    `(n, layers[-1])` float for 'bce' (values in {0, 1}) and 'mse', or `(n,)`
    integer labels in `[0, layers[-1])` for 'cross_entropy'. `name` prefixes
    the argument names in error messages (e.g. 'x_test').
    """
    yname = "y" + name[1:]
    x = np.asarray(x)
    y = np.asarray(y)
    n_in, n_out = config.layers[0], config.layers[-1]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"{name}.shape={x.shape} is invalid: allowed (n_samples, {n_in}) for layers={config.layers}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}.shape={x.shape} is invalid: allowed at least one sample")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}.dtype={x.dtype} is invalid: allowed a floating dtype (float32 is used)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf at {int(np.sum(~np.isfinite(x)))} entries: allowed finite values only")
    if config.loss == "cross_entropy":
        if y.shape != (x.shape[0],):
            raise ValueError(f"{yname}.shape={y.shape} is invalid: allowed ({x.shape[0]},) integer labels for loss='cross_entropy'")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{yname}.dtype={y.dtype} is invalid: allowed an integer dtype for loss='cross_entropy'")
        if y.min() < 0 or y.max() >= n_out:
            raise ValueError(f"{yname} has labels in [{y.min()}, {y.max()}]: allowed 0..{n_out - 1}")
        return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    if y.shape != (x.shape[0], n_out):
        raise ValueError(f"{yname}.shape={y.shape} is invalid: allowed ({x.shape[0]}, {n_out}) for layers={config.layers}")
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise TypeError(f"{yname}.dtype={y.dtype} is invalid: allowed a numeric dtype")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{yname} contains NaN or inf: allowed finite values only")
    if config.loss == "bce" and not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{yname} has values other than 0 and 1: allowed {{0, 1}} for loss='bce'")
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def check_init(config: TrainConfig, init, n_runs: int | None = None):
    """Validate a warm start and return it as a `TrainState` (None stays None).

    `init` is a `TrainState` (a run's `result.state`: edges, optimizer state
    and epoch, continuing that run exactly) or a tuple of edge arrays (a fresh
    optimizer at epoch 0). With `n_runs`, every leaf carries a leading axis of
    that length (one start per config of a sweep). Shapes and the optimizer
    state's structure must be those of `config`. Returns the `TrainState`, the
    tuple of float32 edge arrays, or None."""
    if init is None:
        return None
    lead = () if n_runs is None else (n_runs,)
    lay = config.layout
    want = tuple((*lead, *lay.shape(l)) for l in range(lay.n_layers))
    edges = init.edges if isinstance(init, TrainState) else init
    if not isinstance(edges, (tuple, list)) or tuple(tuple(np.shape(w)) for w in edges) != want:
        got = [tuple(np.shape(w)) for w in edges] if isinstance(edges, (tuple, list)) else type(edges).__name__
        raise ValueError(f"init edges with shapes {got} are invalid: allowed shapes {list(want)} for layers="
                         f"{config.layers}, bias={config.bias}, skip={config.skip}")
    edges = tuple(jnp.asarray(w, jnp.float32) for w in edges)
    if not isinstance(init, TrainState):
        return edges  # edges only: the caller builds the fresh optimizer state
    expect = jax.eval_shape(lambda e: fresh_state(config.static_part(), jax.random.key(0), hyper_of(config), e),
                            tuple(w[0] if lead else w for w in edges))
    got_state = TrainState(edges, init.opt_state, jnp.asarray(init.epoch, jnp.int32))
    if jax.tree.structure(got_state) != jax.tree.structure(expect) or any(
            tuple(np.shape(a)) != (*lead, *b.shape) for a, b in zip(jax.tree.leaves(got_state), jax.tree.leaves(expect))):
        raise ValueError("init.opt_state is invalid: allowed the optimizer state of a run of this config "
                         f"(penalty={config.penalty!r}, lam_schedule={config.lam_schedule!r}, target_active="
                         f"{config.target_active!r}) with {'a leading axis of ' + str(n_runs) if lead else 'no leading axis'}")
    return got_state


def train(config: TrainConfig, x, y, key: PRNGKeyArray, *, init=None, kernel: str = "auto") -> TrainResult:
    """Train one net with the paper's method; validates inputs before tracing.

    Args:
      config: a `TrainConfig`.
      x: inputs `(n, layers[0])`; y: targets (see `check_data`).
      key: PRNG key (`jax.random.key(seed)`) for the initial edges and the
        dropout masks (the minibatch order is `config.shuffle_seed`'s).
      init: a warm start: an earlier run's `result.state` (continues it
        exactly: N epochs then N more equal 2N epochs), or a tuple of edge
        arrays (a fresh optimizer from those edges). Default: `init_edges(key)`.
      kernel: 'auto' (`kernels.select`) or a kernel name to force.
    Returns:
      `TrainResult` with final edges, the history (`config.n_records`
      records), `diverged_at` and the final `state`.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config={config!r} is invalid: allowed a TrainConfig")
    x, y = check_data(config, x, y)
    static = config.static_part()
    choice = kernels.select(static, single=True, kernel=kernel)
    start = check_init(config, init)
    if start is None:  # drawn by the shared init program, not inside this run's program
        start = init_edges(key, static.layers, static.init, bias=static.bias, bias_init=static.bias_init,
                           skip=static.skip)
    return _train_jit(static, choice.kernel, x, y, key, hyper_of(config), start)
