"""The machine a benchmark ran on, whether the asked-for device is there, and peak memory per section."""

from __future__ import annotations

import os
import platform
import resource

import jax
import numpy as np


def gpu_problems(need_torch: bool) -> dict[str, str]:
    """Why `--device gpu` cannot run here, by side ('jax', 'torch'; empty when it can): JAX must
    see a GPU and, when the PyTorch peers run (`need_torch`), so must torch. Starts no computation."""
    problems = {}
    try:
        jax.devices("gpu")
    except RuntimeError as ex:
        problems["jax"] = f"no GPU visible to JAX (jax.devices('gpu') raised: {str(ex).splitlines()[0]})"
    if need_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None and not torch.cuda.is_available():
            problems["torch"] = "torch.cuda.is_available() is False"
    return problems


def machine_info(device: str) -> dict:
    """Platform, CPU model and count, the devices JAX sees, XLA flags, load average, versions."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "device": device,
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "loadavg_at_start": os.getloadavg(),
        "versions": {"jax": jax.__version__, "numpy": np.__version__},
    }
    try:
        import jaxlib

        info["versions"]["jaxlib"] = jaxlib.__version__
    except ImportError:
        pass
    try:
        import torch

        info["versions"]["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if device == "gpu" and torch.cuda.is_available():
            info["torch_device"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["versions"]["torch"] = None
    return info


class Memory:
    """Peak memory of one measured section: host RSS high-water mark (reset per
    section through /proc/self/clear_refs where Linux allows it, else the
    process-lifetime `ru_maxrss`), and on GPU the device peaks of jax and torch."""

    def __init__(self, device: str):
        self.device = device
        self.resettable = False

    @staticmethod
    def _hwm_kib() -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def reset(self):
        self.resettable = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.resettable = True
        except OSError:
            pass
        if self.device == "gpu":
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.reset_peak_memory_stats()
            except ImportError:
                pass

    def read(self) -> dict:
        hwm = self._hwm_kib() if self.resettable else None
        out = {
            "peak_rss_mib": round((hwm if hwm is not None else
                                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1),
            "peak_rss_scope": "section" if hwm is not None else "process",
        }
        if self.device == "gpu":
            try:
                stats = jax.devices()[0].memory_stats() or {}
                out["jax_device_peak_mib"] = round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
            except Exception:  # noqa: BLE001 - not every backend reports stats
                pass
            try:
                import torch

                if torch.cuda.is_available():
                    out["torch_device_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            except ImportError:
                pass
        return out
