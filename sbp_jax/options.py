"""The one table of training options: every `TrainConfig` field, its CLI flag,
how the flag's text is parsed and what it means to a user.

Every CLI adds its training flags from `OPTIONS` (`add_flags`) and turns the
parsed arguments back into `TrainConfig` changes (`changes`); the
scikit-learn estimators take the same fields as parameters. A new
`TrainConfig` field without a row here fails `tests/test_options.py`. Values
are validated once, by `TrainConfig`; `flag_message` rewrites its
`field=value is invalid: ...` messages in terms of the flag.

The three hyper-parameters a sweep traces (λ, lr, ε) also have a grid flag
(`--lams`, `--lrs`, `--epss`): a list or `logspace:START:STOP:NUM`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from . import config as C

GRID_FORMS = ("a comma-separated list of numbers (e.g. 0,1e-3,1e-2) or logspace:START:STOP:NUM "
              "(NUM values 10^START..10^STOP)")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 2,4,1") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, e.g. 1,0.1") from None


AUTO = "auto"  # λ chosen by the λ path and the 1-SE rule on validation (`sbp_jax.path.auto_lam`)
AUTO_HELP = "'auto': λ chosen on the validation split by the 1-SE rule over a λ path"


def lam_value(text: str) -> float | str:
    """A λ flag's text: a number, or `AUTO`."""
    return AUTO if text.strip().lower() == AUTO else _number(text)


def _optional_number(text: str) -> float | None:
    return None if text.strip().lower() in ("none", "off") else _number(text)


def grid_values(text: str) -> list[float]:
    """'0,1e-3,1e-2' or 'logspace:-4:-1:13' (13 values 10^-4..10^-1) as floats;
    raises `argparse.ArgumentTypeError` saying what is wrong (range checks are
    `TrainConfig`'s / `sweep.make_grid`'s)."""
    text = text.strip()
    if text.startswith("logspace:"):
        parts = text.split(":")[1:]
        try:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3 or not (math.isfinite(start) and math.isfinite(stop)) or num < 1:
                raise ValueError
        except (ValueError, IndexError):
            raise argparse.ArgumentTypeError(f"{text!r} is not logspace:START:STOP:NUM with finite START, STOP "
                                             "and an integer NUM >= 1") from None
        return [float(v) for v in np.logspace(start, stop, num)]
    items = [t.strip() for t in text.split(",")]
    if not text or any(t == "" for t in items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty entry: allowed {GRID_FORMS}")
    try:
        values = [float(t) for t in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {GRID_FORMS}") from None
    for v in values:
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} contains {v}: allowed finite numbers")
    return values


@dataclasses.dataclass(frozen=True)
class Option:
    """One training option.

    Attributes:
      field: the `TrainConfig` field.
      flag: its CLI flag.
      parse: `str -> value` for argparse (None for an on/off flag).
      help: one line for users.
      grid_flag: for the traced hyper-parameters, the sweep's flag taking a
        grid of values (parsed by `grid_values`).
      metavar: argparse's placeholder.
    """

    field: str
    flag: str
    parse: Callable[[str], Any] | None
    help: str
    grid_flag: str | None = None
    metavar: str | None = None


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values)


