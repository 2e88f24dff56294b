"""Which kernel trains a config: the one place that decides.

Kernels, fastest first (all run the same method; the conformance tests pin
each against the reference):

* 'single' (`single.train_single`): one run of the paper's plain setting
  (what `train` runs for it);
* 'two_layer' (`engine.train_chunk` with hand-written gradients): nets with
  one hidden layer of relu/identity units, one output, bce/mse loss, small
  layers; every other option (bias, skip, dropout, penalties, schedules,
  controller, minibatches, warm starts) included;
* 'wide' (`engine.train_chunk` with hand-written gradients as two matrix
  products over every config's units, `wide.wide_grads`): two_layer's nets
  with a layer above `network.SMALL_LAYER_EDGES` edges (e.g. [30,64,1]);
* 'autodiff' (`engine.train_chunk` with `jax.grad`): everything else;
* 'reference' (`reference.train_core`, vmapped in a sweep): the executable
  specification; never chosen automatically.

`train` and `run_grid` both call `select`; the kernel that ran is recorded in
their results (`run_grid`'s `timing["kernel"]`, the CLIs' results.json) and,
when a config is not on the fastest kernel, one log line (logger 'sbp_jax',
level INFO) names the field that keeps it off.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

from .config import TrainConfig
from .network import is_wide
from .single import single_ok
from .two_layer import two_layer_ok
from .wide import wide_ok

KERNELS = ("single", "two_layer", "wide", "autodiff", "reference")
REQUESTS = ("auto",) + KERNELS

log = logging.getLogger("sbp_jax")


class Choice(NamedTuple):
    """The kernel for a config, and why not a faster one (None when it is the fastest)."""

    kernel: str
    why_not_faster: str | None


def select(static: TrainConfig, *, single: bool, kernel: str = "auto") -> Choice:
    """The kernel that trains `static`.

    Args:
      static: the config (its traced λ, lr, ε do not matter).
      single: True for one run (`train`), False for a sweep (`run_grid`).
      kernel: 'auto' (the fastest that implements `static`) or a kernel name
        to force (ValueError when it does not implement `static`).
    """
    if kernel not in REQUESTS:
        raise ValueError(f"kernel={kernel!r} is invalid: allowed one of {', '.join(map(repr, REQUESTS))}")
    reasons = {"single": single_ok(static) if single else "a sweep runs many configs at once",
               "two_layer": two_layer_ok(static), "wide": wide_ok(static), "autodiff": None, "reference": None}
    if kernel != "auto":
        if reasons[kernel] is not None:
            raise ValueError(f"kernel={kernel!r} is invalid for this config ({reasons[kernel]}): allowed 'auto', "
                             + ", ".join(repr(k) for k in KERNELS if reasons[k] is None))
        return Choice(kernel, None)
    # two_layer and wide are one method (hand-written one-hidden-layer gradients) for small and wide
    # nets: only the one for the net's size is a candidate (and named when the config is off it)
    other = "two_layer" if is_wide(static.layout) else "wide"
    candidates = tuple(k for k in (KERNELS[:4] if single else KERNELS[1:4]) if k != other)
    chosen = next(k for k in candidates if reasons[k] is None)
    faster = candidates[:candidates.index(chosen)]
    why = "; ".join(f"not {k}: {reasons[k]}" for k in faster) or None
    if why:
        _note(chosen, why)
    return Choice(chosen, why)


@functools.lru_cache(maxsize=256)
def _note(kernel: str, why: str) -> None:
    """Log once per (kernel, reason) and process."""
    log.info("sbp_jax kernel %s (%s)", kernel, why)
