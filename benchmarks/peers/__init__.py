"""PyTorch peers computing the same objective as sbp_jax (needs the `bench` extra: torch).

* `torch_loop`: the paper's method in idiomatic PyTorch, one run, Python epoch loop.
* `torch_batched`: many configs at once, weights stacked on a leading config axis.

Both take the initial edges as input (numpy), so an agreement check can give them
exactly the initial weights sbp_jax draws (`benchmarks.check_peers`).
"""
