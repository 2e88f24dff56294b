"""Command-line experiments. Importing this package gives XLA one host
device per CPU core (unless XLA_FLAGS already says otherwise), so sweeps
shard their configs over all cores; it must happen before JAX is imported."""

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={os.cpu_count() or 1}"
    ).strip()
