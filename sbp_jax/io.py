"""Results on disk: atomic writes, provenance, summary statistics.

Every file is written to a temporary file in the target folder and then
`os.replace`d onto its name, so an interrupted run never leaves a
half-written file: readers see the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`,
    on error delete it (the old `path`, if any, is left untouched)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_jsonable(obj: Any) -> Any:
    """Convert numpy / JAX scalars and arrays (nested in dicts, lists, tuples) to JSON types.
    Non-finite floats become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        arr = np.asarray(obj)
        return to_jsonable(arr.tolist()) if arr.ndim else to_jsonable(arr.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write `obj` as indented JSON (keys in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Atomically write arrays to an `.npz` file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def save_figure(fig, path: str | os.PathLike) -> None:
    """Atomically save a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _t_quantile_975(dof: int) -> float:
    """0.975 quantile of Student's t: a table to dof 10, then the Cornish–Fisher
    expansion (< 1e-3 off there)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    if dof in table:
        return table[dof]
    z = 1.959963984540054
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3


def describe(values) -> dict:
    """Mean, 95 % t-interval of the mean, min, max, n over the finite entries
    of `values` (`n_nonfinite` counts the rest, e.g. diverged runs)."""
    v = np.asarray(values, np.float64).ravel()
    finite = v[np.isfinite(v)]
    n = len(finite)
    out = {"mean": None, "ci95": [None, None], "min": None, "max": None, "n": n, "n_nonfinite": int(len(v) - n)}
    if n == 0:
        return out
    mean = float(finite.mean())
    half = 0.0 if n == 1 else _t_quantile_975(n - 1) * float(finite.std(ddof=1)) / math.sqrt(n)
    out.update(mean=mean, ci95=[mean - half, mean + half], min=float(finite.min()), max=float(finite.max()))
    return out


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(argv: list[str] | None = None) -> dict:
    """Package versions, devices, platform, git commit and command line."""
    import jax

    versions = {}
    for pkg in ("jax", "jaxlib", "optax", "equinox", "numpy", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    devs = jax.devices()
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devs],
        "device_kind": devs[0].device_kind,
        "git_commit": _git_commit(),
        "argv": list(sys.argv if argv is None else argv),
    }
