"""penalty: the L1 transforms (the paper's subgradient, proximal), λ per step and layer, the optimizer a
config asks for, and the penalty a history records."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import SMALL, adam_promotion, assert_tree_bitwise_equal

from sbp_jax import TrainConfig, add_l1_subgradient, l1_norm, make_optimizer, sweep, train
from sbp_jax.lam_rule import TARGET_LOG_RANGE, L1State, warmup_ramp
from sbp_jax.penalty import applied_penalty, l1_subgradient_of, proximal_l1, soft_threshold

PARAMS = (
    jnp.array([[0.5, -0.25, 0.0], [-1.0, 0.0, 2.0]], jnp.float32),
    jnp.array([[3.0, -0.125]], jnp.float32),
)
GRADS = (
    jnp.array([[0.1, 0.2, -0.3], [0.0, 1.5, -2.0]], jnp.float32),
    jnp.array([[-0.7, 0.9]], jnp.float32),
)


def test_l1_norm():
    assert float(l1_norm(PARAMS)) == 0.5 + 0.25 + 1.0 + 2.0 + 3.0 + 0.125
    assert l1_norm(PARAMS).shape == ()


@pytest.mark.parametrize("lam", [0.0, 0.01, 0.3, 2.0])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_adds_lambda_sign_exactly(lam, jit):
    tx = add_l1_subgradient(lam)
    state = tx.init(PARAMS)
    assert state == optax.EmptyState()
    update = jax.jit(tx.update) if jit else tx.update
    out, new_state = update(GRADS, state, PARAMS)
    assert new_state == optax.EmptyState()
    for g, w, u in zip(GRADS, PARAMS, out):
        # float32 reference; sign(0) = 0, so zero weights get the bare gradient
        expected = np.asarray(g) + np.float32(lam) * np.sign(np.asarray(w))
        assert u.dtype == jnp.float32
        np.testing.assert_array_equal(u, expected)
    # the hand-computed corner cases
    if lam == 0.3:
        np.testing.assert_allclose(out[0][0], [0.1 + 0.3, 0.2 - 0.3, -0.3], rtol=1e-6)
        np.testing.assert_array_equal(out[0][1, 1], np.float32(1.5))  # w = 0


def test_needs_params():
    # optax.chain forwards params=None when the caller gives none
    tx = optax.chain(add_l1_subgradient(0.1))
    with pytest.raises(ValueError, match="params"):
        tx.update(GRADS, tx.init(PARAMS))


def test_traced_lambda_does_not_recompile():
    calls = []

    @jax.jit
    def step(lam, g, w):
        calls.append(1)  # runs once per trace
        tx = add_l1_subgradient(lam)
        return tx.update(g, tx.init(w), w)[0]

    for lam in (0.1, 0.2, 0.0, 5.0):
        out = step(jnp.float32(lam), GRADS, PARAMS)
        np.testing.assert_array_equal(out[1], np.asarray(GRADS[1]) + np.float32(lam) * np.sign(np.asarray(PARAMS[1])))
    assert len(calls) == 1
    assert step._cache_size() == 1


def _run(tx, steps, seed):
    rng = np.random.default_rng(seed)
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(steps):
        g = jax.tree.map(lambda w: jnp.asarray(rng.normal(size=w.shape), jnp.float32), params)
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_zero_lambda_chain_equals_plain_adam_bitwise():
    with adam_promotion():
        a = _run(optax.chain(add_l1_subgradient(0.0), optax.adam(1e-2)), 6, 0)
        b = _run(optax.adam(1e-2), 6, 0)
        c = _run(optax.chain(add_l1_subgradient(0.1), optax.adam(1e-2)), 6, 0)
    for u, v in zip(a, b):
        assert np.asarray(u).tobytes() == np.asarray(v).tobytes()
    assert not np.array_equal(a[0], c[0])  # and λ > 0 does change the trajectory


def test_make_optimizer_adds_l1_before_adam():
    """With zero task gradient the first Adam step normalises λ·sign(w):
    update = -lr · λ·sign(w) / (|λ·sign(w)| + 1e-8) ≈ -lr·sign(w), and 0 where w = 0.
    (L1 added after Adam would give -λ·sign(w) instead.)"""
    lam, lr = 0.05, 0.01
    zero = jax.tree.map(jnp.zeros_like, PARAMS)
    with adam_promotion():
        opt = make_optimizer(jnp.float32(lam), jnp.float32(lr))
        updates, _ = opt.update(zero, opt.init(PARAMS), PARAMS)
    for u, w in zip(updates, PARAMS):
        np.testing.assert_allclose(u, -lr * np.sign(np.asarray(w)), rtol=1e-5, atol=1e-9)


def test_make_optimizer_equals_chain_with_optax_adam():
    """Our Adam (`adam.scale_by_adam`: the bias correction as a reciprocal multiply) is
    `optax.adam` to float32 rounding, with the same state layout; λ = 0 and λ > 0."""
    for lam in (0.0, 0.02):
        with adam_promotion():
            a = _run(make_optimizer(lam, 0.003), 4, 7)
            b = _run(optax.chain(add_l1_subgradient(lam), optax.adam(0.003)), 4, 7)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=2e-6, atol=1e-7)


# ---- beyond the paper: proximal L1, per-layer λ, λ schedules, target-sparsity controller ----

P = (jnp.array([[0.5, -0.2], [0.004, -1.0]], jnp.float32), jnp.array([[0.3, -0.001]], jnp.float32))
G = (jnp.array([[0.1, 0.0], [-0.2, 0.3]], jnp.float32), jnp.array([[0.05, 0.0]], jnp.float32))


def _steps(opt, params, grads, n=3):
    state = opt.init(params)
    for _ in range(n):
        u, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, u)
    return params, state


def test_default_config_is_the_papers_update_bit_for_bit():
    with adam_promotion():
        ref = optax.chain(add_l1_subgradient(jnp.float32(0.01)), optax.adam(jnp.float32(1e-3)))
        new = make_optimizer(jnp.float32(0.01), jnp.float32(1e-3), TrainConfig(), jnp.float32(0.01))
        a, sa = _steps(ref, P, G)
        b, sb = _steps(new, P, G)
    assert_tree_bitwise_equal(a, b)
    assert_tree_bitwise_equal(sa, sb)


def test_soft_threshold():
    w = jnp.array([-2.0, -0.5, 0.0, 0.3, 1.0], jnp.float32)
    np.testing.assert_array_equal(soft_threshold(w, 0.5), np.array([-1.5, 0.0, 0.0, 0.0, 0.5], np.float32))


@pytest.mark.parametrize("preconditioned", [True, False])
def test_proximal_leaves_exact_zeros_and_matches_formula(preconditioned):
    lam, lr = 0.5, 0.1
    with adam_promotion():
        opt = proximal_l1(optax.adam(lr), lam, lr, preconditioned=preconditioned)
        state = opt.init(P)
        u, state = opt.update(G, state, P)
        adam_u, adam_state = optax.adam(lr).update(G, optax.adam(lr).init(P), P)
    new = optax.apply_updates(P, u)
    for w, au, nu, n in zip(P, adam_u, adam_state[0].nu, new):
        z = w + au
        d = np.sqrt(np.asarray(nu) / (1 - 0.999) + lam**2) + 1e-8 if preconditioned else 1.0
        expect = np.sign(z) * np.maximum(np.abs(z) - lr * lam / d, 0)
        np.testing.assert_allclose(np.asarray(n), expect, rtol=1e-6, atol=1e-7)
    # thresholded entries are exact zeros (not tiny residues)
    zeros = sum(int(np.sum(np.asarray(n) == 0.0)) for n in new)
    assert zeros >= 1


PROXIMAL = TrainConfig(epochs=100, lr=3e-2, penalty="proximal", layer_lams=(1.0, 0.5), history_every=0)
PROXIMAL_LAMS = [0.0, 3e-2, 0.3]


@pytest.fixture(scope="module")
def proximal_sweep(xor_data):
    """One compiled sweep of `PROXIMAL`: λ in `PROXIMAL_LAMS` × seeds 0, 1 (λ-major)."""
    with adam_promotion():
        return sweep.run_grid(PROXIMAL, xor_data, sweep.make_grid(PROXIMAL, lams=PROXIMAL_LAMS, seeds=2), mesh=None)


def test_proximal_training_has_exact_zeros(xor_data, proximal_sweep):
    edges = [np.asarray(w)[2] for w in proximal_sweep.result.edges]  # λ = 3e-2, seed 0
    with adam_promotion():
        sub = train(TrainConfig(epochs=100, lr=3e-2, lam=3e-2, history_every=0), xor_data.x_train, xor_data.y_train,
                    jax.random.key(0))
    n_zero = sum(int(np.sum(w == 0.0)) for w in edges)
    assert n_zero >= 1
    assert sum(int(np.sum(np.asarray(w) == 0.0)) for w in sub.edges) == 0  # the subgradient oscillates instead


def test_schedule_multiplies_lam_per_step():
    s = warmup_ramp(2, 4)
    assert [float(s(t)) for t in range(8)] == pytest.approx([0, 0, 0, 0.25, 0.5, 0.75, 1, 1])
    cfg = TrainConfig(lam_schedule="warmup_ramp", lam_warmup=2, lam_ramp=4)
    w = (jnp.array([[1.0, -1.0]], jnp.float32),)
    g = (jnp.zeros((1, 2), jnp.float32),)
    l1 = l1_subgradient_of(cfg, jnp.float32(0.1), jnp.float32(0.01))
    state = l1.init(w)
    seen = []
    for _ in range(8):
        u, state = l1.update(g, state, w)
        seen.append(np.asarray(u[0]))
    expect = [0.1 * float(s(t)) for t in range(8)]
    np.testing.assert_allclose([v[0, 0] for v in seen], expect, rtol=1e-6)
    np.testing.assert_allclose([v[0, 1] for v in seen], [-e for e in expect], rtol=1e-6)
    assert isinstance(state, L1State) and int(state.count) == 8


def test_per_layer_lam():
    cfg = TrainConfig(layers=(2, 2, 1), layer_lams=(1.0, 0.25))
    l1 = l1_subgradient_of(cfg, jnp.float32(0.2), jnp.float32(0.01))
    zeros = jax.tree.map(jnp.zeros_like, P)
    u, _ = l1.update(zeros, l1.init(P), P)
    np.testing.assert_allclose(np.asarray(u[0]), 0.2 * np.sign(np.asarray(P[0])), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(u[1]), 0.05 * np.sign(np.asarray(P[1])), rtol=1e-6)


@pytest.mark.parametrize("penalty", ["subgradient", "proximal"])
def test_applied_penalty_uses_the_lam_of_the_last_step(penalty):
    l1 = lambda ws: [float(jnp.sum(jnp.abs(w))) for w in ws]
    lam, eps = jnp.float32(0.2), jnp.float32(0.01)
    cases = [  # (config changes, expected penalty after 3 steps as a function of the state)
        (dict(layer_lams=(1.0, 0.25)), lambda st: 0.2 * l1(P)[0] + 0.05 * l1(P)[1]),
        (dict(lam_schedule="warmup_ramp", lam_warmup=1, lam_ramp=4), lambda st: 0.2 * 0.25 * sum(l1(P))),  # s(2)
        (dict(target_active=0.5, target_gain=0.3), lambda st: float(st.lam) * sum(l1(P))),
    ]
    for changes, expect in cases:
        cfg = TrainConfig(layers=(2, 2, 1), penalty=penalty, **changes)
        opt = make_optimizer(lam, jnp.float32(1e-3), cfg, eps)
        with adam_promotion():
            _, state = _steps(opt, P, G)
        (st,) = [s for s in jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, L1State)) if isinstance(s, L1State)]
        got = float(applied_penalty(cfg, lam, eps, state, P))
        assert got == pytest.approx(expect(st), rel=1e-6), changes
    assert float(applied_penalty(TrainConfig(), lam, eps, None, P)) == pytest.approx(0.2 * sum(l1(P)), rel=1e-6)


def test_bias_edges_are_penalised_by_training(xor_data):
    cfg = SMALL.replace(bias=True, bias_init="same", lam=0.5, epochs=60)
    with adam_promotion():
        r = train(cfg, xor_data.x_train, xor_data.y_train, jax.random.key(0))
        r0 = train(cfg.replace(lam=0.0), xor_data.x_train, xor_data.y_train, jax.random.key(0))
    # a large λ shrinks the bias edges too: fewer active ones, smaller total |b| than with λ = 0
    bias_l1 = lambda e: sum(float(jnp.abs(w[:, -1]).sum()) for w in e)
    assert bias_l1(r.edges) < bias_l1(r0.edges)
    assert sum(int((jnp.abs(w[:, -1]) < cfg.eps).sum()) for w in r.edges) >= 1
    assert int(r.history.active_edges[-1]) < cfg.total_edges == 13


def test_history_records_the_scheduled_penalty(xor_data):
    cfg = TrainConfig(epochs=8, history_every=1, lam_schedule="warmup_ramp", lam_warmup=3, lam_ramp=2)
    with adam_promotion():
        h = train(cfg, xor_data.x_train, xor_data.y_train, jax.random.key(0)).history
    pen = np.asarray(h.penalty)
    # record t uses the schedule of step t: s = 0, 0, 0, 0, 0.5, 1, 1, 1
    assert np.all(pen[:4] == 0) and np.all(pen[4:] > 0)
    assert pen[4] == pytest.approx(pen[5] / 2, rel=0.05)  # the weights barely move in one step at lr 1e-3
    np.testing.assert_allclose(np.asarray(h.loss), np.asarray(h.task_loss) + pen, rtol=1e-6)


def test_lam_stays_traced_in_a_sweep(proximal_sweep):
    """Variants vmap over λ: two λ in one grid give different structures."""
    act = np.asarray(proximal_sweep.structure.active_per_layer).sum(1)
    assert act[0] == 12 and act[1] == 12 and act[4] < 12 and act[5] < 12  # λ = 0 and λ = 0.3


def test_controller_sets_lam_from_the_gradient_quantile_and_integrates_the_error():
    """One step: λ = q_{1−target}(|g|)·e^I with I = gain·(active fraction − target);
    the update is g + λ·sign(w); I is clipped to ±TARGET_LOG_RANGE."""
    params = (jnp.array([[1.0, 1.0], [1.0, 0.0]], jnp.float32),)  # 3/4 active at ε=0.01
    g = (jnp.array([[0.1, 0.2], [0.3, 0.4]], jnp.float32),)
    for target, q in ((0.5, 0.25), (1.0, 0.1), (0.25, 0.325)):  # linear-interpolated quantiles of |g|
        cfg = TrainConfig(layers=(2, 2), target_active=target, target_gain=0.1)
        l1 = l1_subgradient_of(cfg, jnp.float32(0.01), jnp.float32(0.01))  # λ = 0.01 is not used
        u, st = l1.update(g, l1.init(params), params)
        lam = q * np.exp(0.1 * (0.75 - target))
        np.testing.assert_allclose(float(st.lam), lam, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(u[0]), np.asarray(g[0]) + lam * np.sign(np.asarray(params[0])), rtol=1e-5)
    cfg = TrainConfig(layers=(2, 2), target_active=0.25, target_gain=1.0)
    l1 = l1_subgradient_of(cfg, jnp.float32(0.0), jnp.float32(0.01))
    st = l1.init(params)
    for _ in range(5):  # error +0.5 per step: I would reach 2.5, is clipped at 2
        _, st = l1.update(g, st, params)
    assert float(st.integral) == pytest.approx(TARGET_LOG_RANGE)
    np.testing.assert_allclose(float(st.lam), 0.325 * np.exp(TARGET_LOG_RANGE), rtol=1e-5)


def test_target_controller_lands_on_target_on_xor_241(xor_data):
    """[2,4,1] (12 edges), lr 1e-2, target 50 %: 6 edges on average over 4 seeds (± 1)."""
    cfg = TrainConfig(lr=1e-2, target_active=0.5, history_every=0)
    with adam_promotion():
        out = sweep.run_grid(cfg, xor_data, sweep.make_grid(cfg, seeds=4), mesh=None)
    act = np.asarray(out.structure.active_per_layer).sum(1)
    assert abs(act.mean() - 6) <= 1, act


@pytest.mark.slow
def test_target_controller_lands_near_target_on_xor(xor_data):
    """[2,8,1] (24 edges) on noisy XOR, lr 1e-2, 2000 epochs: for targets 30 / 50 / 75 % the
    mean over 4 seeds lands within 2 edges of the target, while the same λ without the
    controller keeps almost everything."""
    cfg = TrainConfig(layers=(2, 8, 1), lam=1e-4, lr=1e-2, epochs=2000, history_every=0)
    with adam_promotion():
        for target in (0.3, 0.5, 0.75):
            c = cfg.replace(target_active=target)
            out = sweep.run_grid(c, xor_data, sweep.make_grid(c, seeds=4), mesh=None)
            act = np.asarray(out.structure.active_per_layer).sum(1)
            assert abs(act.mean() - 24 * target) <= 2, (target, act)
        free = sweep.run_grid(cfg, xor_data, sweep.make_grid(cfg, seeds=4), mesh=None)
    assert np.asarray(free.structure.active_per_layer).sum(1).mean() > 20
