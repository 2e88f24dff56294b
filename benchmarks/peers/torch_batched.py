"""Peer (b): the strongest PyTorch way we found to run many configs at once.

All C configs' weights live in one flat float32 buffer `(C, P)` (P = total
edges); layer l is a view `(C, n_out, n_in)` of it, so the hand-written Adam
below updates every layer of every config with a handful of in-place kernels
(per-config λ and lr are `(C, 1)` tensors; `torch.optim.Adam` cannot take a
per-config lr). The forward pass is a batched matmul (`torch.matmul`/`bmm`)
or a broadcast multiply-and-sum; the backward pass is autograd or written by
hand (`backward="manual"`, no autograd graph). `torch.compile` of the epoch
step is optional (`compile=True`).

Bias edges (`bias=True`), as sbp_jax's `TrainConfig(bias=True)`: every
non-output layer has a constant-1 node whose out-edges are the LAST column of
the next layer's edges, `(C, n_out, n_in + 1)`, so
`h_{l+1} = σ(W[:, :, :n_in] @ h_l + W[:, :, n_in])`. They are ordinary
entries of the flat buffer: penalised with λ·sign(w) and updated by the same Adam.

The update is the paper's rule exactly as in sbp_jax:
g = ∂task/∂W + λ·sign(W); Adam(lr, b1=0.9, b2=0.999, eps=1e-8), bias-corrected
like `torch.optim.Adam` (step_size = lr/(1−b1^t), denom = sqrt(v)/sqrt(1−b2^t) + eps).
"""

from __future__ import annotations

import math

import numpy as np
import torch

B1, B2, ADAM_EPS = 0.9, 0.999, 1e-8
FORWARDS = ("bmm", "bcast")
BACKWARDS = ("autograd", "manual")


def _affine(h: torch.Tensor, w: torch.Tensor, form: str) -> torch.Tensor:
    """h: (n, n_in) shared or (C, n, n_in); w: (C, n_out, n_in) -> (C, n, n_out)."""
    if form == "bmm":
        return torch.matmul(h, w.transpose(1, 2))
    if h.dim() == 2:
        return (h[None, :, None, :] * w[:, None, :, :]).sum(-1)
    return (h[:, :, None, :] * w[:, None, :, :]).sum(-1)


