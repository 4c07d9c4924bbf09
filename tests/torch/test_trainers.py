"""The batched trainers against independent computations."""

import numpy as np
import pytest
import torch

from lava_local.functional import (
    LIFState,
    bp_signal,
    dfa_signal,
    get_surrogate,
    lif_step,
    noncausal_trace,
    post_trace_step,
    pre_trace_step,
    stllr_update,
)
from lava_local.functional._backend import outer_batched, softmax
from lava_local.rules import STLLRParams
from lava_local.rules.bptt import BPTTTrainer
from lava_local.rules.stllr import STLLRTrainer
from lava_local.torch.model import DenseSNN, NetConfig


def make(rule, cfg=None, params=None, window=None, seed=0, lr=1.0, dtype=torch.float64):
    cfg = cfg or NetConfig(12, 4, hidden=(9, 7), gamma=0.6, v_th=0.5, kappa=0.8,
                           init_gain=1.5)
    g = torch.Generator().manual_seed(seed)
    model = DenseSNN(cfg, generator=g).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    if rule == "stllr":
        return STLLRTrainer(model, opt, params, window, generator=g)
    return BPTTTrainer(model, opt, window=window)


def batch(n_steps, b=5, n_in=12, n_out=4, p=0.4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n_steps, b, n_in, generator=g) < p).to(dtype)
    return x, torch.randint(0, n_out, (b,), generator=g)


def applied_gradient(trainer, x, y):
    """-ΔW of one train_batch with SGD(lr=1): the gradient estimate the trainer applied."""
    before = [w.detach().clone() for w in trainer.model.weights]
    trainer.train_batch(x, y)
    return [(b - w.detach()).numpy() for b, w in zip(before, trainer.model.weights)]


def reference_stllr(ws, w_out, x, labels, cfg, p, t_l, feedback=None, vs=None):
    """S-TLLR written out with numpy and the functional core only (``vs``: recurrent
    weights; their input is the layer's own spikes of the previous step)."""
    n_steps, b = x.shape[:2]
    psi_fn = get_surrogate(cfg.surrogate)
    onehot = np.eye(cfg.n_out)[labels]
    st = [LIFState(np.zeros((b, w.shape[0])), np.zeros((b, w.shape[0]))) for w in ws]
    q = [np.zeros((b, w.shape[1])) for w in ws]
    h = [np.zeros((b, w.shape[0])) for w in ws]
    prev_psi = [np.zeros((b, w.shape[0])) for w in ws]
    o, q_out = np.zeros((b, cfg.n_out)), np.zeros((b, w_out.shape[1]))
    vs = vs or []
    q_rec = [np.zeros((b, v.shape[0])) for v in vs]
    grads = [np.zeros_like(w) for w in ws] + [np.zeros_like(v) for v in vs] \
        + [np.zeros_like(w_out)]
    n_win = n_steps - t_l
    for t in range(n_steps):
        inp, ins = x[t], []
        rec_in = [s.y.copy() for s in st] if vs else []
        for l, w in enumerate(ws):
            ins.append(inp)
            current = inp @ w.T + (rec_in[l] @ vs[l].T if vs else 0.0)
            st[l] = lif_step(st[l], current, cfg.gamma, cfg.v_th)
            inp = st[l].y
        q_rec = [pre_trace_step(q_rec[l], rec_in[l], p.lam_pre) for l in range(len(vs))]
        o = cfg.kappa * o + inp @ w_out.T
        q = [pre_trace_step(q[l], ins[l], p.lam_pre) for l in range(len(ws))]
        q_out = pre_trace_step(q_out, inp, cfg.kappa)
        h = [post_trace_step(h[l], prev_psi[l], p.lam_post) for l in range(len(ws))]
        psi = [psi_fn(s.u, cfg.v_th) for s in st]
        if t >= t_l:
            err = (softmax(o) - onehot) / (b * n_win)
            if feedback is None:
                deltas = [None] * len(ws)
                deltas[-1] = bp_signal(err, 1.0, w_out)
                for l in range(len(ws) - 2, -1, -1):
                    deltas[l] = bp_signal(deltas[l + 1], psi[l + 1], ws[l + 1])
            else:
                deltas = [dfa_signal(err, bl) for bl in feedback]
            for l in range(len(ws)):
                h_eff = noncausal_trace(h[l], p.lam_post, p.post_form)
                grads[l] += stllr_update(deltas[l], psi[l], q[l], h_eff, ins[l],
                                         p.alpha_pre, p.alpha_post)
                if vs:
                    grads[len(ws) + l] += stllr_update(deltas[l], psi[l], q_rec[l], h_eff,
                                                       rec_in[l], p.alpha_pre, p.alpha_post)
            grads[-1] += outer_batched(err, q_out)
        prev_psi = psi
    return grads


