"""Conv layers and the architecture presets."""

import numpy as np
import pytest
import torch

from lava_local.rules import STLLRParams, TESSParams, TPParams, TTLBPTTParams
from lava_local.rules.bptt import BPTTTrainer
from lava_local.rules.stllr import STLLRTrainer
from lava_local.rules.tess import TESSTrainer
from lava_local.rules.tp import TPTrainer
from lava_local.rules.ttlbptt import TTLBPTTTrainer
from lava_local.torch.conv import ConvNetConfig, ConvSNN, conv_spec
from lava_local.torch.train import RunError, TrainConfig, train


def small_conv(spec=(4, "P", 6, "F10"), shape=(2, 8, 8), seed=0, **kw):
    cfg = ConvNetConfig(shape, 3, spec, gamma=0.6, v_th=0.4, init_gain=2.0, **kw)
    return ConvSNN(cfg, generator=torch.Generator().manual_seed(seed)).double()


def spikes(n_steps, shape=(2, 8, 8), b=4, p=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n_steps, b, int(np.prod(shape)), generator=g) < p).double()
    return x, torch.randint(0, 3, (b,), generator=g)


def applied(trainer, x, y):
    before = [w.detach().clone() for w in trainer.model.weights]
    trainer.train_batch(x, y)
    return [(a - w.detach()).numpy() for a, w in zip(before, trainer.model.weights)]


def test_plan_shapes_and_macs():
    cfg = ConvNetConfig((2, 8, 8), 3, (4, "P", 6, "F10"))
    plan = cfg.plan()
    assert [p["out"] for p in plan] == [(4, 8, 8), (6, 4, 4), (10,)]
    assert cfg.layer_sizes == [128, 256, 96, 10, 3]
    assert cfg.forward_macs == [4 * 64 * 2 * 9, 6 * 16 * 4 * 9, 10 * 96, 3 * 10]
    with pytest.raises(ValueError, match="pooling"):
        ConvNetConfig((1, 8, 8), 3, (4, "P", "P", "P", "P", 4))
    with pytest.raises(ValueError, match="different kinds"):
        ConvNetConfig((1, 8, 8), 3, (4, "P", "M", 4))
    # the public codes' VGG-9s: global (S-TLLR/TESS) or 2×2 (TP) average pooling
    for shape in ((2, 32, 32), (2, 48, 48)):
        gap = ConvNetConfig(shape, 10, conv_spec("vgg9-gap"))
        assert [p["kind"] for p in gap.plan()] == ["conv"] * 8
        assert gap.readout_in() == (1, 512) and gap.layer_sizes[-2] == 512 * (shape[1] // 8) ** 2
        assert ConvNetConfig(shape, 10, conv_spec("vgg9-gap2")).readout_in() == (2, 2048)


def test_pooling_by_hand():
    """P pools 2×2 by averaging (or max with pooling="max"), G<k> adapts to k×k."""
    y = torch.zeros(1, 1, 4, 4)
    y[0, 0, 0, 0] = y[0, 0, 3, 3] = y[0, 0, 3, 2] = 1.0
    for pooling, want in (("avg", [[0.25, 0], [0, 0.5]]), ("max", [[1, 0], [0, 1]])):
        net = ConvSNN(ConvNetConfig((1, 4, 4), 2, (1, "P", "F3"), pooling=pooling))
        np.testing.assert_array_equal(net.layer_input(1, y)[0].reshape(2, 2).numpy(), want)
    net = ConvSNN(ConvNetConfig((1, 4, 4), 2, (1, "G1")))
    np.testing.assert_array_equal(net.readout_input(y).numpy(), [[3 / 16]])
    net = ConvSNN(ConvNetConfig((1, 4, 4), 2, (1, "M", "F3")))
    assert net.layer_input(1, y)[0].tolist() == [1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("spec,kw", [
    ((4, "P", 6, "F10"), {}),
    ((4, "P", 6, "F10"), {"pooling": "max"}),
    ((4, "M", 6, "G2"), {"weight_std": True, "bias": True}),
    ((4, "P", 6, "G1"), {}),
], ids=["avg", "max", "M-G2-ws-bias", "G1"])
def test_conv_stllr_equals_bptt_for_one_step(spec, kw):
    """T = 1: S-TLLR's conv update (traces through conv2d_weight, same-step δ) equals the
    autograd gradient for every layer, conv and dense, whatever the pooling."""
    x, y = spikes(1, p=0.7)
    a, b = small_conv(spec, **kw), small_conv(spec, **kw)
    g_s = applied(STLLRTrainer(a, torch.optim.SGD(a.parameters(), lr=1.0)), x, y)
    g_b = applied(BPTTTrainer(b, torch.optim.SGD(b.parameters(), lr=1.0)), x, y)
    assert all(np.abs(g).sum() > 0 for g in g_b)
    for u, v in zip(g_s, g_b):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-13)


def test_conv_stllr_with_dropout_equals_bptt_for_one_step():
    """The same dropout masks (one seeded generator each): S-TLLR's conv update through
    the masked spikes equals autograd's, and differs from the update without masks."""
    x, y = spikes(1, p=0.7)
    spec = (4, "P", 6, "F10")
    got = []
    for make in (STLLRTrainer, BPTTTrainer):
        m = small_conv(spec, dropout=0.4)
        tr = make(m, torch.optim.SGD(m.parameters(), lr=1.0))
        tr.noise = torch.Generator().manual_seed(3)
        got.append(applied(tr, x, y))
    for u, v in zip(*got):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-13)
    m = small_conv(spec)
    plain = applied(STLLRTrainer(m, torch.optim.SGD(m.parameters(), lr=1.0)), x, y)
    assert any(not np.allclose(u, v) for u, v in zip(plain, got[0]))


