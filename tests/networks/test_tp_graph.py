"""Traces Propagation learning on the Lava graph (``learn="tp"``, the prototype
contrast): the prototype tables are the batched trainer's label path, the float graph
equals a numpy re-simulation, the fixed graph equals our integer reference bit for bit,
and online learning on the graph moves the weights like batched prototype TP."""

import numpy as np
import pytest
import torch
from graph_reference import online_batched, quantised, update_cosines
from tp_reference import int_softmax_reference, simulate_fixed_tp_graph, simulate_tp_graph

from lava_local.data import load_dataset
from lava_local.fixed import int_softmax
from lava_local.functional import tp_prototype_targets
from lava_local.networks import export_run, load_exported
from lava_local.networks.graph import build_graph, run_network
from lava_local.rules import TPParams, get
from lava_local.rules.tp import TPTrainer, label_path_tables
from lava_local.torch.train import TrainConfig, build, train

N, ETA = 3, 2 ** -5


@pytest.fixture(scope="module")
def tp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tp")
    cfg = TrainConfig(rule="tp", epochs=1, n_steps=10, hidden=(48, 32), seed=4,
                      params={"tp_contrast": "prototype"})
    train(cfg, out, progress=False)
    net = load_exported(export_run(out))
    test = load_dataset("digits", "test", n_steps=10, seed=4)
    return cfg, net, test, torch.load(out / "checkpoint.pt")


def _model(cfg, ck):
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    return model.double()


def test_export_records_the_label_projection(tp_run):
    cfg, net, _, ck = tp_run
    assert net.rule == "tp" and net.params == cfg.params.to_flat()
    np.testing.assert_array_equal(net.matrices["label_proj"],
                                  ck["trainer"]["label_proj"].double().numpy())


def test_prototype_tables_are_the_batched_label_path(tp_run):
    """Float tables == the prototype trainer's target path (same weights, same S) at every
    step, and the soft targets from the layer below; the fixed tables (integers) stay
    within a few spikes' worth of them."""
    cfg, net, test, ck = tp_run
    model = _model(cfg, ck)
    tr = TPTrainer(model, None, TPParams(contrast="prototype"))
    tr.load_state_dict({"label_proj": ck["trainer"]["label_proj"].double()})
    tables = label_path_tables(net, net.matrices["label_proj"], 0.9)
    x = torch.zeros(10, 1, 64, dtype=torch.float64)
    b = tr.batch(x, torch.tensor([0]))
    s = tr.init_state(x, b)
    for t in range(10):
        s = tr.advance(s, x[t], False, b)
        below = s.eps0_t
        for l, (protos, targets) in enumerate(tables):
            np.testing.assert_allclose(protos[t], s.eps_t[l].numpy(), rtol=0, atol=1e-9)
            want = tp_prototype_targets(below, torch.arange(10)).numpy()
            np.testing.assert_allclose(targets[t], want, rtol=0, atol=1e-9)
            below = s.eps_t[l]
    assert all(p[-1].sum() > 0 for p, _ in tables)
    fixed = label_path_tables(net, net.matrices["label_proj"], 0.9, fixed=True, precision=7)
    for (pf, yf), (pi, yi) in zip(tables, fixed):
        assert pi.dtype == np.int64 and yi.dtype == np.int64
        assert np.abs(pi / 128 - pf).mean() < 0.1 * np.abs(pf).mean()
        assert np.abs(yi / 128 - yf).max() < 0.25


def test_integer_softmax_is_within_one_unit_of_softmax():
    rng = np.random.default_rng(0)
    for scale in (2 ** -14, 2 ** -8):
        z = rng.integers(-60000, 60000, size=(200, 10))
        p = int_softmax(z, scale)
        exact = np.exp(z * scale - (z * scale).max(-1, keepdims=True))
        exact = 128 * exact / exact.sum(-1, keepdims=True)
        assert np.abs(p - exact).max() <= 1.0
        for row in z[:20]:
            np.testing.assert_array_equal(int_softmax(row, scale),
                                          int_softmax_reference(row, scale))


def test_float_tp_graph_equals_functional_reference(tp_run):
    _, net, test, _ = tp_run
    r = run_network(net, test, backend="sim-float", n_samples=N, learn="tp", eta=ETA)
    preds, w = simulate_tp_graph(net, test, N, ETA)
    assert r.learning["mode"] == "tp" and r.learning["label_proj"] == "trained run's"
    np.testing.assert_array_equal(r.predictions, preds)
    for a, b, w0 in zip(r.weights, w, net.weights):
        assert np.abs(b - w0).max() > 1e-3          # every layer learned
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_fixed_tp_graph_equals_integer_reference_bit_for_bit(tp_run):
    """Integer neurons (Ψ paired one step late), prototype units (integer trace,
    similarities, integer softmax, back projection), tag shift registers and the
    bit-approximate engine: equal weights after several samples."""
    _, net, test, _ = tp_run
    r = run_network(net, test, backend="sim-fixed", n_samples=N, learn="tp", eta=ETA,
                    rng_seed=3)
    preds, w = simulate_fixed_tp_graph(net, test, N, ETA, rng_seed=3)
    np.testing.assert_array_equal(r.predictions, preds)
    for a, b, w0 in zip(r.weights, w, net.weights):
        assert np.abs(b - w0).max() > 1e-3
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend, eta, n, floor", [
    ("sim-float", 2 ** -10, 8, 0.9999), ("sim-float", ETA, 8, 0.95),
    ("sim-fixed", ETA, 32, 0.6)])
def test_online_tp_moves_weights_like_batched_prototype_tp(tp_run, backend, eta, n, floor):
    """Same samples, same start: the graph's update and batched prototype TP's (batch 1,
    per-step SGD, every signal scaled by 1/(T - T_l) like the graph's) point the same
    way in every layer. The graph pairs m[t], Ψ(u[t]) and x[t] exactly; what remains is
    that its prototypes are the label path of the starting weights and that an update
    takes effect two steps later, both vanishing with η (cosine 0.99999 at η = 2^-10,
    0.97-0.99 at 2^-5), and in fixed point 7-bit factors, truncation of third factors
    below one unit and stochastic rounding into 8-bit weights, i.e. noise that averages
    out over samples (measured from the quantised start: 0.89 / 0.73 / 0.87 after 32
    samples; 0.85 / 0.41 / 0.90 after 8)."""
    cfg, net, test, ck = tp_run
    r = run_network(net, test, backend=backend, n_samples=n, learn="tp", eta=eta)
    model = _model(cfg, ck)
    # the graph scales every layer's signal by 1/(T - T_l) = 1/10
    tr = TPTrainer(model, torch.optim.SGD(model.parameters(), lr=eta / 10),
                   TPParams(contrast="prototype"))
    tr.load_state_dict({"label_proj": ck["trainer"]["label_proj"].double()})
    online_batched(tr, test, n)
    batched = [w.detach().numpy() for w in model.weights]
    start = quantised(net.weights) if backend == "sim-fixed" else None
    cos = update_cosines(r.weights, batched, net.weights, start)
    assert min(cos) >= floor, cos


def test_tp_graph_options_and_registry(tp_run):
    _, net, test, _ = tp_run
    with pytest.raises(ValueError, match="takes no options"):
        build_graph(net, test, backend="sim-float", learn="tp", n_samples=1,
                    options={"tess_f": "identity"})
    assert get("tp").graph.mode == "tp" and get("tp").min_batch_of(
        TPParams(contrast="prototype")) == 1