OPTIONS: tuple[Option, ...] = (
    Option("layers", "--layers", _ints, "layer widths n_in,hidden...,n_out (default: the data's inputs and outputs "
           "around the source's hidden widths; see --hidden)", metavar="2,4,1"),
    Option("hidden_activation", "--activation", str, "hidden activation: " + _choices(C.HIDDEN_ACTIVATIONS)),
    Option("loss", "--loss", str, "task loss: " + _choices(C.LOSSES) + " (default: from the data's kind)"),
    Option("lam", "--lam", lam_value, "λ, weight of the L1 penalty λ·Σ|w|", grid_flag="--lams", metavar="LAM|auto"),
    Option("lr", "--lr", _number, "Adam learning rate", grid_flag="--lrs"),
    Option("epochs", "--epochs", _integer, "training epochs (full batch: one Adam step each)"),
    Option("eps", "--eps", _number, "activity threshold ε: an edge is active when |w| >= ε", grid_flag="--epss"),
    Option("init", "--init", str, "initial weights: " + _choices(C.INITS) + " (uniform is PyTorch's default)"),
    Option("dtype", "--dtype", str, "parameter and data dtype: " + _choices(C.DTYPES)),
    Option("history_every", "--history-every", _integer, "record the training history every k epochs (0: none)"),
    Option("batch_size", "--batch-size", _integer, "samples per Adam step (0: full batch, the paper's setting)"),
    Option("shuffle_seed", "--shuffle-seed", _integer, "seed of the minibatch order, shared by every run (the "
           "run's --seed varies the initialisation only)"),
    Option("penalty", "--penalty", str, "how the L1 term acts: subgradient (the paper), proximal (soft-threshold "
           "after Adam, Adam-preconditioned), proximal_plain (threshold lr·λ)"),
    Option("layer_lams", "--layer-lams", _floats, "per-layer λ multipliers, one per layer (layer l uses λ·m_l)",
           metavar="1,0.1"),
    Option("lam_schedule", "--lam-schedule", str, "λ over training: " + _choices(C.LAM_SCHEDULES)),
    Option("lam_warmup", "--lam-warmup", _integer, "warmup_ramp: optimizer steps with λ = 0"),
    Option("lam_ramp", "--lam-ramp", _integer, "warmup_ramp: steps of the linear ramp to λ"),
    Option("target_active", "--target-active", _optional_number, "fraction of active edges a controller steers λ "
           "to (e.g. 0.3; replaces --lam; 'none' = off)"),
    Option("target_gain", "--target-gain", _number, "the controller's integral gain"),
    Option("bias", "--bias", None, "bias as an edge: a constant-1 node per non-output layer, penalised and pruned "
           "like every edge"),
    Option("bias_init", "--bias-init", str, "initial bias edges: " + _choices(C.BIAS_INITS)),
    Option("skip", "--skip", None, "skip connections: every layer fed by all earlier layers (the penalty decides "
           "the depth)"),
    Option("dropout", "--dropout", _number, "structural dropout: each edge dropped with this probability per "
           "training step"),
)
BY_FIELD = {o.field: o for o in OPTIONS}
_FLAGS = {o.field: o.flag for o in OPTIONS} | {o.grid_flag[2:]: o.grid_flag for o in OPTIONS if o.grid_flag}


def add_flags(parser: argparse.ArgumentParser, defaults: C.TrainConfig | None = None, *, grid: bool = False,
              title: str = "training options") -> argparse._ArgumentGroup:
    """Add every option's flag to `parser` (in a group `title`), each
    defaulting to None = "not given" (the shown default is `defaults`'s).
    With `grid`, λ, lr and ε take their grid flag instead (with the scalar
    flag as an alias)."""
    g = parser.add_argument_group(title)
    for o in OPTIONS:
        shown = "" if defaults is None else f" (default: {_shown(getattr(defaults, o.field))})"
        if o.parse is None:
            g.add_argument(o.flag, dest=o.field, action=argparse.BooleanOptionalAction, default=None,
                           help=o.help + shown)
        elif grid and o.grid_flag:
            g.add_argument(o.grid_flag, o.flag, dest=o.field, type=grid_values, default=None, metavar="GRID",
                           help=f"{o.help}: {GRID_FORMS}" + shown)
        else:
            auto = f", or {AUTO_HELP}" if o.parse is lam_value else ""
            g.add_argument(o.flag, dest=o.field, type=o.parse, default=None, metavar=o.metavar,
                           help=o.help + auto + shown)
    return g


def _shown(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(str(x) for x in v)
    return str(v)


def changes(args: argparse.Namespace) -> dict[str, Any]:
    """The `TrainConfig` fields the user set on the command line."""
    return {o.field: getattr(args, o.field) for o in OPTIONS if getattr(args, o.field, None) is not None}


_FIELD_RE = re.compile(r"^(\w+)(\[-?\d+\])?=")


def flag_message(message: str) -> str:
    """A `TrainConfig` or `make_grid` error (`lam=nan is invalid: ...`,
    `lams[2]=-1.0 is invalid: ...`) in terms of the flag (`--lam=nan ...`,
    `--lams[2]=-1.0 ...`); other messages are returned unchanged."""
    m = _FIELD_RE.match(message)
    if m and m.group(1) in _FLAGS:
        return _FLAGS[m.group(1)] + message[len(m.group(1)):]
    return message
