"""Chunk checkpoints of a sweep, so an interrupted sweep can be resumed.

Each finished chunk is written atomically (`io.write_npz`) to
`<folder>/chunk_00012.npz`, beside `manifest.json`, which records a
fingerprint of everything that decides the chunks' contents: the static
config, the grid, the data and the chunk layout. Resuming with anything
different is refused with an error naming what changed, because mixing
chunks of two grids would silently produce wrong results. A chunk's results
do not depend on which process computed it (see `sweep`), so a resumed sweep
equals an uninterrupted one bit for bit.

Self-healing: a chunk file holds its output leaves (`leaf_000`, ...) and the
sha256 of those leaves (`sha256`, see `leaves_sha256`), written together in
the one atomic write, so a process killed at any instant leaves each chunk
either complete with its checksum or absent. On resume every chunk file is
read and verified (`read_chunk`): one that cannot be read (truncated, not a
zip, bad CRC), lacks its checksum, fails it, or has the wrong shapes or dtypes
is not done; the writing process removes it and says so with one WARNING
line on the `logging` logger 'sbp_jax' (printed on stderr when logging is not
configured), as it does for a chunk missing below the highest one present.
The sweep then recomputes those chunks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Mapping, Sequence

import jax
import numpy as np

from . import io

MANIFEST = "manifest.json"
CHECKSUM_KEY = "sha256"
_CHUNK_RE = re.compile(r"^chunk_(\d{5,})\.npz$")
# `io.atomic_path`'s temporary files of chunks and manifest, left behind by a process killed mid-write.
_PARTIAL_RE = re.compile(r"^\.(chunk_\d{5,}\.npz|manifest\.json)\..*\.tmp\.(npz|json)$")

log = logging.getLogger("sbp_jax")


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


# ---- checksums of chunk files (pure functions) ----

class CorruptChunk(ValueError):
    """A chunk file that cannot be used: unreadable, without or failing its checksum, or of the wrong shapes."""


def leaves_sha256(leaves: Sequence[np.ndarray]) -> str:
    """The sha256 (64 hex digits) of a chunk's output leaves, in order.

    Covers the number of leaves and, for each, its dtype, shape and bytes
    (C order), so any change to any of them changes the digest.
    """
    h = hashlib.sha256(f"{len(leaves)} leaves;".encode())
    for a in leaves:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def pack_chunk(leaves: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The `.npz` entries of a chunk: `leaf_000`, `leaf_001`, ... and `sha256`
    (`leaves_sha256` of the leaves, as a 0-d unicode array; no pickle needed)."""
    entries = {f"leaf_{j:03d}": np.asarray(a) for j, a in enumerate(leaves)}
    entries[CHECKSUM_KEY] = np.asarray(leaves_sha256(list(entries.values())))
    return entries


def _same_layout(leaves: Sequence[np.ndarray], expect: Sequence[tuple[tuple, str]]) -> bool:
    got = [(tuple(a.shape), str(a.dtype)) for a in leaves]
    return got == [(tuple(s), str(d)) for s, d in expect]


def unpack_chunk(entries: Mapping[str, np.ndarray],
                 expect: Sequence[tuple[tuple, str]] | None = None) -> list[np.ndarray]:
    """The leaves of a chunk's `.npz` entries (as made by `pack_chunk`), verified.

    Raises `CorruptChunk`, naming the reason, when the checksum is absent or
    does not match the leaves, when the leaf names are not `leaf_000` ...
    `leaf_{k-1}`, or (with `expect`, a list of `(shape, dtype)`) when the
    leaves' shapes or dtypes differ from `expect`.
    """
    if CHECKSUM_KEY not in entries:
        raise CorruptChunk("no checksum (not written by this version of sbp_jax)")
    names = sorted(k for k in entries if k != CHECKSUM_KEY)
    if names != [f"leaf_{j:03d}" for j in range(len(names))]:
        raise CorruptChunk(f"entries {names}, not leaf_000...leaf_{len(names) - 1:03d}")
    leaves = [np.asarray(entries[k]) for k in names]
    stored = np.asarray(entries[CHECKSUM_KEY])
    stored = str(stored.item()) if stored.shape == () and stored.dtype.kind == "U" else repr(stored)
    actual = leaves_sha256(leaves)
    if stored != actual:
        raise CorruptChunk(f"checksum mismatch (stored {stored[:16]}..., contents {actual[:16]}...)")
    if expect is not None and not _same_layout(leaves, expect):
        got = [(tuple(a.shape), str(a.dtype)) for a in leaves]
        raise CorruptChunk(f"shapes/dtypes {got}, not this sweep's {list(expect)}")
    return leaves