@pytest.mark.parametrize("params, window", [
    (STLLRParams(), None),
    (STLLRParams(lam_pre=0.9, lam_post=0.5, alpha_post=1.0, post_form="code"), 4),
    (STLLRParams(signal="dfa", alpha_post=-0.5), 6),
    # the terms merged onto the pre trace: the same update, one product a step
    (STLLRParams(merge_terms=True), None),
    (STLLRParams(lam_pre=0.9, lam_post=0.5, alpha_post=1.0, post_form="code",
                 merge_terms=True), 4),
    (STLLRParams(signal="dfa", alpha_post=-0.5, merge_terms=True), 6),
    (STLLRParams(lam_pre=0.0, merge_terms=True), 7),
    (STLLRParams(lam_pre=1.0, merge_terms=True), 1),
])
def test_stllr_trainer_equals_functional_reference(params, window):
    tr = make("stllr", params=params, window=window)
    x, y = batch(10)
    ws = [w.detach().numpy().copy() for w in tr.model.hidden]
    w_out = tr.model.readout.detach().numpy().copy()
    fb = [b.numpy() for b in tr.feedback] if params.signal == "dfa" else None
    want = reference_stllr(ws, w_out, x.numpy(), y.numpy(), tr.model.cfg, params,
                           10 - (window or 10), fb)
    got = applied_gradient(tr, x, y)
    assert all(np.abs(g).sum() > 0 for g in want), "degenerate case: a layer got no update"
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("signal, merge", [("bp", False), ("dfa", False), ("bp", True),
                                           ("dfa", True)])
def test_recurrent_stllr_trainer_equals_functional_reference(signal, merge):
    cfg = NetConfig(12, 4, hidden=(9, 7), gamma=0.6, v_th=0.5, kappa=0.8, init_gain=1.5,
                    recurrent=True)
    params = STLLRParams(signal=signal, merge_terms=merge)
    tr = make("stllr", cfg=cfg, params=params)
    x, y = batch(10)
    ws = [w.detach().numpy().copy() for w in tr.model.hidden]
    vs = [v.detach().numpy().copy() for v in tr.model.recurrent]
    w_out = tr.model.readout.detach().numpy().copy()
    fb = [b.numpy() for b in tr.feedback] if signal == "dfa" else None
    want = reference_stllr(ws, w_out, x.numpy(), y.numpy(), cfg, params, 0, fb, vs)
    got = applied_gradient(tr, x, y)
    assert len(got) == 5 and all(np.abs(g).sum() > 0 for g in want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


def test_recurrent_bptt_gradient_reaches_the_recurrent_weights():
    cfg = NetConfig(12, 4, hidden=(9,), gamma=0.6, v_th=0.5, init_gain=1.5, recurrent=True)
    tr = make("bptt", cfg=cfg)
    g = applied_gradient(tr, *batch(8))
    assert len(g) == 3 and np.abs(g[1]).sum() > 0


def test_stllr_equals_bptt_for_one_step():
    """T = 1: no temporal credit to assign, so S-TLLR (bp) and BPTT give the same update
    for every layer of a multi-layer network (the post trace is zero at t = 0)."""
    x, y = batch(1, b=8, p=0.7)
    g_stllr = applied_gradient(make("stllr"), x, y)
    g_bptt = applied_gradient(make("bptt"), x, y)
    assert all(np.abs(g).sum() > 0 for g in g_bptt)
    for a, b in zip(g_stllr, g_bptt):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_stllr_differs_from_bptt_over_time():
    x, y = batch(8, b=8, p=0.5)
    g_stllr = applied_gradient(make("stllr"), x, y)
    g_bptt = applied_gradient(make("bptt"), x, y)
    assert not np.allclose(g_stllr[0], g_bptt[0])


def test_stllr_step_does_not_backpropagate_through_time():
    tr = make("stllr")
    x, _ = batch(2)
    state = tr.model.init_state(5)
    prev = type(state)([LIFState(s.u.clone().requires_grad_(), s.y.clone().requires_grad_())
                        for s in state.layers], state.o.clone().requires_grad_())
    new = tr.step(prev, x[0], learn=True)
    # dense nets: the bp signal is in closed form, so the step builds no graph at all
    assert not tr.needs_step_graph and not new.o.requires_grad
    # the path of nets without a closed form (conv): a graph within the step only
    with torch.enable_grad():
        new = tr.model.step(tr._detach(prev), x[0], tr.spike_fn)
    assert new.o.requires_grad, "the step must build its own (within-step) graph"
    leaves = [*(s.u for s in prev.layers), *(s.y for s in prev.layers), prev.o]
    grads = torch.autograd.grad(new.o.sum(), leaves, allow_unused=True)
    assert all(g is None for g in grads)
    # contrast: the BPTT step keeps the path to the earlier state
    bp = make("bptt")
    new = bp.model.step(prev, x[0], bp.spike_fn)
    assert torch.autograd.grad(new.o.sum(), prev.o)[0] is not None


def test_online_update_applies_every_step():
    p = STLLRParams(online=True)
    x, y = batch(1, b=8, p=0.7)
    # with T = 1 the online and batch updates coincide
    a = applied_gradient(make("stllr", params=p), x, y)
    b = applied_gradient(make("stllr"), x, y)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15)
    # with T = 3 they differ (later steps see updated weights)
    x, y = batch(3, b=8, p=0.7)
    a = applied_gradient(make("stllr", params=p), x, y)
    b = applied_gradient(make("stllr"), x, y)
    assert not np.allclose(a[0], b[0])


