"""`TrainConfig`: every setting of one run, frozen and validated at construction.

Validation happens here, in Python, before anything is traced, so a bad value
fails with a message naming the argument, the value and what is allowed rather
than with an XLA shape error deep inside `jit`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import numpy as np

from .layout import Layout

HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")
LOSSES = ("bce", "mse", "cross_entropy")
INITS = ("uniform", "he_normal", "glorot_uniform")
DTYPES = ("float32",)
PENALTIES = ("subgradient", "proximal", "proximal_plain")  # see penalty.py
LAM_SCHEDULES = ("constant", "warmup_ramp")
BIAS_INITS = ("same", "zeros")

# Output activation implied by each task loss (the net returns raw outputs;
# `bce` and `cross_entropy` are computed from logits for numerical stability).
OUTPUT_ACTIVATION = {"bce": "sigmoid", "mse": "identity", "cross_entropy": "softmax"}


def _fail(name: str, value: Any, allowed: str, exc: type[Exception] = ValueError):
    raise exc(f"{name}={value!r} is invalid: allowed {allowed}")


def check_finite_nonneg(name: str, value: Any, *, positive: bool = False) -> float:
    """Return `value` as a float if it is a finite number >= 0 (> 0 if `positive`)."""
    allowed = "a finite number > 0" if positive else "a finite number >= 0"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        _fail(name, value, allowed, TypeError)
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        _fail(name, value, allowed)
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        _fail(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return `value` as a Python int if it is an integer (NumPy's too) >= `minimum`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        _fail(name, value, f"an integer >= {minimum}", TypeError)
    if value < minimum:
        _fail(name, value, f"an integer >= {minimum}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one structure-aware training run (the paper's defaults).

    Attributes:
      layers: widths `(n_in, n_hidden..., n_out)`; at least 2 entries, each >= 1.
      hidden_activation: σ of the hidden layers, one of `HIDDEN_ACTIVATIONS`.
      loss: task loss, one of `LOSSES`; fixes the output activation
        (`bce` → sigmoid on one or more independent outputs, `mse` → identity,
        `cross_entropy` → softmax over >= 2 outputs).
      lam: λ, weight of the L1 penalty λ·Σ|w|; finite, >= 0.
      lr: Adam learning rate; finite, > 0.
      epochs: full-batch epochs (one Adam step each); >= 1.
      eps: threshold ε: an edge is active when |w| >= ε; finite, >= 0.
      init: initial weight scheme, one of `INITS` (see `network.init_edges`).
      dtype: parameter and data dtype; only "float32".
      history_every: record the history every k epochs (1 = every epoch,
        0 = no history); bounded memory for long runs and big sweeps.
      batch_size: samples per Adam step; 0 (the default, the paper's setting)
        = full batch, one step per epoch. With b > 0 an epoch is
        ceil(n/b) steps over a fresh shuffle of the data per epoch; the
        ragged last batch is padded and masked out of the loss (see
        `loop.py`). b >= n is full batch.
      shuffle_seed: the seed of the minibatch order, in [0, 2**32): epoch t's
        order is a pure function of (shuffle_seed, t), shared by every run
        with this seed (like the data seed: the run's key varies the
        initialisation and the dropout masks, not the batches; see
        `loop.epoch_batches`). Unused with full batch.
      penalty: how the L1 term acts, one of `PENALTIES`: 'subgradient' (the
        paper: λ·sign(w) added to the gradient before Adam), 'proximal'
        (soft-thresholding after Adam in Adam's preconditioned coordinates,
        τ = lr·λ/(sqrt(v̂ + λ²) + 1e-8), see `penalty.proximal_l1`),
        'proximal_plain' (τ = lr·λ; prunes little).
      layer_lams: None or one multiplier per layer: layer l uses λ·layer_lams[l]
        (multipliers, so λ stays the one traced, sweepable scalar).
      lam_schedule: 'constant' (the paper) or 'warmup_ramp': λ·s(t) with
        s = 0 for `lam_warmup` optimizer steps, then linear to 1 over
        `lam_ramp` steps (steps = epochs with full batch).
      lam_warmup, lam_ramp: the schedule's step counts (>= 0).
      target_active: None or a fraction in (0, 1]: a controller sets λ every
        step to reach that fraction of active edges (it replaces `lam`):
        λ = q·e^I, q the (1 − target) quantile of the task gradient's |g|
        over all edges, I += target_gain·(active fraction at ε − target),
        clipped to ±2 (see `penalty.make_optimizer_from`).
      target_gain: the controller's integral gain (> 0).
      bias: False (the paper: no biases) or True: every non-output layer gets
        a constant-1 node whose out-edges are ordinary edges (penalised,
        thresholded, pruned, counted): `edges[l]` is `(n_{l+1}, n_l + 1)`,
        the last column holding the bias node's edges (see `network.py`).
      bias_init: initial bias edges when `bias`: 'zeros' (the default) or
        'same' (drawn like the layer's other edges, fan_in = n_l). Zeros won
        on noisy XOR [2,4,1], 100 seeds: pruned test accuracy 0.84 vs 0.71
        at lr 1e-3, 0.93 vs 0.87 at lr 1e-2 (random biases of scale ~1 kill
        ReLU units on [0,1]² from the start). A zero bias edge is inactive
        (|w| < ε) and unpenalised (sign(0) = 0) until the task gradient moves
        it; see the README (section "Beyond the paper").
      skip: False (the paper: layer l+1 sees layer l only) or True: skip
        connections, every layer is fed by all earlier layers (a layered DAG,
        `edges[l]` of shape `(n_{l+1}, n_0 + … + n_l [+ 1])`, see
        `layout.py`), so the penalty can also decide the depth. Needs a
        hidden layer (len(layers) >= 3).
      dropout: structural dropout probability p in [0, 1): every training
        epoch each edge is dropped with probability p (a fresh mask per
        epoch from the run's key, see `train.py`) and the kept ones are
        scaled by 1/(1−p); evaluation uses the full net. 0 = the paper.
    """

    layers: tuple[int, ...] = (2, 4, 1)
    hidden_activation: str = "relu"
    loss: str = "bce"
    lam: float = 1e-2
    lr: float = 1e-3
    epochs: int = 1000
    eps: float = 1e-2
    init: str = "he_normal"
    dtype: str = "float32"
    history_every: int = 1
    batch_size: int = 0
    shuffle_seed: int = 0
    penalty: str = "subgradient"
    layer_lams: tuple[float, ...] | None = None
    lam_schedule: str = "constant"
    lam_warmup: int = 0
    lam_ramp: int = 0
    target_active: float | None = None
    target_gain: float = 0.01
    bias: bool = False
    bias_init: str = "zeros"
    skip: bool = False
    dropout: float = 0.0

    def __post_init__(self):
        layers = self.layers
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            _fail("layers", layers, "a sequence of >= 2 positive integers", TypeError)
        layers = tuple(layers)
        if len(layers) < 2:
            _fail("layers", layers, "a sequence of >= 2 positive integers")
        layers = tuple(check_int(f"layers[{i}]", n, 1) for i, n in enumerate(layers))
        object.__setattr__(self, "layers", layers)
        check_choice("hidden_activation", self.hidden_activation, HIDDEN_ACTIVATIONS)
        check_choice("loss", self.loss, LOSSES)
        if self.loss == "cross_entropy" and layers[-1] < 2:
            _fail("layers[-1]", layers[-1], "an integer >= 2 with loss='cross_entropy'")
        for name in ("lam", "eps"):
            object.__setattr__(self, name, check_finite_nonneg(name, getattr(self, name)))
        object.__setattr__(self, "lr", check_finite_nonneg("lr", self.lr, positive=True))
        for name, minimum in (("epochs", 1), ("history_every", 0), ("batch_size", 0), ("shuffle_seed", 0)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum))
        if self.shuffle_seed >= 2**32:
            _fail("shuffle_seed", self.shuffle_seed, "an integer in [0, 2**32)")
        check_choice("init", self.init, INITS)
        check_choice("dtype", self.dtype, DTYPES)
        self._check_penalty_options(layers)
        if not isinstance(self.bias, bool):
            _fail("bias", self.bias, "True or False", TypeError)
        check_choice("bias_init", self.bias_init, BIAS_INITS)
        if not isinstance(self.skip, bool):
            _fail("skip", self.skip, "True or False", TypeError)
        if self.skip and len(layers) < 3:
            _fail("skip", self.skip, f"False for layers={layers} (skip edges need a hidden layer, len(layers) >= 3)")
        p = check_finite_nonneg("dropout", self.dropout)
        if not p < 1:
            _fail("dropout", p, "a probability in [0, 1)")
        object.__setattr__(self, "dropout", p)

    def _check_penalty_options(self, layers: tuple[int, ...]) -> None:
        """Validate the beyond-the-paper penalty options (see the class docstring)."""
        check_choice("penalty", self.penalty, PENALTIES)
        if self.layer_lams is not None:
            ll = self.layer_lams
            if isinstance(ll, (str, bytes)) or not hasattr(ll, "__iter__"):
                _fail("layer_lams", ll, f"None or a sequence of {len(layers) - 1} finite numbers >= 0", TypeError)
            ll = tuple(ll)
            if len(ll) != len(layers) - 1:
                _fail("layer_lams", ll, f"None or one multiplier per layer ({len(layers) - 1} for layers={layers})")
            ll = tuple(check_finite_nonneg(f"layer_lams[{i}]", v) for i, v in enumerate(ll))
            object.__setattr__(self, "layer_lams", ll)
        check_choice("lam_schedule", self.lam_schedule, LAM_SCHEDULES)
        check_int("lam_warmup", self.lam_warmup, 0)
        check_int("lam_ramp", self.lam_ramp, 0)
        if self.lam_schedule == "constant" and (self.lam_warmup or self.lam_ramp):
            _fail("lam_schedule", self.lam_schedule, "'warmup_ramp' when lam_warmup or lam_ramp is set")
        if self.target_active is not None:
            t = check_finite_nonneg("target_active", self.target_active)
            if not 0 < t <= 1:
                _fail("target_active", t, "None or a fraction in (0, 1]")
            object.__setattr__(self, "target_active", t)
        object.__setattr__(self, "target_gain", check_finite_nonneg("target_gain", self.target_gain, positive=True))

    @property
    def output_activation(self) -> str:
        return OUTPUT_ACTIVATION[self.loss]

    @property
    def layout(self) -> Layout:
        """Which node feeds which column of each edge array (`layout.Layout`)."""
        return Layout(self.layers, self.bias, self.skip)

    @property
    def total_edges(self) -> int:
        """All possible edges, bias and skip edges included."""
        return self.layout.total_edges

    @property
    def n_records(self) -> int:
        """Length of the per-run history (0 when `history_every == 0`)."""
        return 0 if self.history_every == 0 else self.epochs // self.history_every

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def static_part(self) -> "TrainConfig":
        """This config with the traced hyper-parameters (λ, lr, ε) set to fixed
        placeholders, so that it can serve as a `jit` static argument: every λ,
        lr and ε then shares one compiled program."""
        return dataclasses.replace(self, lam=0.0, lr=1.0, eps=0.0)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        d["output_activation"] = self.output_activation
        return d