def _dz(z: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """∂(mean task loss)/∂z for z of shape (C, n, n_out)."""
    scale = 1.0 / (z.shape[1] * z.shape[2])
    if loss == "bce":
        return (torch.sigmoid(z) - y) * scale
    if loss == "mse":
        return (z - y) * (2.0 * scale)
    raise ValueError(f"loss={loss!r} is invalid: allowed 'bce', 'mse'")


def task_losses(z: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-config mean task loss, shape (C,)."""
    if loss == "bce":
        per = torch.nn.functional.softplus(z) - y * z
    elif loss == "mse":
        per = torch.square(z - y)
    else:
        raise ValueError(f"loss={loss!r} is invalid: allowed 'bce', 'mse'")
    return per.mean(dim=(1, 2))


class BatchedSBP:
    """C configs of one architecture trained together, full batch.

    Args:
      edges0: per layer, initial weights `(C, n_out, n_in)` (numpy or tensor).
      x, y: data shared by all configs, `(n, n_in)` and `(n, n_out)`.
      lam, lr: per-config λ and Adam lr, shape `(C,)` (or scalars).
      loss: 'bce' or 'mse'. forward: 'bmm' | 'bcast'. backward: 'autograd' | 'manual'.
      compile: wrap the epoch step in `torch.compile`.
      bias: the last column of every `edges0[l]` is the bias node's edges,
        `(C, n_out, n_in + 1)` (see the module docstring).
    """

    def __init__(self, edges0, x, y, lam, lr, *, loss: str, forward: str = "bmm",
                 backward: str = "manual", compile: bool = False, bias: bool = False):
        if forward not in FORWARDS:
            raise ValueError(f"forward={forward!r} is invalid: allowed {FORWARDS}")
        if backward not in BACKWARDS:
            raise ValueError(f"backward={backward!r} is invalid: allowed {BACKWARDS}")
        ws = [torch.as_tensor(np.asarray(w, np.float32)) for w in edges0]
        self.C = ws[0].shape[0]
        self.shapes = [tuple(w.shape[1:]) for w in ws]
        self.sizes = [a * b for a, b in self.shapes]
        self.flat = torch.cat([w.reshape(self.C, -1) for w in ws], dim=1).contiguous()
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.x = torch.as_tensor(np.asarray(x, np.float32))
        self.bias = bias
        widths = [self.x.shape[1]] + [o for o, _ in self.shapes[:-1]]
        if [i for _, i in self.shapes] != [n + bias for n in widths]:
            raise ValueError(f"edge shapes {self.shapes} do not fit inputs of width {self.x.shape[1]} "
                             f"with bias={bias}: edges[l] must be (C, n_{{l+1}}, n_l{' + 1' if bias else ''})")
        if bias:  # the inputs carry the constant-1 node: (n, n_0 + 1)
            self.x = torch.cat([self.x, torch.ones(self.x.shape[0], 1)], dim=1)
        self.y = torch.as_tensor(np.asarray(y, np.float32))
        self.lam = torch.as_tensor(np.broadcast_to(np.asarray(lam, np.float32), (self.C,)).copy())[:, None]
        self.lr = torch.as_tensor(np.broadcast_to(np.asarray(lr, np.float32), (self.C,)).copy())[:, None]
        self.loss, self.form, self.backward = loss, forward, backward
        self.t = 0
        self._grad = self._grad_manual if backward == "manual" else self._grad_autograd
        self._step = self._step_eager
        if compile:
            if backward != "manual":
                raise ValueError("compile=True needs backward='manual'")
            # Every instance compiles `_step_eager` again (new shapes, new tensors): after 8 of them
            # dynamo's per-function recompile limit silently falls back to EAGER, which understated
            # this peer in long benchmark runs. Start each compiled instance from an empty cache
            # (earlier instances recompile if called again; the benchmark never does).
            torch._dynamo.reset()
            self._step = torch.compile(self._step_eager, dynamic=False)

    def layers(self, flat: torch.Tensor | None = None) -> list[torch.Tensor]:
        flat = self.flat if flat is None else flat
        out, off = [], 0
        for (o, i), s in zip(self.shapes, self.sizes):
            out.append(flat[:, off:off + s].view(self.C, o, i))
            off += s
        return out

    def _forward(self, ws):
        """Returns z (C, n, n_out), the inputs of every layer and the hidden pre-activations.

        With bias every layer's input carries a last constant-1 column (`(n, n_0 + 1)` shared,
        then `(C, n, n_l + 1)`), so one product gives `W[:, :, :n_l] @ h + W[:, :, n_l]` and the
        backward's `dᵀ @ input` gives the bias column's gradient Σ_samples d with the rest.
        Chosen over adding the bias column separately (and concatenating its gradient `d.sum(1)`):
        compiled, 300 epochs, 2 threads, config-epochs/s on a shared 2-core CPU (noisy), this form
        vs that one: XOR 1,024 configs 3.9–5.8e5 vs 0.2–1.9e5, addition 1.0–2.3e5 vs 0.9–1.0e5,
        [30,64,1] on breast cancer 256 configs 0.4–1.8e4 vs 0.3–1.4e4; eager, equal within noise."""
        h, hs, pre = self.x, [], []
        for w in ws[:-1]:
            hs.append(h)
            a = _affine(h, w, self.form)
            pre.append(a)
            h = torch.relu(a)
            if self.bias:
                h = torch.cat([h, torch.ones_like(h[:, :, :1])], dim=2)
        hs.append(h)
        return _affine(h, ws[-1], self.form), hs, pre

    def _grad_autograd(self, flat):
        flat = flat.detach().requires_grad_(True)
        z, _, _ = self._forward(self.layers(flat))
        task = task_losses(z, self.y, self.loss).sum()  # configs are independent
        (g,) = torch.autograd.grad(task, flat)
        return g

    def _grad_manual(self, flat):
        ws = self.layers(flat)
        z, hs, pre = self._forward(ws)
        d = _dz(z, self.y, self.loss)  # (C, n, n_out)
        grads = [None] * len(ws)
        for l in range(len(ws) - 1, -1, -1):
            grads[l] = torch.matmul(d.transpose(1, 2), hs[l])  # (C, n_out, n_in [+ 1])
            if l > 0:
                w = ws[l][:, :, :-1] if self.bias else ws[l]  # the bias node has no input
                d = torch.matmul(d, w) * (pre[l - 1] > 0)
        return torch.cat([g.reshape(self.C, -1) for g in grads], dim=1)

    @staticmethod
    def _adam_step(flat, m, v, g, lam, step_size, bc2_sqrt):
        g = g.add_(lam * torch.sign(flat))
        m.mul_(B1).add_(g, alpha=1 - B1)
        v.mul_(B2).addcmul_(g, g, value=1 - B2)
        denom = v.sqrt().div_(bc2_sqrt).add_(ADAM_EPS)
        flat.sub_(m.div(denom).mul_(step_size))
        return flat

    def _step_eager(self, flat, m, v, lam, step_size, bc2_sqrt):
        if self.backward == "autograd":
            with torch.enable_grad():
                g = self._grad(flat)
        else:
            g = self._grad(flat)
        return self._adam_step(flat, m, v, g, lam, step_size, bc2_sqrt)

    @torch.no_grad()
    def step(self):
        self.t += 1
        # Bias corrections as tensors, so a compiled step is not re-specialised per epoch.
        step_size = self.lr / (1 - B1 ** self.t)  # (C, 1), as torch.optim.Adam
        bc2_sqrt = torch.tensor(math.sqrt(1 - B2 ** self.t), dtype=torch.float32)
        self._step(self.flat, self.m, self.v, self.lam, step_size, bc2_sqrt)

    def run(self, epochs: int):
        for _ in range(epochs):
            self.step()
        return self

    def edges(self) -> list[np.ndarray]:
        return [w.detach().numpy().copy() for w in self.layers()]


def train(edges0, x, y, lam, lr, *, loss: str, epochs: int, **kw) -> list[np.ndarray]:
    """Train C configs (edges0[l] of shape `(C, n_out, n_in)`, `(C, n_out, n_in + 1)` with
    `bias=True`) for `epochs`; final edges, same shapes."""
    return BatchedSBP(edges0, x, y, lam, lr, loss=loss, **kw).run(epochs).edges()
