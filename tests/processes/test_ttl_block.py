"""The TTL-BPTT block's window gradient on the columns it is not zero in, its
accumulation, the fixed model's stochastic rounding, and a Var.set into a running fixed
block."""

from types import SimpleNamespace

import numpy as np
import pytest

from lava_local.fixed import W_WEIGHT_MAX, weight_precision
from lava_local.processes.ttl_block import (
    PyTTLBlockFixed,
    _add_column_grads,
    _column_grad,
    _split,
)


def _dense(g, cols, width):
    out = np.zeros((g.shape[0], width))
    out[:, slice(None) if cols is None else cols] = g
    return out


def _spikes(rng, steps, width, p):
    return (rng.random((steps, width)) < p).astype(np.float64)


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 1.0])
def test_column_grad_is_the_dense_product_on_its_columns(p):
    rng = np.random.default_rng(0)
    delta, x = rng.normal(size=(5, 7)), _spikes(rng, 5, 40, p)
    x[:, 3] = rng.normal(size=5) * (p > 0)             # a graded column too
    g, cols = _column_grad(delta, x)
    want = delta.T @ x
    if p == 1.0:
        assert cols is None
    else:
        assert set(cols) == set(np.flatnonzero(np.abs(x).sum(axis=0)))
    np.testing.assert_allclose(_dense(g, cols, 40), want, rtol=1e-15, atol=0)


def test_column_grads_add_as_the_dense_sums():
    rng = np.random.default_rng(1)
    deltas = [rng.normal(size=(4, 6)) for _ in range(3)]
    xs = [_spikes(rng, 4, 30, 0.1), _spikes(rng, 4, 30, 0.1), np.ones((4, 30))]
    parts = [_column_grad(d, x) for d, x in zip(deltas, xs)]
    assert parts[0][1] is not None and parts[2][1] is None
    for order in ([0, 1], [1, 0], [0, 2], [2, 1], [0, 1, 2]):
        acc, want = parts[order[0]], deltas[order[0]].T @ xs[order[0]]
        for i in order[1:]:
            acc = _add_column_grads(acc, parts[i], 30)
            want = want + deltas[i].T @ xs[i]
        assert (acc[1] is None) == (2 in order)
        np.testing.assert_array_equal(_dense(*acc, 30), want)


def _fixed_block(ints, precs, seed):
    shapes = [w.shape for w in ints]
    flat = np.zeros(sum(w.size for w in ints))
    ints = [w.copy() for w in ints]
    real = _split(flat, shapes)
    for r, w, pr in zip(real, ints, precs):
        r[:] = w * 2.0 ** -pr
    return SimpleNamespace(_ints=ints, _precs=precs, _real=real, params_flat=flat,
                           _rng=np.random.default_rng(seed), proc_params={"eta": 0.5})


def test_fixed_apply_rounds_stochastically_only_where_the_window_has_gradient():
    """Mean of many roundings = the real update (unbiased); columns outside the
    gradient's stay; the real values (``params_flat``) follow the mantissas."""
    rng = np.random.default_rng(2)
    shapes, precs = [(6, 50), (3, 6)], [6, 4]
    x = _spikes(rng, 4, 50, 0.1)
    grads = [_column_grad(rng.normal(size=(4, 6)) * 0.05, x),
             _column_grad(rng.normal(size=(4, 3)) * 0.05, np.ones((4, 6)))]
    cols = grads[0][1]
    assert cols is not None and 0 < cols.size < 50
    start = _fixed_block([rng.integers(-200, 201, s) for s in shapes], precs, 0)
    ideal = [w - 0.5 * _dense(g, c, s[1]) * 2.0 ** pr
             for w, (g, c), s, pr in zip(start._ints, grads, shapes, precs)]
    runs = []
    for seed in range(400):
        b = _fixed_block(start._ints, precs, seed)
        PyTTLBlockFixed._apply(b, grads)
        for r, w, pr in zip(b._real, b._ints, precs):
            np.testing.assert_array_equal(r, w * 2.0 ** -pr)
        assert b._real[0].base is b.params_flat
        runs.append([w.copy() for w in b._ints])
    for li in range(2):
        got = np.stack([r[li] for r in runs])
        assert np.all(np.abs(got - ideal[li]) < 1) and np.abs(got).max() <= W_WEIGHT_MAX
        np.testing.assert_allclose(got.mean(axis=0), ideal[li], atol=0.1)
    other = np.setdiff1d(np.arange(50), cols)
    for r in runs:
        np.testing.assert_array_equal(r[0][:, other], start._ints[0][:, other])


def test_var_set_into_a_running_fixed_block_is_rounded_to_its_mantissas():
    """Weights set into ``params_flat`` mid-run become the block's integer weights
    (rounded, the first step's precisions kept): read back as such, and the learning
    that follows starts from them."""
    from lava.magma.core.run_conditions import RunSteps

    from lava_local.bench import synthetic_net
    from lava_local.networks.graph import _run_cfg, build_graph
    from lava_local.networks.guard import LavaGuard

    net, data = synthetic_net(40, (16,), 4, 10, 4, rate=0.2)
    g = build_graph(net, data, backend="sim-fixed", learn="ttlbptt", n_samples=4)
    block = g.ctx.readout
    shapes = block.proc_params["shapes"]
    precs = [weight_precision(w) for w in net.weights]
    rng = np.random.default_rng(4)
    new = [rng.uniform(-1, 1, s) * np.abs(w).max() for s, w in zip(shapes, net.weights)]
    want = [np.clip(np.rint(w * 2.0 ** p), -W_WEIGHT_MAX, W_WEIGHT_MAX) * 2.0 ** -p
            for w, p in zip(new, precs)]
    cfg = _run_cfg("sim-fixed")
    with LavaGuard() as guard:
        guard.start(lambda: block.create_runtime(run_cfg=cfg), block.stop)
        block.run(condition=RunSteps(num_steps=15), run_cfg=cfg)
        before = block.learned_weights()
        block.params_flat.set(np.concatenate([w.ravel() for w in new]))
        got = block.learned_weights()
        block.run(condition=RunSteps(num_steps=20), run_cfg=cfg)
        after = block.learned_weights()
    for a, w, b, old in zip(got, want, after, before):
        np.testing.assert_array_equal(a, w)
        moved = np.abs(b - w).mean()                     # learning since the set
        assert 0 < moved < np.abs(b - old).mean() / 4, (moved, np.abs(b - old).mean())
