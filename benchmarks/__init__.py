"""Benchmarks of sbp_jax against PyTorch peers (`python -m benchmarks.run`)."""
