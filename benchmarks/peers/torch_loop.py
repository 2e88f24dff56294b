"""Peer (a): the paper's method in idiomatic PyTorch, one run at a time.

`nn.Parameter` list, Python epoch loop, `torch.optim.Adam`, the L1 subgradient
λ·sign(w) added to `.grad` before `step()` — the same rule as sbp_jax's
`chain(add_l1_subgradient(λ), adam(lr))`. No biases; ReLU hidden layers; raw
output z; loss 'bce' = mean(softplus(z) − y·z) (BCE with logits) or
'mse' = mean((z − y)²).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def forward(params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = x
    for w in params[:-1]:
        h = torch.relu(h @ w.T)
    return h @ params[-1].T


def task_loss(z: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(z, y)
    if loss == "mse":
        return F.mse_loss(z, y)
    raise ValueError(f"loss={loss!r} is invalid: allowed 'bce', 'mse'")


def train(
    edges0: Sequence[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    loss: str,
    lam: float,
    lr: float,
    epochs: int,
    eps: float = 1e-2,
    history: bool = True,
):
    """Train one net from the initial edges `edges0` (`(n_out, n_in)` arrays).

    Returns `(edges, hist)`: final edges as float32 numpy arrays and, when
    `history`, a dict of per-epoch lists `task_loss` (before the update),
    `penalty` (λ·Σ|w|) and `active_edges` (#|w| >= ε); empty lists otherwise.
    """
    params = [torch.nn.Parameter(torch.tensor(np.asarray(w, np.float32))) for w in edges0]
    xt = torch.tensor(np.asarray(x, np.float32))
    yt = torch.tensor(np.asarray(y, np.float32))
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    hist = {"task_loss": [], "penalty": [], "active_edges": []}
    for _ in range(epochs):
        opt.zero_grad()
        task = task_loss(forward(params, xt), yt, loss)
        task.backward()
        with torch.no_grad():
            for p in params:
                p.grad.add_(torch.sign(p), alpha=lam)
            if history:
                hist["task_loss"].append(task.item())
                hist["penalty"].append(lam * sum(p.abs().sum().item() for p in params))
                hist["active_edges"].append(sum(int((p.abs() >= eps).sum()) for p in params))
        opt.step()
    return [p.detach().numpy().copy() for p in params], hist
