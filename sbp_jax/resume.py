"""Chunk checkpoints of a sweep, so an interrupted sweep can be resumed.

Each finished chunk is written atomically (`io.write_npz`) to
`<folder>/chunk_00012.npz`, beside `manifest.json`, which records a
fingerprint of everything that decides the chunks' contents: the static
config, the grid, the data and the chunk layout. Resuming with anything
different is refused with an error naming what changed, because mixing
chunks of two grids would silently produce wrong results. A chunk's results
do not depend on which process computed it (see `sweep`), so a resumed sweep
equals an uninterrupted one bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Sequence

import jax
import numpy as np

from . import io

MANIFEST = "manifest.json"
_CHUNK_RE = re.compile(r"^chunk_(\d{5,})\.npz$")


def _sha(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _values(a: np.ndarray) -> list:
    u = np.unique(a)
    return [float(v) for v in u] if len(u) <= 32 else f"{len(u)} values in [{u.min():g}, {u.max():g}]"


def fingerprint(static_config: dict, grid, data: Sequence, chunk_configs: int, init=None,
                kernel: str | None = None) -> dict:
    """What decides the chunk files' contents, as a JSON-ready dict of parts.

    Args:
      static_config: the static part of the config (`TrainConfig.static_part().to_dict()`).
      grid: the `sweep.Grid` (λ, lr, ε, seed per config).
      data: `(x_train, y_train, x_test, y_test)`.
      chunk_configs: configs per chunk over all devices (chunk × devices).
      init: the per-config warm starts (a pytree of arrays), or None.
      kernel: the kernel that trains the chunks (results differ across kernels by float32 rounding).
    """
    seeds = np.asarray(grid.seed)
    return {
        "config": static_config,
        "grid": {
            "n_configs": int(len(seeds)),
            "lams": _values(grid.lam),
            "lrs": _values(grid.lr),
            "epss": _values(grid.eps),
            "seeds": f"{len(np.unique(seeds))} seeds in [{seeds.min()}, {seeds.max()}]",
            "sha256": _sha(grid.lam, grid.lr, grid.eps, seeds),
        },
        "data_sha256": _sha(*data),
        "chunk_configs": int(chunk_configs),
        "init_sha256": None if init is None else _sha(*jax.tree.leaves(init)),
        "kernel": kernel,
    }


class ChunkStore:
    """The chunk files of one sweep in `folder`.

    `ChunkStore(folder, fp, resume=False)` starts afresh (old chunk files are
    removed); with `resume=True` it keeps the chunks of an earlier run whose
    manifest has the same fingerprint `fp`, and raises `ValueError` naming the
    differing parts otherwise.
    """

    def __init__(self, folder: str | Path, fp: dict, *, resume: bool, write: bool = True):
        self.folder = Path(folder)
        self.fp = json.loads(json.dumps(io.to_jsonable(fp)))  # as it reads back from disk
        self.write = write
        manifest = self.folder / MANIFEST
        if resume and manifest.exists():
            old = json.loads(manifest.read_text())["fingerprint"]
            diff = [k for k in sorted(set(old) | set(self.fp)) if old.get(k) != self.fp.get(k)]
            if diff:
                lines = "; ".join(f"{k}: was {old.get(k)!r}, now {self.fp.get(k)!r}" for k in diff)
                raise ValueError(
                    f"--resume refused: the sweep in {self.folder} was run with a different "
                    f"{', '.join(diff)} ({lines}). Allowed: the same task, config, grid, data and "
                    f"--chunk as the interrupted run, or a fresh run without --resume (or another --out).")
        elif write:
            self.folder.mkdir(parents=True, exist_ok=True)
            for f in self.done():
                (self.folder / f"chunk_{f:05d}.npz").unlink()
            io.write_json(manifest, {"fingerprint": self.fp})

    def done(self) -> list[int]:
        """Indices of the chunks already on disk."""
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.folder.iterdir() if (m := _CHUNK_RE.match(p.name)))

    def path(self, i: int) -> Path:
        return self.folder / f"chunk_{i:05d}.npz"

    def save(self, i: int, leaves: list[np.ndarray]) -> None:
        """Atomically write chunk `i`'s output leaves (process 0 only)."""
        if self.write:
            io.write_npz(self.path(i), **{f"leaf_{j:03d}": a for j, a in enumerate(leaves)})

    def load(self, i: int, expect: list[tuple[tuple, str]]) -> list[np.ndarray]:
        """Chunk `i`'s leaves, checked against the `(shape, dtype)` list `expect`."""
        with np.load(self.path(i)) as f:
            leaves = [f[f"leaf_{j:03d}"] for j in range(len(f.files))]
        got = [(tuple(a.shape), str(a.dtype)) for a in leaves]
        if got != [(tuple(s), str(d)) for s, d in expect]:
            raise ValueError(f"{self.path(i)} does not match this sweep's outputs "
                             f"(shapes/dtypes {got} vs {expect}): delete it or run without --resume")
        return leaves