def test_conv_stllr_trace_update_matches_unrolled_dense_equivalent():
    """A 1×1-spatial conv is a dense layer: the same rule gives the same update."""
    from lava_local.torch.model import DenseSNN, NetConfig

    conv = ConvSNN(ConvNetConfig((5, 1, 1), 3, ("F7",), gamma=0.6, v_th=0.4, init_gain=2.0),
                   generator=torch.Generator().manual_seed(0)).double()
    dense = DenseSNN(NetConfig(5, 3, hidden=(7,), gamma=0.6, v_th=0.4, init_gain=2.0),
                     generator=torch.Generator().manual_seed(0)).double()
    x, y = spikes(6, shape=(5, 1, 1))
    ga = applied(STLLRTrainer(conv, torch.optim.SGD(conv.parameters(), lr=1.0)), x, y)
    gb = applied(STLLRTrainer(dense, torch.optim.SGD(dense.parameters(), lr=1.0)), x, y)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-12)


@pytest.mark.parametrize("trainer, params", [
    (STLLRTrainer, STLLRParams(alpha_post=-0.7)),
    (STLLRTrainer, STLLRParams(signal="dfa", lam_pre=0.75, alpha_post=0.5)),
    (TESSTrainer, TESSParams(alpha_post=-0.7)),
    (TESSTrainer, TESSParams(alpha_post=-0.7, pool=2)),
], ids=["stllr-bp", "stllr-dfa", "tess", "tess-pooled"])
def test_merged_terms_equal_the_two_products_on_conv_nets(trainer, params):
    """merge_terms regroups x[t] = q[t] - λ_pre q[t-1] through the conv layers' weight
    gradients (linear in the pre operand): the same float64 update, over a window, with
    dropout and a bias."""
    from dataclasses import replace

    x, y = spikes(7)
    got = []
    for merge in (False, True):
        m = small_conv(dropout=0.2, bias=True)
        tr = trainer(m, torch.optim.SGD(m.parameters(), lr=1.0),
                     replace(params, merge_terms=merge), window=5,
                     generator=torch.Generator().manual_seed(3))
        torch.manual_seed(5)                # the dropout masks
        got.append(applied(tr, x, y))
    assert all(np.abs(g).sum() > 0 for g in got[0])
    for u, v in zip(*got):
        np.testing.assert_allclose(v, u, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("preset", ["vgg9", "alexnet-snn", "vgg9-gap", "vgg9-gap2"])
@pytest.mark.parametrize("make", [
    lambda m: STLLRTrainer(m, torch.optim.Adam(m.parameters())),
    lambda m: STLLRTrainer(m, torch.optim.Adam(m.parameters()), STLLRParams(signal="dfa")),
    lambda m: TESSTrainer(m, torch.optim.Adam(m.parameters())),
    lambda m: BPTTTrainer(m, torch.optim.Adam(m.parameters())),
    lambda m: TPTrainer(m, torch.optim.Adam(m.parameters())),
], ids=["stllr-bp", "stllr-dfa", "tess", "bptt", "tp"])
def test_presets_run_a_forward_and_update_step(preset, make):
    cfg = ConvNetConfig((2, 32, 32), 10, conv_spec(preset, width=1 / 16), v_th=0.3,
                        init_gain=3.0)
    model = ConvSNN(cfg, generator=torch.Generator().manual_seed(0))
    x = (torch.rand(3, 2, 2 * 32 * 32, generator=torch.Generator().manual_seed(1)) < 0.3)
    before = [w.detach().clone() for w in model.weights]
    make(model).train_batch(x.float(), torch.tensor([1, 7]))
    changed = [not torch.equal(a, w.detach()) for a, w in zip(before, model.weights)]
    assert changed[-1] and sum(changed) >= 2
    assert model.predict_logits(x.float(), 0).shape == (2, 10)


def test_ttlbptt_conv_blocks():
    model = small_conv()
    tr = TTLBPTTTrainer(model, None, TTLBPTTParams(trunc=2, block=1))
    tr.optimizer = torch.optim.SGD(tr.parameters(), lr=1.0)
    g = applied(tr, *spikes(4))
    assert all(np.abs(u).sum() > 0 for u in g)


def test_conv_presets_through_train_and_clear_errors(tmp_path):
    with pytest.raises(RunError, match="pooling"):
        train(TrainConfig(preset="vgg9", epochs=1, n_steps=2), progress=False)
    with pytest.raises(RunError, match="solsa"):
        TrainConfig(preset="vgg9", rule="solsa")
    with pytest.raises(RunError, match="preset"):
        TrainConfig(preset="resnet")
    with pytest.raises(RunError, match="frames"):
        train(TrainConfig(preset="alexnet-snn", dataset="temporal", n_steps=20, epochs=1),
              progress=False)


def test_tess_pooled_conv_signal_equals_autograd_of_the_local_loss():
    """T = 1, α_post = 0, pooling to 2×2: the first conv layer's update is ∂/∂W of
    CE(B · avgpool(y)) through the surrogate."""
    import torch.nn.functional as F

    from lava_local.functional import LIFState, lif_step, square_wave_projection
    from lava_local.torch.spike import make_spike_fn

    model = small_conv()
    x, y = spikes(1, p=0.7)
    tr = TESSTrainer(model, torch.optim.SGD(model.parameters(), lr=1.0),
                     TESSParams(alpha_post=0.0, pool=2))
    w = model.hidden[0].detach().clone().requires_grad_()
    got = applied(tr, x, y)[0]
    z0 = torch.zeros(4, 4, 8, 8, dtype=torch.float64)
    s = lif_step(LIFState(z0, z0), F.conv2d(x[0].reshape(4, 2, 8, 8), w, padding=1), 0.6, 0.4,
                 make_spike_fn("triangle"))
    proj = torch.as_tensor(square_wave_projection(3, 4 * 2 * 2))
    loss = F.cross_entropy(F.adaptive_avg_pool2d(s.y, 2).flatten(1) @ proj.T, y)
    (want,) = torch.autograd.grad(loss, w)
    assert np.abs(want.numpy()).sum() > 0
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-14)