class _StateSizes:
    """A meter that records the number of values of the state reported at each step."""

    def __init__(self):
        self.sizes = []

    def set_state(self, name, tensors):
        self.sizes.append(sum(t.numel() for t in tensors))


def test_merged_terms_take_one_product_per_layer_and_step_and_keep_one_vector():
    """merge_terms: one weight product per hidden layer and learning step (plus one per
    layer at the end), the pending coefficient in the reported state; with online it is
    refused, and without a non-causal term it changes nothing."""
    x, y = batch(6)
    calls = {}
    for merge in (False, True):
        tr = make("stllr", params=STLLRParams(merge_terms=merge))
        n = 0

        def count(l, acc, a, g, alpha=1.0, _f=tr.model.add_weight_grad):
            nonlocal n
            n += 1
            _f(l, acc, a, g, alpha)

        tr.model.add_weight_grad = count
        meter = _StateSizes()
        tr.train_batch(x, y, meter=meter)
        calls[merge] = n, meter.sizes
    assert calls[False][0] == 2 * 2 * 6          # two terms, two layers, six steps
    assert calls[True][0] == 2 * 6 + 2 - 2       # one a step, the flush, none at t = 0
    # the pending coefficients (9 + 7 per sample), carried from the first learning step
    assert [m - u for m, u in zip(calls[True][1], calls[False][1])] == [0] + [16 * 5] * 5
    with pytest.raises(ValueError, match="drop online or merge_terms"):
        STLLRParams(merge_terms=True, online=True)
    assert not STLLRParams(merge_terms=True, alpha_post=0.0).merges
    a = applied_gradient(make("stllr", params=STLLRParams(alpha_post=0.0)), x, y)
    b = applied_gradient(make("stllr", params=STLLRParams(alpha_post=0.0, merge_terms=True)),
                         x, y)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def _trained_weights(rule, params, recurrent, autograd, monkeypatch):
    """Weights after three float32 batches of ``rule`` on a 3-hidden-layer net, with the
    closed-form learning signal or (``autograd``) the autograd path conv nets take."""
    from lava_local.rules.tp import TPTrainer
    from lava_local.torch.train import TrainConfig, build

    with monkeypatch.context() as m:
        if autograd:
            cls = {"stllr": STLLRTrainer, "tp": TPTrainer}[rule]
            if rule == "stllr":
                m.setattr(cls, "needs_step_graph", property(lambda self: True))
        cfg = TrainConfig(rule=rule, hidden=(32, 24, 16), n_steps=10, recurrent=recurrent,
                          params=params)
        _, _, tr = build(cfg, 20, 10, torch.device("cpu"))
        if autograd and rule == "tp":
            tr.closed_form = False
        g = torch.Generator().manual_seed(1)
        x = (torch.rand(10, 8, 20, generator=g) < 0.3).float()
        y = torch.randint(0, 10, (8,), generator=g)
        losses = [tr.train_batch(x, y) for _ in range(3)]
    return [w.detach().clone() for w in tr.model.weights], losses


