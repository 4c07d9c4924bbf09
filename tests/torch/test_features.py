"""The published codes' layer features (weight standardisation with gain, bias, learnable
leak and threshold, threshold clamp): hand-computed values, and S-TLLR with all of them
on equal to autograd through one step."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lava_local.functional.lif import standardise_weight
from lava_local.rules.stllr import STLLRParams, STLLRTrainer
from lava_local.rules.tess import TESSParams, TESSTrainer
from lava_local.torch.conv import ConvNetConfig, ConvSNN
from lava_local.torch.model import DenseSNN, NetConfig, NetState
from lava_local.torch.spike import make_spike_fn
from lava_local.torch.train import RunError, TrainConfig

ALL = dict(weight_std=True, bias=True, learn_leak=True, learn_threshold=True)


def test_standardise_weight_by_hand():
    # row 0: [1, 2, 3]: mean 2, unbiased var 1, n = 3 -> (w - 2) / sqrt(3 + 1e-4) * g
    # row 1: [0, 0, 6]: mean 2, unbiased var 12 -> (w - 2) / sqrt(36 + 1e-4) * g
    w = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]], dtype=torch.float64)
    g = torch.tensor([2.0, 0.5], dtype=torch.float64)
    out = standardise_weight(w, g)
    want = np.array([[-1, 0, 1], [-2, -2, 4]], dtype=float)
    want[0] *= 2.0 / math.sqrt(3 + 1e-4)
    want[1] *= 0.5 / math.sqrt(36 + 1e-4)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-14)
    # conv kernels: per output channel over (C_in, k, k), as a numpy re-computation
    rng = np.random.default_rng(0)
    k = rng.normal(size=(4, 3, 3, 3))
    gk = rng.uniform(0.5, 2, size=4)
    flat = k.reshape(4, -1)
    ref = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, ddof=1, keepdims=True)
                                                         * 27 + 1e-4) * gk[:, None]
    np.testing.assert_allclose(standardise_weight(torch.tensor(k), torch.tensor(gk)).numpy(),
                               ref.reshape(k.shape), rtol=1e-12)


def _net(**kw):
    cfg = NetConfig(3, 2, (2,), gamma=0.75, v_th=0.6, kappa=0.0, surrogate="triangle", **kw)
    net = DenseSNN(cfg, generator=torch.Generator().manual_seed(0)).double()
    return net


def test_learnable_leak_threshold_and_bias_by_hand():
    net = _net(bias=True, learn_leak=True, learn_threshold=True, v_th_min=0.5)
    with torch.no_grad():
        net.hidden[0].copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        net.bias[0].copy_(torch.tensor([0.05, -0.2]))
        net.leak[0].fill_(math.log(3.0))          # σ(log 3) = 0.75
        net.threshold[0].fill_(0.7)
    assert float(net.gamma_of(0)) == pytest.approx(0.75)
    u0 = torch.tensor([[0.0, 0.9]], dtype=torch.float64)
    y0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[0.3, 0.5, 1.0]], dtype=torch.float64)
    lif = type(net.init_state(1).layers[0])
    o0 = torch.zeros(1, 2, dtype=torch.float64)
    with torch.no_grad():
        s = net.step(NetState([lif(u0, y0)], o0), x, lambda v: (v > 0).double())
    # u = 0.75 (u0 - 0.7 y0) + W x + b = [0 + 0.3 + 0.05, 0.75 * 0.2 + 0.5 - 0.2]
    np.testing.assert_allclose(s.layers[0].u.numpy(), [[0.35, 0.45]], atol=1e-12)
    np.testing.assert_allclose(s.layers[0].y.numpy(), [[0.0, 0.0]])   # below 0.7
    # the clamp: a threshold learned below 0.5 acts as 0.5 in firing, reset and Ψ
    with torch.no_grad():
        net.threshold[0].fill_(0.2)
        s = net.step(NetState([lif(u0, y0)], o0), x, lambda v: (v > 0).double())
    # u = [0.35, 0.75 (0.9 - 0.5) + 0.5 - 0.2] = [0.35, 0.6]: only the second fires
    np.testing.assert_allclose(s.layers[0].u.numpy(), [[0.35, 0.6]], atol=1e-12)
    np.testing.assert_allclose(s.layers[0].y.numpy(), [[0.0, 1.0]])
    trainer = STLLRTrainer(net, None, STLLRParams())
    assert float(trainer._v_th(0)) == 0.5


def test_fixed_threshold_clamp():
    net = _net(v_th_min=0.8)
    assert net.v_th_of(0) == 0.8                 # max(0.6, 0.8)
    assert _net().v_th_of(0) == 0.6 and _net(v_th_min=0.5).v_th_of(0) == 0.6
    with pytest.raises(ValueError, match="0 < gamma < 1"):
        NetConfig(3, 2, (2,), gamma=1.0, learn_leak=True)


def _one_step_vs_autograd(model, trainer, x, labels, rtol):
    """Run step 0 (no learning) and step 1 (learning) through the trainer; compare the
    estimates of step 1 with autograd through step 1 from the detached state of step 0."""
    b = trainer.batch(x, labels)
    st = trainer.init_state(x, b)
    st = trainer.finish(trainer.advance(st, x[0], False, b))
    start = st.net
    st = trainer.advance(st, x[1], True, b)
    acc = [torch.zeros_like(w) for w in trainer.learned()]
    trainer.learn_into(st, 1, b, acc)
    got = {id(p): g for p, g in model.param_grads(trainer.learned(), acc)}

    spike_fn = make_spike_fn(model.cfg.surrogate)
    params = [p for p in model.parameters()]
    with torch.enable_grad():
        out = model.step(NetState([type(s)(s.u.detach(), s.y.detach()) for s in start.layers],
                                  start.o.detach(), start.masks), x[1], spike_fn)
        loss = F.cross_entropy(out.o, labels)
        want = torch.autograd.grad(loss, params, allow_unused=True)
    assert set(got) == {id(p) for p in params}
    for p, w in zip(params, want):
        w = torch.zeros_like(p) if w is None else w
        assert float(w.abs().max()) > 0 or float(got[id(p)].abs().max()) == 0
        np.testing.assert_allclose(got[id(p)].reshape(p.shape).numpy(), w.numpy(),
                                   rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_stllr_with_every_feature_equals_autograd_one_step(dropout):
    """λ_pre = 0, α_post = 0 and κ = 0 leave S-TLLR's traces with the current step only:
    its estimates for W, V, gains, biases, leaks and thresholds (two layers, recurrent;
    with and without dropout masks) are the gradient through that step."""
    signal = "bp"
    g = torch.Generator().manual_seed(3)
    cfg = NetConfig(6, 3, (5, 4), gamma=0.7, v_th=0.6, kappa=0.0, surrogate="triangle",
                    recurrent=True, v_th_min=0.5, dropout=dropout, **ALL)
    model = DenseSNN(cfg, generator=g).double()
    with torch.no_grad():
        for p in model.bias:
            p.uniform_(-0.3, 0.3, generator=g)
        model.readout_bias.uniform_(-0.3, 0.3, generator=g)
        for p in [*model.gain, *model.gain_rec]:
            p.uniform_(1.5, 3.0, generator=g)
    params = STLLRParams(lam_pre=0.0, alpha_post=0.0, alpha_pre=1.0, signal=signal)
    trainer = STLLRTrainer(model, None, params, window=1)
    trainer.noise = torch.Generator().manual_seed(5)
    x = (torch.rand(2, 4, 6, generator=g) < 0.6).double()
    labels = torch.tensor([0, 1, 2, 1])
    _one_step_vs_autograd(model, trainer, x, labels, rtol=1e-10)
    masks = trainer.net_state(4).masks
    assert (masks is None) == (dropout == 0)
    if masks is not None:
        assert all(0 < float((m == 0).float().mean()) < 0.7 for m in masks)


def test_dropout_masks_by_hand():
    """A mask per sample and neuron, drawn once per batch and held over the steps: the
    next layer and the readout see the masked spikes, the layer resets by its own; no
    masks in evaluation; TESS refuses dropout (its local signal reads the outputs)."""
    cfg = NetConfig(2, 2, (3, 2), gamma=0.5, v_th=0.5, kappa=0.0, dropout=0.5)
    net = DenseSNN(cfg).double()
    with torch.no_grad():
        net.hidden[0].copy_(torch.ones(3, 2))
        net.hidden[1].copy_(torch.ones(2, 3))
        net.readout.copy_(torch.eye(2))
    assert net.init_state(2).masks is None
    st = net.draw_masks(net.init_state(2), torch.Generator().manual_seed(0))
    m1, m2 = st.masks
    assert m1.shape == (2, 3) and m2.shape == (2, 2) and set(m1.unique().tolist()) == {0, 1}
    x = torch.ones(2, 2, dtype=torch.float64)
    torch.set_grad_enabled(False)
    try:
        _masked_steps(net, st, x, m1, m2)
    finally:
        torch.set_grad_enabled(True)
    with pytest.raises(RunError, match="--dropout is not an option of tess"):
        TrainConfig(rule="tess", dropout=0.1)


def _masked_steps(net, st, x, m1, m2):
    for _ in range(3):
        st = net.step(st, x, lambda v: (v > 0).double())
        y1 = st.layers[0].y
        assert torch.equal(y1, torch.ones(2, 3, dtype=torch.float64))   # unmasked spikes
        # layer 2 integrates the masked spikes of layer 1: current = Σ_j m1_j
        # (its reset and its spikes are its own), the readout the masked spikes of layer 2
        np.testing.assert_allclose(st.o.numpy(), (st.layers[1].y * m2).numpy())
        assert st.masks == (m1, m2)
    u2_first = net.step(net.draw_masks(net.init_state(2), torch.Generator().manual_seed(0)),
                        x, lambda v: (v > 0).double()).layers[1].u
    np.testing.assert_allclose(u2_first.numpy(), np.repeat(m1.sum(1, keepdim=True).numpy(),
                                                            2, 1))


def test_tess_conv_with_every_feature_trains_gains_biases_and_thresholds():
    """A conv net with every feature: one TESS batch moves every weight and feature
    parameter (per-channel conv biases, gains, leaks, thresholds)."""
    g = torch.Generator().manual_seed(0)
    cfg = ConvNetConfig((2, 8, 8), 3, (4, "P", "F6"), gamma=0.6, v_th=0.3, surrogate="triangle",
                        v_th_min=0.2, **ALL)
    model = ConvSNN(cfg, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = TESSTrainer(model, opt, TESSParams(), generator=g)
    x = (torch.rand(4, 3, 128, generator=g) < 0.5).float()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train_batch(x, torch.tensor([0, 1, 2]))
    moved = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert moved == set(before), set(before) - moved


def test_rules_without_the_features_refuse_them():
    with pytest.raises(RunError, match="--weight-std is not an option of tp.*stllr, tess, bptt"):
        TrainConfig(rule="tp", weight_std=True)
    with pytest.raises(RunError, match="--bias, --learn-leak are not an option of solsa"):
        TrainConfig(rule="solsa", bias=True, learn_leak=True)
    TrainConfig(rule="bptt", **ALL, v_th_min=0.5)


def test_bptt_learns_every_feature(tmp_path):
    from lava_local.torch.train import train

    res = train(TrainConfig(rule="bptt", dataset="digits", epochs=1, hidden=(16,), n_steps=5,
                            batch_size=64, **ALL, v_th_min=0.4), tmp_path / "r", progress=False)
    ck = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert {"gain.0", "bias.0", "readout_bias", "leak.0", "threshold.0"} <= set(ck["model"])
    assert ck["model"]["leak.0"] != math.log(0.5 / 0.5) or ck["model"]["threshold.0"] != 0.8
    assert 0 <= res["test_acc"] <= 1


def test_export_uses_the_standardised_weights_and_refuses_what_lava_lacks():
    from lava_local.networks.export import export_model

    cfg = TrainConfig(rule="stllr", hidden=(5,), recurrent=True, weight_std=True,
                      v_th_min=0.9)
    model = DenseSNN(cfg.net_config(6, 3), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.gain[0].copy_(torch.linspace(0.5, 2.0, 5))
    net = export_model(cfg, model.state_dict())
    np.testing.assert_allclose(net.weights[0], model.w(0).detach().double().numpy(), atol=1e-6)
    np.testing.assert_allclose(net.recurrent[0], model.v(0).detach().double().numpy(), atol=1e-6,
                               rtol=0)
    np.testing.assert_allclose(net.weights[0].mean(1), 0.0, atol=1e-7)
    assert net.v_th == 0.9                  # the clamp: max(0.8, 0.9)
    for feature in ("bias", "learn_leak", "learn_threshold"):
        c = TrainConfig(rule="stllr", hidden=(5,), **{feature: True})
        m = DenseSNN(c.net_config(6, 3))
        with pytest.raises(RunError, match="does not run in Lava yet"):
            export_model(c, m.state_dict())


def test_cosine_lr_schedule(tmp_path):
    """Epoch e runs at lr (1 + cos(π e / E)) / 2 (torch's CosineAnnealingLR stepped per
    epoch); Traces Propagation keeps its own schedule and refuses another."""
    from lava_local.torch.train import train

    cfg = TrainConfig(rule="stllr", dataset="digits", epochs=3, hidden=(8,), n_steps=4,
                      batch_size=256, lr=0.01, lr_schedule="cosine")
    train(cfg, tmp_path / "r", progress=False)
    ck = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    lr_last = ck["optimizer"]["param_groups"][0]["lr"]
    assert lr_last == pytest.approx(0.01 * (1 + math.cos(math.pi * 2 / 3)) / 2, rel=1e-12)
    with pytest.raises(RunError, match="own learning-rate schedule"):
        TrainConfig(rule="tp", lr_schedule="cosine")
    with pytest.raises(RunError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_augment_frames_crops_and_flips_by_hand():
    """Every augmented sample is one of the 81 crops of its 4-padded frames (or its
    mirror with crop-flip), the same crop for all its frames; over many samples every
    offset occurs and about half are mirrored (none with crop)."""
    import torch.nn.functional as F

    from lava_local.torch.train import augment_frames

    t, b, c, h, w = 3, 120, 2, 6, 6
    x = (torch.rand(t, b, c, h, w, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    padded = F.pad(x, (4, 4, 4, 4))
    g = torch.Generator().manual_seed(1)
    for kind in ("crop", "crop-flip"):
        out = augment_frames(x.reshape(t, b, -1), (c, h, w), kind, g).reshape(t, b, c, h, w)
        offsets, flips = set(), 0
        for i in range(b):
            found = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (0, 1)
                     if torch.equal(out[:, i], (lambda z: z.flip(-1) if f else z)(
                         padded[:, i, :, dy:dy + h, dx:dx + w]))]
            assert found, (kind, i)
            offsets |= {(dy, dx) for dy, dx, _ in found}
            flips += all(f for _, _, f in found)
        assert len(offsets) > 60                       # of the 81 offsets
        if kind == "crop":
            assert flips == 0
        else:
            assert 0.3 * b < flips < 0.7 * b
    assert torch.equal(augment_frames(x.reshape(t, b, -1), (c, h, w), "none", g),
                       x.reshape(t, b, -1))
    with pytest.raises(RunError, match="image-like"):
        augment_frames(torch.zeros(2, 2, 7), (7,), "crop", g)


def test_augment_is_refused_before_work_on_data_without_frames(tmp_path):
    from lava_local.torch.train import train

    cfg = TrainConfig(rule="stllr", dataset="temporal", n_steps=20, hidden=(8,),
                      augment="crop", epochs=1)
    with pytest.raises(RunError, match="image-like frames"):
        train(cfg, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_augmented_runs_resume_exactly(tmp_path):
    """The crops and dropout masks are drawn per epoch from the run's seed: 2 epochs at
    once equal 1 epoch and a resumed second (digits as 1×8×8 frames)."""
    from lava_local.torch.train import train

    def cfg(epochs):
        return TrainConfig(rule="stllr", dataset="digits", n_steps=4, hidden=(16,),
                           epochs=epochs, batch_size=128, augment="crop-flip", dropout=0.2)

    full = train(cfg(2), tmp_path / "full", progress=False)
    train(cfg(1), tmp_path / "part", progress=False)
    resumed = train(cfg(2), tmp_path / "part", resume=True, progress=False)
    strip = [(h["train_loss"], h["test_acc"]) for h in full["history"]]
    assert strip == [(h["train_loss"], h["test_acc"]) for h in resumed["history"]]
    plain = train(TrainConfig(rule="stllr", dataset="digits", n_steps=4, hidden=(16,),
                              epochs=1, batch_size=128), None, progress=False)
    assert plain["history"][0]["train_loss"] != full["history"][0]["train_loss"]
