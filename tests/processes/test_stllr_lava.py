"""The S-TLLR learning neuron and product-series rule in Lava's runtime.

- float model == the functional core (same inputs, same initial weights, several steps);
- fixed engine == our own integer reference, bit for bit;
- fixed neuron vs float neuron: membrane error within the quantisation bound.
"""

import numpy as np
import pytest

from lava_local.lava_runtime import ensure_lava_runtime

ensure_lava_runtime()

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.dense.process import Dense, LearningDense  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402

from lava_local.fixed import from_membrane, quantize_weights, weight_precision  # noqa: E402
from lava_local.functional import (  # noqa: E402
    LIFState,
    get_surrogate,
    lif_step,
    noncausal_trace,
    post_trace_step,
    pre_trace_step,
    stllr_update,
)
from lava_local.networks.guard import LavaGuard  # noqa: E402
from lava_local.processes import STLLRNeuron  # noqa: E402
from lava_local.processes.learning_dense import fast_learning_models  # noqa: E402
from lava_local.rules.stllr_loihi import FixedEngineReference, OnChipSTLLR  # noqa: E402


def one_layer(pre, delta, w0, rule, tag, gamma=0.5, v_th=0.8, lam_post=0.2,
              post_form="paper", precision=7, weight_exp=0):
    """Run RingBuffer -> LearningDense -> STLLRNeuron with δ fed to the third-factor port."""
    n_post = w0.shape[0]
    src, dsrc = RingBuffer(data=pre), RingBuffer(data=delta)
    if rule is None:
        dense = Dense(weights=w0.copy(), weight_exp=weight_exp)
    else:
        dense = LearningDense(weights=w0.copy(), weight_exp=weight_exp,
                              learning_rule=rule.learning_rule(rng_seed=3))
    neu = STLLRNeuron(shape=(n_post,), gamma=gamma, v_th=v_th, lam_post=lam_post,
                      post_form=post_form, rule=rule, precision=precision)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(neu.a_in)
    dsrc.s_out.connect(neu.a_third_factor_in)
    if rule is not None:
        for a, b in ((neu.s_out_bap, dense.s_in_bap), (neu.s_out_y1, dense.s_in_y1),
                     (neu.s_out_y2, dense.s_in_y2), (neu.s_out_y3, dense.s_in_y3)):
            a.connect(b)
    us = []
    cfg = Loihi2SimCfg(select_tag=tag)
    with LavaGuard() as guard:
        guard.start(lambda: neu.create_runtime(run_cfg=cfg), neu.stop)
        for _ in range(pre.shape[1]):
            neu.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
            us.append(np.array(neu.u.get(), dtype=float))
        w, h = np.array(dense.weights.get(), dtype=float), np.array(neu.h.get(), dtype=float)
    return w, np.array(us), h


def reference(pre, delta, w0, eta, gamma=0.5, v_th=0.8, lam_pre=0.5, lam_post=0.2,
              alpha_pre=1.0, alpha_post=-1.0, post_form="paper"):
    """S-TLLR from the functional core, with the graph's timing (see rules.stllr_loihi):
    the neuron at step σ sees W·p[σ-1]; the update at σ is
    -η (stllr_update(δ[σ], Ψ(u[σ]), q[σ-1], h̃[σ+1], p[σ]))."""
    psi_f = get_surrogate("triangle")
    w = w0.copy()
    n_post, n_pre = w.shape
    a_buf, x1 = np.zeros(n_post), np.zeros(n_pre)
    s, h, us = LIFState(np.zeros(n_post), np.zeros(n_post)), np.zeros(n_post), []
    for k in range(pre.shape[1]):
        p, d = pre[:, k], delta[:, k]
        s = lif_step(s, a_buf, gamma, v_th)
        psi = psi_f(s.u, v_th)
        h_next = post_trace_step(h, psi, lam_post)
        a_buf = w @ p
        q_prev, x1 = x1, pre_trace_step(x1, p, lam_pre)
        g = stllr_update(d, psi, q_prev, noncausal_trace(h_next, lam_post, post_form), p,
                         alpha_pre, alpha_post)
        w = w - eta * g
        h = h_next
        us.append(s.u.copy())
    return w, np.array(us), h


@pytest.mark.parametrize("alpha_post, post_form", [(-1.0, "paper"), (1.0, "code"),
                                                   (0.0, "paper")])
