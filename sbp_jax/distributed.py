"""Several processes (hosts) as one JAX cluster: thin helpers over JAX's own engine.

A multi-host sweep is the single-host sweep with a bigger `Mesh`: after
`initialize`, `jax.devices()` lists every process's devices; each chunk's
config axis is a global array sharded over all of them (each process builds
only the shards that live on its own devices), every process runs the same
compiled chunk program on its shards, and `gather` brings the results back
(`multihost_utils.process_allgather`). Only process 0 writes files.

On CPU the processes exchange data through gloo collectives; on GPUs/TPUs
JAX picks NCCL/ICI itself. The same code runs on a multi-GPU node (one
process, several devices: no `initialize` needed) and on a cluster (one
process per host, coordinator on a real host, or auto-detected under SLURM /
Open MPI / Kubernetes).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 120,
) -> None:
    """Join (or form) a JAX cluster; call before anything touches a device.

    Args:
      coordinator: "host:port" of process 0's coordinator service; default
        `$JAX_COORDINATOR_ADDRESS`, else auto-detected by JAX (SLURM, Open MPI, ...).
      num_processes: processes in the cluster; default `$JAX_NUM_PROCESSES`
        or auto-detected.
      process_id: this process's index in `[0, num_processes)`; default
        `$JAX_PROCESS_ID` or auto-detected.
      timeout_s: seconds to wait for the other processes to join.
    """
    env = os.environ
    coordinator = coordinator or env.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None and env.get("JAX_NUM_PROCESSES"):
        num_processes = int(env["JAX_NUM_PROCESSES"])
    if process_id is None and env.get("JAX_PROCESS_ID"):
        process_id = int(env["JAX_PROCESS_ID"])
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes={num_processes} is invalid: allowed an integer >= 1")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} is invalid: allowed 0..{num_processes - 1}")
    # CPU devices of different processes talk through gloo (no effect on GPU/TPU).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout_s)


def is_main() -> bool:
    """True on process 0 (the one that prints and writes files)."""
    return jax.process_index() == 0


def global_array(a: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array with value `a` (known to every process) laid out by `sharding`;
    each process materialises only the shards on its own devices."""
    a = np.asarray(a)
    return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])


def put(tree, mesh, spec: PartitionSpec):
    """`global_array` over every leaf of `tree` with `NamedSharding(mesh, spec)`."""
    sharding = NamedSharding(mesh, spec)
    return jax.tree.map(lambda a: global_array(a, sharding), tree)


def gather(tree):
    """Every leaf of `tree` as a full numpy array on every process."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def broadcast(x):
    """Process 0's value of `x` (a numpy pytree of equal shapes) on every process."""
    if jax.process_count() == 1:
        return x
    return multihost_utils.broadcast_one_to_all(x)