@pytest.mark.parametrize("recurrent", [False, True])
def test_closed_form_bp_signal_equals_the_step_graph_bit_for_bit(recurrent, monkeypatch):
    """S-TLLR's bp signal from ``DenseSNN.step_deltas`` (no autograd) gives the same
    float32 weights as autograd through the step, bit for bit, over three batches."""
    a = _trained_weights("stllr", {"signal": "bp"}, recurrent, False, monkeypatch)
    b = _trained_weights("stllr", {"signal": "bp"}, recurrent, True, monkeypatch)
    assert a[1] == b[1]
    for u, v in zip(a[0], b[0]):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


@pytest.mark.parametrize("recurrent", [False, True])
def test_tp_closed_form_gradient_equals_autograd_of_the_layer_loss(recurrent, monkeypatch):
    """TP's batch contrast in closed form (``tp_contrastive_signal``) and by autograd of
    each layer's loss through one layer and one step: the same float32 weights within
    float32 rounding (the two sum the paths' contributions in different orders)."""
    a = _trained_weights("tp", {}, recurrent, False, monkeypatch)
    b = _trained_weights("tp", {}, recurrent, True, monkeypatch)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    for u, v in zip(a[0], b[0]):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


def test_dfa_bound_classes_by_default_or_the_layer_width():
    """B^l ~ U(-a, a): a = sqrt(6/C) by default (the draws are those of before), a =
    sqrt(6/N_l) with dfa_bound="layer" (the public S-TLLR code's Kaiming bound)."""
    cfg = NetConfig(12, 4, hidden=(400, 300))
    got = {}
    for bound in ("classes", "layer"):
        model = DenseSNN(cfg, generator=torch.Generator().manual_seed(0))
        tr = STLLRTrainer(model, None, STLLRParams(signal="dfa", dfa_bound=bound),
                          generator=torch.Generator().manual_seed(1))
        got[bound] = tr.feedback
    for fb_c, fb_l, n in zip(got["classes"], got["layer"], (400, 300)):
        a_c, a_l = (6 / 4) ** 0.5, (6 / n) ** 0.5
        assert 0.97 * a_c < fb_c.abs().max() <= a_c
        assert 0.97 * a_l < fb_l.abs().max() <= a_l
        torch.testing.assert_close(fb_l / a_l, fb_c / a_c)     # same draws, rescaled


def test_tp_label_projection_bound():
    """S ~ U(-a, a): a = sqrt(6/C) by default, 1/sqrt(C) with tp_label_bound="linear"
    (PyTorch's nn.Linear default, the public TP code's); the same draws, rescaled."""
    from lava_local.rules.tp import TPParams, TPTrainer

    cfg = NetConfig(12, 10, hidden=(500,))
    got = {}
    for bound in ("kaiming", "linear"):
        model = DenseSNN(cfg, generator=torch.Generator().manual_seed(0))
        got[bound] = TPTrainer(model, None, TPParams(label_bound=bound),
                               generator=torch.Generator().manual_seed(1)).label_proj
    a_k, a_l = (6 / 10) ** 0.5, 10 ** -0.5
    assert 0.99 * a_k < got["kaiming"].abs().max() <= a_k
    assert 0.99 * a_l < got["linear"].abs().max() <= a_l
    torch.testing.assert_close(got["linear"] / a_l, got["kaiming"] / a_k)
    with pytest.raises(ValueError, match="tp_label_bound"):
        TPParams(label_bound="nope")
