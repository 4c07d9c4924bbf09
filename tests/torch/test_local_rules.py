"""TESS and TTL-BPTT against independent computations; locality; memory."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lava_local.functional import LIFState, lif_step, square_wave_projection
from lava_local.rules import SOLSAParams, TESSParams, TPParams, TTLBPTTParams
from lava_local.rules.bptt import BPTTTrainer
from lava_local.rules.solsa import SOLSATrainer
from lava_local.rules.stllr import STLLRTrainer
from lava_local.rules.tess import TESSTrainer
from lava_local.rules.tp import TPTrainer
from lava_local.rules.ttlbptt import TTLBPTTTrainer
from lava_local.torch.model import DenseSNN, NetConfig
from lava_local.torch.spike import make_spike_fn


def net(hidden=(9, 7), seed=0):
    cfg = NetConfig(12, 4, hidden=hidden, gamma=0.6, v_th=0.5, kappa=0.8, init_gain=1.5)
    return DenseSNN(cfg, generator=torch.Generator().manual_seed(seed)).double()


def batch(n_steps, b=6, p=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(n_steps, b, 12, generator=g) < p).double(),
            torch.randint(0, 4, (b,), generator=g))


def applied(trainer, x, y):
    ws = trainer.model.weights
    before = [w.detach().clone() for w in ws]
    trainer.train_batch(x, y)
    return [(b - w.detach()).numpy() for b, w in zip(before, ws)]


def sgd(model, extra=()):
    return torch.optim.SGD([*model.parameters(), *extra], lr=1.0)


def test_square_wave_rows_are_binary_and_nearly_orthogonal():
    b = square_wave_projection(10, 128, scale=False)
    assert set(np.unique(b)) == {-1.0, 1.0}
    gram = b @ b.T / 128
    np.testing.assert_allclose(np.diag(gram), 1.0)
    assert np.abs(gram - np.eye(10)).max() < 0.25
    np.testing.assert_allclose(square_wave_projection(10, 128), b / 128)


@pytest.mark.parametrize("f", ["softmax", "identity"])
def test_tess_one_layer_one_step_equals_autograd_of_its_local_loss(f):
    """T = 1, α_post = 0: the hidden update is ∂/∂W of the layer's own loss
    CE(B y, c) (softmax) or ½‖B y - y*‖² (identity), through the surrogate."""
    model = net(hidden=(9,))
    x, y = batch(1, p=0.7)
    tr = TESSTrainer(model, sgd(model), TESSParams(alpha_post=0.0, f=f))
    got = applied(tr, x, y)[0]

    ref = net(hidden=(9,))
    w = ref.hidden[0].detach().clone().requires_grad_()
    zeros = torch.zeros(6, 9, dtype=torch.float64)
    s = lif_step(LIFState(zeros, zeros), x[0] @ w.T, 0.6, 0.5, make_spike_fn("triangle"))
    proj = torch.as_tensor(square_wave_projection(4, 9))
    z = s.y @ proj.T
    onehot = F.one_hot(y, 4).double()
    loss = F.cross_entropy(z, y) if f == "softmax" else 0.5 * ((z - onehot) ** 2).sum() / 6
    (want,) = torch.autograd.grad(loss, w)
    assert np.abs(want.numpy()).sum() > 0
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-15)


def perturbed_later_layers(model):
    with torch.no_grad():
        model.hidden[1].mul_(-1.3)
        model.readout.add_(0.7)
    return model


def test_tess_no_signal_crosses_a_layer():
    x, y = batch(6)
    a = net()
    g_a = applied(TESSTrainer(a, sgd(a)), x, y)
    b = perturbed_later_layers(net())
    g_b = applied(TESSTrainer(b, sgd(b)), x, y)
    np.testing.assert_array_equal(g_a[0], g_b[0])  # layer 1 never sees layers 2..L
    # contrast: S-TLLR-bp's first-layer update depends on the layers above
    c, d = net(), perturbed_later_layers(net())
    assert not np.allclose(applied(STLLRTrainer(c, sgd(c)), x, y)[0],
                           applied(STLLRTrainer(d, sgd(d)), x, y)[0])


def test_ttlbptt_with_one_window_and_one_block_is_bptt():
    x, y = batch(7)
    a = net()
    tr = TTLBPTTTrainer(a, None, TTLBPTTParams(trunc=None, block=2))
    tr.optimizer = sgd(a, tr.aux.parameters())
    g_ttl = applied(tr, x, y)
    b = net()
    g_bptt = applied(BPTTTrainer(b, sgd(b)), x, y)
    assert all(np.abs(g).sum() > 0 for g in g_bptt)
    for u, v in zip(g_ttl, g_bptt):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-14)


def test_ttlbptt_truncation_changes_the_gradient():
    x, y = batch(7)
    a, b = net(), net()
    ta = TTLBPTTTrainer(a, None, TTLBPTTParams(trunc=None, block=2, update="sample"))
    ta.optimizer = sgd(a)
    tb = TTLBPTTTrainer(b, None, TTLBPTTParams(trunc=2, block=2, update="sample"))
    tb.optimizer = sgd(b)
    assert not np.allclose(applied(ta, x, y)[0], applied(tb, x, y)[0])


def test_ttlbptt_blocks_are_local():
    x, y = batch(6)
    grads = []
    for model in (net(), perturbed_later_layers(net())):
        tr = TTLBPTTTrainer(model, None, TTLBPTTParams(trunc=3, block=1, update="sample"),
                            generator=torch.Generator().manual_seed(1))
        tr.aux = tr.aux.double()
        tr.optimizer = sgd(model, tr.aux.parameters())
        grads.append(applied(tr, x, y))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    assert not np.allclose(grads[0][1], grads[1][1])


@pytest.mark.parametrize("rule, kw", [("tess", {}), ("tp", {}), ("solsa", {}),
                                      ("ttlbptt", {"ttl_trunc": 5})])
def test_learning_state_is_flat_in_T(rule, kw):
    from lava_local.data import load_dataset
    from lava_local.torch.train import TrainConfig, build, cost_report, iterate_batches

    mem = {}
    for n_steps in (10, 200):
        cfg = TrainConfig.from_flat(rule=rule, n_steps=n_steps, batch_size=16, **kw)
        ds = load_dataset("digits", "train", n_steps=n_steps)
        _, _, trainer = build(cfg, 64, 10, torch.device("cpu"))
        x, lab = next(iterate_batches(ds, 16, None, torch.device("cpu")))
        mem[n_steps] = cost_report(cfg, trainer, x, lab)["memory_measured_bytes_batch"]
    assert mem[10] == mem[200] > 0


def test_ttlbptt_rejects_bad_options():
    with pytest.raises(ValueError, match="K"):
        TTLBPTTParams(trunc=0)
    with pytest.raises(ValueError, match="block"):
        TTLBPTTParams(block=0)
    with pytest.raises(ValueError, match="update"):
        TTLBPTTParams(update="epoch")
    rec = DenseSNN(NetConfig(12, 4, hidden=(9,), recurrent=True))
    with pytest.raises(ValueError, match="recurrent"):
        TTLBPTTTrainer(rec)


# -- Traces Propagation ---------------------------------------------------------------

def test_tp_soft_targets_make_same_class_pairs_positive():
    from lava_local.functional import tp_soft_targets

    labels = np.array([0, 1, 0, 2, 1, 0])
    eps0 = 3.0 * np.eye(3)[labels]             # label traces after a few steps
    y = tp_soft_targets(eps0)
    np.testing.assert_allclose(y.sum(1), 1.0)
    for b in range(6):
        same = labels == labels[b]
        assert y[b, same].min() > y[b, ~same].max()
        np.testing.assert_allclose(y[b, same], y[b, same][0])
    yt = tp_soft_targets(torch.tensor(eps0)).numpy()
    np.testing.assert_allclose(yt, y, rtol=1e-12)


def test_tp_loss_numpy_and_torch_agree(rng):
    from lava_local.functional import tp_contrastive_loss, tp_soft_targets

    e, et, below = rng.random((5, 7)), rng.random((5, 7)), rng.random((5, 3))
    a = tp_contrastive_loss(e, et, tp_soft_targets(below))
    b = tp_contrastive_loss(*(torch.tensor(v) for v in (e, et)),
                            tp_soft_targets(torch.tensor(below)))
    assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_tp_one_step_gradients_equal_autograd_of_each_local_loss():
    """T = 1, SGD(lr=1): the applied update of layer l is ∂E_l/∂W_l computed here from
    scratch (both paths through W_l for l >= 2, the label projection S for l = 1)."""
    from lava_local.functional import tp_contrastive_loss, tp_soft_targets
    model = net(hidden=(9, 7))
    x, y = batch(1, b=6, p=0.7)
    tr = TPTrainer(model, sgd(model), TPParams(beta=0.5),
                   generator=torch.Generator().manual_seed(3))
    proj = tr.label_proj.clone()
    ref = net(hidden=(9, 7))
    got = applied(tr, x, y)

    spike = make_spike_fn("triangle")
    onehot = F.one_hot(y, 4).double()
    z = lambda n: torch.zeros(6, n, dtype=torch.float64)  # noqa: E731
    w1 = ref.hidden[0].detach().clone().requires_grad_()
    w2 = ref.hidden[1].detach().clone().requires_grad_()
    s1 = lif_step(LIFState(z(9), z(9)), x[0] @ w1.T, 0.6, 0.5, spike).y
    t1 = lif_step(LIFState(z(9), z(9)), onehot @ proj, 0.6, 0.5, spike).y
    e1 = tp_contrastive_loss(s1, t1, tp_soft_targets(onehot))
    (g1,) = torch.autograd.grad(e1, w1)
    s2 = lif_step(LIFState(z(7), z(7)), s1.detach() @ w2.T, 0.6, 0.5, spike).y
    t2 = lif_step(LIFState(z(7), z(7)), t1.detach() @ w2.T, 0.6, 0.5, spike).y
    e2 = tp_contrastive_loss(s2, t2, tp_soft_targets(t1.detach()))
    (g2,) = torch.autograd.grad(e2, w2)
    g_out = (torch.softmax(s2.detach() @ ref.readout.detach().T, -1) - onehot).T @ s2 / 6
    for a, b in zip(got, (g1, g2, g_out)):
        assert np.abs(b.detach().numpy()).sum() > 0
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-14)


def test_tp_is_layer_local_and_needs_two_samples():
    x, y = batch(5)
    g = []
    for model in (net(), perturbed_later_layers(net())):
        tr = TPTrainer(model, sgd(model), generator=torch.Generator().manual_seed(3))
        g.append(applied(tr, x, y))
    np.testing.assert_array_equal(g[0][0], g[1][0])
    model = net()
    with pytest.raises(ValueError, match="batch size >= 2"):
        TPTrainer(model, sgd(model)).train_batch(x[:, :1], y[:1])


def _prototype_step_grads(recurrent: bool):
    """A TP trainer with the prototype contrast after one step (no learning), then its
    one-step gradients at step 2 — and the same gradients by autograd of each layer's
    prototype loss through that layer and that step only (float64)."""
    from lava_local.functional import tp_prototype_loss, tp_prototype_targets

    cfg = NetConfig(12, 4, hidden=(9, 7), gamma=0.6, v_th=0.5, init_gain=1.5,
                    recurrent=recurrent)
    model = DenseSNN(cfg, generator=torch.Generator().manual_seed(0)).double()
    tr = TPTrainer(model, sgd(model), TPParams(beta=0.5, contrast="prototype"),
                   generator=torch.Generator().manual_seed(3))
    x, y = batch(2, b=5, p=0.7)
    b = tr.batch(x, y)
    s0 = tr.advance(tr.init_state(x, b), x[0], False, b)
    s1 = tr.advance(s0, x[1], True, b)
    spike = make_spike_fn("triangle")
    ref, inp = [], x[1]
    for l in range(2):
        w = model.hidden[l].detach().clone().requires_grad_()
        params = [w]
        cur = inp @ w.T
        if recurrent:
            v = model.recurrent[l].detach().clone().requires_grad_()
            params.append(v)
            cur = cur + s0.inp[l].y @ v.T
        st = lif_step(s0.inp[l], cur, 0.6, 0.5, spike)
        e = 0.5 * s0.eps[l] + st.y
        below = s1.eps0_t if l == 0 else s1.eps_t[l - 1]
        loss = tp_prototype_loss(e, s1.eps_t[l], tp_prototype_targets(below, y))
        ref.append(torch.autograd.grad(loss, params))
        inp = st.y.detach()
    return s1.grads, ref


@pytest.mark.parametrize("recurrent", [False, True])
def test_tp_prototype_gradient_equals_autograd_of_its_loss(recurrent):
    """The closed form (m ⊙ Ψ(u))ᵀ x with m = Pᵀ(softmax(Pε) − y) / B is the gradient
    of the prototype loss through one layer and one step, with the trace of the step
    before in ε (and V through y[t-1] for recurrent layers)."""
    got, ref = _prototype_step_grads(recurrent)
    for g_layer, r_layer in zip(got, ref):
        assert len(g_layer) == len(r_layer) == (2 if recurrent else 1)
        for g, r in zip(g_layer, r_layer):
            assert r.abs().sum() > 0
            np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-10, atol=1e-14)


def test_tp_prototypes_are_the_label_path_of_each_class():
    """The prototype trainer's target path, one row per class, equals the batch
    trainer's target path of a batch holding each class once; and it learns from a
    batch of one."""
    x, _ = batch(3, b=4, p=0.6)
    y = torch.arange(4)
    rows = []
    for contrast in ("batch", "prototype"):
        model = net()
        tr = TPTrainer(model, sgd(model), TPParams(beta=0.5, contrast=contrast),
                       generator=torch.Generator().manual_seed(3))
        b = tr.batch(x, y)
        s = tr.init_state(x, b)
        for t in range(3):
            s = tr.advance(s, x[t], False, b)
        rows.append([e.numpy() for e in s.eps_t])
    for a, p in zip(*rows):
        assert a.sum() > 0
        np.testing.assert_array_equal(a, p)
    model = net()
    tr = TPTrainer(model, sgd(model), TPParams(contrast="prototype"),
                   generator=torch.Generator().manual_seed(3))
    g = applied(tr, x[:, :1], y[:1])
    assert all(np.abs(a).sum() > 0 for a in g)


# -- SOLSA ----------------------------------------------------------------------------

def test_solsa_eligibility_unrolled_by_hand():
    from lava_local.functional.solsa import solsa_eligibility_step

    # λ = 0.5, θ = 1; one synapse; psp = 1, 0, 2; ε = 0.2, 0.4, (unused)
    # e0 = 0*... + 1 = 1
    # e1 = (0.5 - 1*0.2) * 1 + 0 = 0.3
    # e2 = (0.5 - 1*0.4) * 0.3 + 2 = 2.03
    e, eps_prev, out = np.zeros((1, 1)), np.zeros(1), []
    for psp, eps in ((1.0, 0.2), (0.0, 0.4), (2.0, 0.0)):
        e = solsa_eligibility_step(e, eps_prev, np.array([psp]), 0.5, 1.0)
        eps_prev = np.array([eps])
        out.append(float(e[0, 0]))
    np.testing.assert_allclose(out, [1.0, 0.3, 2.03])


class _GaussSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, theta, sigma):
        ctx.save_for_backward(v)
        ctx.theta, ctx.sigma = theta, sigma
        return (v > theta).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        from lava_local.functional.solsa import gaussian_surrogate

        (v,) = ctx.saved_tensors
        return g * gaussian_surrogate(v, ctx.theta, ctx.sigma), None, None


def test_solsa_output_layer_update_is_the_exact_bptt_gradient():
    """The eligibility includes the reset path, so for the last layer (whose input does
    not depend on its weights) Σ_t δ[t] e[t] is the full BPTT gradient of the per-step
    MSE through v, the spikes and the soft reset."""
    from lava_local.torch.solsa import SOLSANet

    cfg = NetConfig(12, 4, hidden=(9,), gamma=0.7, v_th=0.6, init_gain=2.0)
    model = SOLSANet(cfg, sigma=0.4, generator=torch.Generator().manual_seed(0)).double()
    x, y = batch(8, b=5, p=0.6)
    ref_w = model.layers[1].detach().clone().requires_grad_()
    with torch.no_grad():     # the hidden layer's spikes and the output layer's psp
        state, psps = model.init_state(5), []
        for t in range(8):
            state, _ = model.step(state, x[t])
            psps.append(state.psp[1])
    tr = SOLSATrainer(model, torch.optim.SGD(model.parameters(), lr=1.0),
                      SOLSAParams(topk=0, early_stop=False))
    got = applied(tr, x, y)[1]

    onehot = F.one_hot(y, 4).double()
    v = torch.zeros(5, 4, dtype=torch.float64)
    s = torch.zeros_like(v)
    loss = 0
    for t in range(8):
        v = 0.7 * v + psps[t] @ ref_w.T - 0.6 * s
        s = _GaussSpike.apply(v, 0.6, 0.4)
        loss = loss + ((s - onehot) ** 2).sum(-1).mean() / 4
    (want,) = torch.autograd.grad(loss, ref_w)
    assert np.abs(want.numpy()).sum() > 0
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-13)


def test_solsa_schedule_keeps_the_top_k_steps():
    from lava_local.torch.solsa import SOLSANet

    model = SOLSANet(NetConfig(12, 4, hidden=(9,)), generator=torch.Generator().manual_seed(0))
    tr = SOLSATrainer(model, torch.optim.Adam(model.parameters()),
                      SOLSAParams(topk=3, rerank=1))
    x, y = batch(10, p=0.6)
    tr.train_batch(x.float(), y)
    assert tr.schedule == [9]                       # starts from the last step
    norms = dict(tr.step_norms)
    tr.start_epoch(1, 5)
    assert tr.schedule == sorted(sorted(norms, key=lambda t: -norms[t])[:3])


def test_tp_recurrent_one_step_gradients_include_the_recurrent_weights():
    """Two steps, recurrent layer: at the second step the one-layer-one-step gradient of
    E_1 reaches V through y[t-1] (detached), on both paths."""
    cfg = NetConfig(12, 4, hidden=(9,), gamma=0.6, v_th=0.5, init_gain=1.5, recurrent=True)
    model = DenseSNN(cfg, generator=torch.Generator().manual_seed(0)).double()
    tr = TPTrainer(model, sgd(model), TPParams(beta=0.5),
                   generator=torch.Generator().manual_seed(3))
    g = applied(tr, *batch(3, b=6, p=0.7))
    assert len(g) == 3 and np.abs(g[1]).sum() > 0


def test_solsa_recurrent_eligibility_is_the_exact_derivative_of_v():
    """For a hidden recurrent layer, e_rec[t] = ∂v[t]/∂V through the membrane and the
    soft reset, with the recurrent input spikes taken as given (the path of V through
    the layer's own earlier spikes is not followed — as e-prop does) — vs autograd."""
    from lava_local.functional.solsa import gaussian_surrogate, solsa_eligibility_step
    from lava_local.torch.solsa import SOLSANet

    cfg = NetConfig(12, 4, hidden=(6,), gamma=0.7, v_th=0.6, init_gain=2.0, recurrent=True)
    model = SOLSANet(cfg, sigma=0.4, generator=torch.Generator().manual_seed(0)).double()
    x, _ = batch(6, b=2, p=0.6)
    v_par = model.recurrent[0].detach().clone().requires_grad_()
    w, a, b = model.layers[0].detach(), model.alpha[0].detach(), model.beta[0].detach()
    ar, br = model.alpha_rec[0].detach(), model.beta_rec[0].detach()
    psp, pr = torch.zeros(2, 12, dtype=torch.float64), torch.zeros(2, 6, dtype=torch.float64)
    v, s = torch.zeros(2, 6, dtype=torch.float64), torch.zeros(2, 6, dtype=torch.float64)
    e, eps_prev = torch.zeros(2, 6, 6, dtype=torch.float64), torch.zeros(2, 6,
                                                                        dtype=torch.float64)
    for t in range(6):
        psp = a * psp + b * x[t]
        pr = ar * pr + br * s.detach()
        v = 0.7 * v + psp @ w.T + pr @ v_par.T - 0.6 * s
        e = solsa_eligibility_step(e, eps_prev, pr.detach(), 0.7, 0.6)
        s = _GaussSpike.apply(v, 0.6, 0.4)
        eps_prev = gaussian_surrogate(v.detach(), 0.6, 0.4)
    for i in range(6):
        (g,) = torch.autograd.grad(v[0, i], v_par, retain_graph=True)
        np.testing.assert_allclose(e[0, i].numpy(), g[i].numpy(), rtol=1e-9, atol=1e-12)
        assert np.abs(np.delete(g.numpy(), i, axis=0)).max() < 1e-12


def test_solsa_recurrent_trains():
    from lava_local.torch.solsa import SOLSANet

    cfg = NetConfig(12, 4, hidden=(9,), gamma=0.7, v_th=0.6, init_gain=2.0, recurrent=True)
    model = SOLSANet(cfg, generator=torch.Generator().manual_seed(0))
    tr = SOLSATrainer(model, torch.optim.SGD(model.parameters(), lr=1.0),
                      SOLSAParams(topk=0, early_stop=False))
    before = model.recurrent[0].detach().clone()
    x, y = batch(8, p=0.6)
    tr.train_batch(x.float(), y)
    assert not torch.equal(before, model.recurrent[0].detach())


def test_tp_soft_targets_are_exact_at_batch_128_in_float32():
    """The distances of TP's soft targets by direct differences at every batch size:
    float32 at batch 128 (where cdist's matrix-product form is ~0.05 off on the
    diagonal) equals a float64 computation to float32 precision."""
    from lava_local.functional import tp_soft_targets

    rng = np.random.default_rng(5)
    e = rng.random((128, 200)) * 5.0                  # β-traces of spikes, up to ~1/(1-β)
    want = tp_soft_targets(e)                         # numpy, float64, direct differences
    got = tp_soft_targets(torch.tensor(e, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    mm = torch.cdist(torch.tensor(e, dtype=torch.float32), torch.tensor(e, dtype=torch.float32))
    assert mm.diagonal().abs().max() > 1e-3           # what the default form would give