def read_chunk(path: str | Path, expect: Sequence[tuple[tuple, str]] | None = None) -> list[np.ndarray]:
    """Read chunk file `path` and return its verified leaves (see `unpack_chunk`).

    Raises `FileNotFoundError` (or `PermissionError`) as `open` does, and
    `CorruptChunk` for any other failure: a truncated or damaged file (not a
    zip, bad CRC, bad `.npy` header) or a failed check.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            entries = {k: f[k] for k in f.files}
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as e:  # any failure to decode the file means it is damaged
        raise CorruptChunk(f"unreadable ({type(e).__name__}: {e})") from e
    return unpack_chunk(entries, expect)


class ChunkStore:
    """The chunk files of one sweep in `folder`.

    `ChunkStore(folder, fp, resume=False)` starts afresh (old chunk files are
    removed); with `resume=True` it keeps the chunks of an earlier run whose
    manifest has the same fingerprint `fp`, and raises `ValueError` naming the
    differing parts otherwise. `done()` lists the chunks that pass their checks
    and heals the rest (see the module doc). Only a store with `write=True`
    (process 0) writes, removes or reports files.
    """

    def __init__(self, folder: str | Path, fp: dict, *, resume: bool, write: bool = True):
        self.folder = Path(folder)
        self.fp = json.loads(json.dumps(io.to_jsonable(fp)))  # as it reads back from disk
        self.write = write
        self.healed: list[tuple[int, str]] = []  # (chunk, what was wrong) for each chunk done() found unusable
        self._verified: dict[int, list[np.ndarray]] = {}
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
            for i in self.files():
                self.path(i).unlink()
            io.write_json(manifest, {"fingerprint": self.fp})
        if write and self.folder.is_dir():
            for p in self.folder.iterdir():
                if _PARTIAL_RE.match(p.name):
                    log.info("sbp_jax resume: removed %s (a write cut short by an interrupted run)", p)
                    p.unlink(missing_ok=True)

    def files(self) -> list[int]:
        """Indices of the chunk files on disk, whether or not they pass their checks."""
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.folder.iterdir() if (m := _CHUNK_RE.match(p.name)))

    def done(self, expect: Sequence[tuple[tuple, str]] | None = None) -> list[int]:
        """Indices of the chunks on disk that pass `read_chunk` (with `expect`, the
        sweep's `(shape, dtype)` list, also their shapes and dtypes).

        Every other chunk file is removed (with `write`) and reported: one
        WARNING line per chunk on the logger 'sbp_jax', naming the chunk, its
        file and why; so is a chunk missing below the highest one present. The
        caller recomputes them. The verified leaves are kept for `load`.
        """
        self._verified = {}
        present = set(self.files())
        for i in range(max(present) + 1 if present else 0):
            if i not in present:
                self._heal(i, "is missing; recomputing it")
                continue
            try:
                self._verified[i] = read_chunk(self.path(i), expect)
            except FileNotFoundError:  # removed meanwhile (by process 0, on a shared filesystem)
                continue
            except CorruptChunk as e:
                if self.write:
                    self.path(i).unlink(missing_ok=True)
                self._heal(i, f"is bad: {e}; {'removed it, ' if self.write else ''}recomputing it")
        return sorted(self._verified)

    def _heal(self, i: int, what: str) -> None:
        self.healed.append((i, what))
        if self.write:
            log.warning("sbp_jax resume: chunk %d (%s) %s", i, self.path(i), what)

    def path(self, i: int) -> Path:
        return self.folder / f"chunk_{i:05d}.npz"

    def save(self, i: int, leaves: list[np.ndarray]) -> None:
        """Atomically write chunk `i`'s output leaves with their checksum (process 0 only)."""
        self._verified.pop(i, None)
        if self.write:
            io.write_npz(self.path(i), **pack_chunk(leaves))

    def load(self, i: int, expect: list[tuple[tuple, str]]) -> list[np.ndarray]:
        """Chunk `i`'s leaves, checked against the `(shape, dtype)` list `expect`:
        those `done()` verified, else read now with `read_chunk` (`FileNotFoundError`
        when absent, `CorruptChunk`, a `ValueError`, when it fails a check)."""
        leaves = self._verified.pop(i, None)
        if leaves is not None and _same_layout(leaves, expect):
            return leaves
        try:
            return read_chunk(self.path(i), expect)
        except CorruptChunk as e:
            raise CorruptChunk(f"{self.path(i)} is bad ({e}): rerun with --resume to recompute it") from None
