"""S-TLLR eligibility and update: hand values, the paper's closed form, and autograd."""

import numpy as np
import pytest
import torch

from lava_local.functional import (
    LIFState,
    lif_step,
    noncausal_trace,
    post_trace_step,
    pre_trace_step,
    stllr_eligibility,
    stllr_update,
)
from lava_local.functional.surrogates import get_surrogate
from lava_local.torch.spike import make_spike_fn


def test_eligibility_by_hand():
    # e_ij = α_pre Ψ_i q_j + α_post h_i x_j with Ψ = [0.5, 0], q = [1, 2], h = [0.1, 0.4],
    # x = [1, 0], α_pre = 1, α_post = -1:
    # e_00 = 0.5*1 - 0.1*1 = 0.4   e_01 = 0.5*2 - 0 = 1.0
    # e_10 = 0 - 0.4*1 = -0.4      e_11 = 0
    e = stllr_eligibility(np.array([0.5, 0.0]), np.array([1.0, 2.0]), np.array([0.1, 0.4]),
                          np.array([1.0, 0.0]), 1.0, -1.0)
    np.testing.assert_allclose(e, [[0.4, 1.0], [-0.4, 0.0]])


@pytest.mark.parametrize("alpha_post", [-1.0, 0.0, 0.5])
@pytest.mark.parametrize("xp", ["numpy", "torch"])
def test_update_equals_batch_sum_of_delta_times_eligibility(rng, xp, alpha_post):
    b, n_post, n_pre = 5, 4, 3
    arrs = [rng.normal(size=(b, n_post)), rng.random((b, n_post)), rng.random((b, n_pre)),
            rng.random((b, n_post)), (rng.random((b, n_pre)) < 0.5).astype(float)]
    delta, psi, q, h, x = arrs
    want = np.einsum("bi,bij->ij", delta, stllr_eligibility(psi, q, h, x, 0.7, alpha_post))
    if xp == "torch":
        got = stllr_update(*[torch.tensor(a) for a in arrs], 0.7, alpha_post).numpy()
    else:
        got = stllr_update(delta, psi, q, h, x, 0.7, alpha_post)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_noncausal_trace_forms():
    h = np.array([1.0, 2.0])
    np.testing.assert_allclose(noncausal_trace(h, 0.5, "paper"), [0.5, 1.0])
    np.testing.assert_allclose(noncausal_trace(h, 0.5, "code"), h)
    with pytest.raises(ValueError, match="paper"):
        noncausal_trace(h, 0.5, "other")


def test_recurrences_equal_the_papers_closed_form(rng):
    """The paper's closed form equals the trace recurrences with post_form="paper":
    e[t] = α_pre Ψ(u[t]) Σ_{t'≤t} λ_pre^{t-t'} x[t']
           + α_post x[t] Σ_{t'<t} λ_post^{t-t'} Ψ(u[t'])"""
    n_steps, n_pre, n_post = 12, 3, 2
    lam_pre, lam_post, a_pre, a_post = 0.75, 0.2, 1.0, -1.0
    x = (rng.random((n_steps, n_pre)) < 0.4).astype(float)
    psi = rng.random((n_steps, n_post))
    q, h, prev = np.zeros(n_pre), np.zeros(n_post), np.zeros(n_post)
    for t in range(n_steps):
        q = pre_trace_step(q, x[t], lam_pre)
        h = post_trace_step(h, prev, lam_post)
        prev = psi[t]
        got = stllr_eligibility(psi[t], q, noncausal_trace(h, lam_post, "paper"), x[t],
                                a_pre, a_post)
        q_cf = sum(lam_pre ** (t - s) * x[s] for s in range(t + 1))
        h_cf = sum((lam_post ** (t - s) * psi[s] for s in range(t)), np.zeros(n_post))
        want = a_pre * np.outer(psi[t], q_cf) + a_post * np.outer(h_cf, x[t])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("surrogate", ["triangle", "sigmoid_prime", "arctan"])
def test_single_layer_one_step_equals_autograd(surrogate):
    """T = 1, α_post = 0: the S-TLLR update is exactly ∂L/∂W of the per-step loss.

    One LIF layer whose spikes are the logits of a softmax cross-entropy. This pins the
    sign (G is a gradient; the optimiser subtracts it) and the scale.
    """
    g = torch.Generator().manual_seed(0)
    b, n_in, n = 6, 5, 4
    v_th, gamma = 0.8, 0.5
    x = (torch.rand(b, n_in, generator=g) < 0.6).double()
    w = (torch.rand(n, n_in, generator=g, dtype=torch.float64) - 0.3).requires_grad_()
    labels = torch.randint(0, n, (b,), generator=g)
    zeros = torch.zeros(b, n, dtype=torch.float64)
    s = lif_step(LIFState(zeros, zeros), x @ w.T, gamma, v_th, make_spike_fn(surrogate))
    loss = torch.nn.functional.cross_entropy(s.y, labels, reduction="sum")
    (auto,) = torch.autograd.grad(loss, w)

    with torch.no_grad():
        delta = torch.softmax(s.y, -1) - torch.nn.functional.one_hot(labels, n).double()
        psi = get_surrogate(surrogate)(s.u, v_th)
        q = pre_trace_step(torch.zeros(b, n_in, dtype=torch.float64), x, 0.5)
        h = post_trace_step(zeros, zeros, 0.2)
        g_stllr = stllr_update(delta, psi, q, h, x, 1.0, 0.0)
    assert auto.abs().sum() > 0, "degenerate case: no surrogate gradient"
    torch.testing.assert_close(g_stllr, auto, rtol=1e-12, atol=1e-12)