def test_tp_conv_layer_gradient_equals_autograd_of_its_per_location_loss():
    import torch.nn.functional as F

    from lava_local.functional import LIFState, lif_step, tp_contrastive_loss, tp_soft_targets
    from lava_local.torch.spike import make_spike_fn

    model = small_conv()
    x, y = spikes(1, p=0.7)
    tr = TPTrainer(model, torch.optim.SGD(model.parameters(), lr=1.0), TPParams(beta=0.5),
                   generator=torch.Generator().manual_seed(2))
    proj = tr.label_proj.clone()
    w = model.hidden[0].detach().clone().requires_grad_()
    got = applied(tr, x, y)[0]
    onehot = F.one_hot(y, 3).double()
    z0 = torch.zeros(4, 4, 8, 8, dtype=torch.float64)
    spike = make_spike_fn("triangle")
    s = lif_step(LIFState(z0, z0), F.conv2d(x[0].reshape(4, 2, 8, 8), w, padding=1), 0.6, 0.4,
                 spike).y
    st = lif_step(LIFState(z0, z0), (onehot @ proj).reshape(4, 4, 8, 8), 0.6, 0.4, spike).y
    per_loc = [tp_contrastive_loss(s[:, :, i, j], st[:, :, i, j], tp_soft_targets(onehot))
               for i in range(8) for j in range(8)]
    (want,) = torch.autograd.grad(torch.stack(per_loc).mean(), w)
    assert np.abs(want.numpy()).sum() > 0
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-14)
