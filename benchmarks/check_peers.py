"""Agreement check: the PyTorch peers compute the same objective and update as sbp_jax.

Same initial edges (drawn by `sbp_jax.network.init_edges`) and data → the final
edges after `epochs` epochs of sbp_jax's `train`, the torch loop peer and the
batched torch peer (several λ, lr at once) agree to `atol`. With bias edges
(`TrainConfig(bias=True)`, edges `(n_out, n_in + 1)`, bias column initialised
to 0) only the batched peer is checked: the loop peer has no bias.

    python -m benchmarks.check_peers
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

from benchmarks import nets
from sbp_jax.network import init_edges
from sbp_jax.train import train


def check(epochs: int = 50, atol: float = 1e-4, seeds=(0, 1), lams=(1e-2, 1e-1), lrs=(1e-3, 1e-2),
          forwards=("bmm", "bcast"), backwards=("manual", "autograd"), biases=(False, True)) -> dict:
    """Run the check on XOR and addition, without and with bias edges (`biases`); return a
    JSON-able report with `passed` and one case per (task, bias, peer)."""
    from benchmarks.peers import torch_batched, torch_loop

    def diff(a, b):
        return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))

    report = {"epochs": epochs, "atol": atol, "cases": [], "passed": True}
    for name, base in nets.TASK_CONFIGS.items():  # XOR [2,4,1] bce and addition [2,8,1] mse
        d = nets.load(name)
        combos = [(s, lam, lr) for s in seeds for lam in lams for lr in lrs]
        for bias in biases:
            ours, inits = [], []
            for s, lam, lr in combos:
                cfg = base.replace(lam=lam, lr=lr, epochs=epochs, eps=1e-2, bias=bias)
                edges0 = init_edges(jax.random.key(s), cfg.layers, cfg.init, bias=bias, bias_init=cfg.bias_init)
                inits.append([np.asarray(w) for w in edges0])
                ours.append([np.asarray(w) for w in train(cfg, d.x_train, d.y_train, jax.random.key(s)).edges])
            case = {"task": name, "bias": bias}
            if not bias:
                loop_err = max(
                    diff(torch_loop.train(e0, d.x_train, d.y_train, loss=base.loss, lam=lam, lr=lr,
                                          epochs=epochs, history=False)[0], o)
                    for (s, lam, lr), e0, o in zip(combos, inits, ours)
                )
                report["cases"].append(dict(case, peer="torch_loop", max_abs_diff=loop_err, passed=loop_err <= atol))
            stacked = [np.stack([e[l] for e in inits]) for l in range(len(inits[0]))]
            lam_c = np.array([c[1] for c in combos], np.float32)
            lr_c = np.array([c[2] for c in combos], np.float32)
            for fw in forwards:
                for bw in backwards:
                    got = torch_batched.train(stacked, d.x_train, d.y_train, lam_c, lr_c, loss=base.loss,
                                              epochs=epochs, forward=fw, backward=bw, bias=bias)
                    err = max(diff([g[c] for g in got], o) for c, o in enumerate(ours))
                    report["cases"].append(dict(case, peer=f"torch_batched[{fw},{bw}]", max_abs_diff=err,
                                                passed=err <= atol))
    report["passed"] = all(c["passed"] for c in report["cases"])
    return report


if __name__ == "__main__":
    r = check()
    print(json.dumps(r, indent=1))
    sys.exit(0 if r["passed"] else 1)