def test_float_model_equals_functional_stllr(alpha_post, post_form):
    rng = np.random.default_rng(0)
    n_pre, n_post, steps = 6, 4, 12
    pre = (rng.random((n_pre, steps)) < 0.5).astype(float)
    delta = rng.normal(size=(n_post, steps))
    w0 = rng.normal(size=(n_post, n_pre))
    rule = OnChipSTLLR(eta=2 ** -3, mode="float", alpha_post=alpha_post, post_form=post_form)
    w, us, h = one_layer(pre, delta, w0, rule, "floating_pt", post_form=post_form)
    w_ref, us_ref, h_ref = reference(pre, delta, w0, rule.eta, alpha_post=alpha_post,
                                     post_form=post_form)
    assert np.abs(w_ref - w0).max() > 1e-3, "degenerate case: nothing learned"
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(us, us_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(h, h_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fast", [False, True], ids=["lava-model", "fast-model"])
def test_fixed_engine_matches_integer_reference_bit_for_bit(fast):
    """Lava's own bit-approximate LearningDense model and our faster subclass both."""
    rng = np.random.default_rng(1)
    n_pre, n_post, steps = 7, 5, 30
    pre = (rng.random((n_pre, steps)) < 0.4).astype(np.int32)
    y1 = rng.integers(0, 128, (n_post, steps))
    y2 = rng.integers(0, 128, (n_post, steps))
    bap = (rng.random((n_post, steps)) < 0.5).astype(np.int32)
    w0 = 2 * rng.integers(-100, 100, (n_post, n_pre))
    rule = OnChipSTLLR(eta=2 ** -6, mode="fixed", weight_precision=7)
    dense = LearningDense(weights=w0.copy(), learning_rule=rule.learning_rule(rng_seed=11))
    srcs = [RingBuffer(data=d) for d in (pre, y1, y2, bap, np.zeros_like(y1))]
    for s, port in zip(srcs, (dense.s_in, dense.s_in_y1, dense.s_in_y2, dense.s_in_bap,
                              dense.s_in_y3)):
        s.s_out.connect(port)
    models = fast_learning_models("sim-fixed") if fast else {}
    cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
    with LavaGuard() as guard:
        guard.start(lambda: dense.create_runtime(run_cfg=cfg), dense.stop)
        dense.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        w = np.array(dense.weights.get(), dtype=np.int64)
    ref = FixedEngineReference(w0, rule, rng_seed=11)
    for k in range(steps):
        w_ref = ref.step(pre[:, k], y1[:, k], y2[:, k], bap[:, k])
    assert np.abs(w_ref - w0).sum() > 50, "degenerate case: too few updates"
    np.testing.assert_array_equal(w, w_ref)


def test_fixed_neuron_tracks_float_neuron_within_the_quantisation_bound():
    """Same quantised weights in both: the fixed membrane differs from the float one only
    by the decay's rounding, |e[t]| <= γ|e[t-1]| + 2^-(6+P) => |e| <= 2^-(6+P)/(1-γ),
    as long as both spike alike; spikes agree almost everywhere."""
    rng = np.random.default_rng(2)
    n_pre, n_post, steps, gamma = 20, 16, 40, 0.5
    pre = (rng.random((n_pre, steps)) < 0.3).astype(np.int32)
    w = rng.normal(scale=0.4, size=(n_post, n_pre))
    p = weight_precision(w)
    w_int = quantize_weights(w, p)
    zeros = np.zeros((n_post, steps))
    _, u_float, _ = one_layer(pre.astype(float), zeros, w_int * 2.0 ** -p, None,
                              "floating_pt", gamma=gamma)
    _, u_fixed, _ = one_layer(pre, zeros.astype(np.int32), w_int, None, "fixed_pt",
                              gamma=gamma, precision=p)
    u_fixed = from_membrane(u_fixed, p)
    s_float, s_fixed = u_float > 0.8, u_fixed > 0.8
    same = (s_float == s_fixed).all(axis=1)
    k = int(np.argmin(same)) if not same.all() else steps
    bound = 2.0 ** -(6 + p) / (1 - gamma) + 1e-12
    assert k > 5
    assert np.abs(u_fixed[:k] - u_float[:k]).max() <= bound
    assert (s_float == s_fixed).mean() >= 0.97
