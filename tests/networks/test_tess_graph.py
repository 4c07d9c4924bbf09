"""TESS learning on the Lava graph (``learn="tess"``): the float graph equals a numpy
re-simulation from the functional core, the fixed graph equals our integer reference
bit for bit, and online learning on the graph moves the weights like batched TESS."""

import numpy as np
import pytest
import torch
from graph_reference import (
    online_batched,
    simulate_fixed_graph,
    simulate_graph,
    update_cosines,
)

from lava_local.data import load_dataset
from lava_local.networks import export_run, load_exported
from lava_local.networks.graph import build_graph, run_network
from lava_local.rules import TESSParams
from lava_local.rules.tess import TESSTrainer
from lava_local.torch.train import TrainConfig, build, train

N, ETA = 3, 2 ** -5


@pytest.fixture(scope="module")
def tess_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tess")
    cfg = TrainConfig(rule="tess", epochs=2, n_steps=10, hidden=(48, 32), seed=4)
    train(cfg, out, progress=False)
    net = load_exported(export_run(out))
    test = load_dataset("digits", "test", n_steps=10, seed=4)
    return cfg, net, test, torch.load(out / "checkpoint.pt")


def test_export_records_the_rule_and_its_options(tess_run):
    cfg, net, _, _ = tess_run
    assert net.rule == "tess" and net.params["tess_f"] == "softmax"
    assert net.params == cfg.params.to_flat() and net.feedback is None


@pytest.mark.parametrize("f", ["softmax", "identity"])
def test_float_tess_graph_equals_functional_reference(tess_run, f):
    _, net, test, _ = tess_run
    r = run_network(net, test, backend="sim-float", n_samples=N, learn="tess", eta=ETA,
                    options={"tess_f": f})
    preds, w = simulate_graph(net, test, N, ETA, signal="tess", f=f)
    assert r.learning["mode"] == "tess" and r.learning["f"] == f
    np.testing.assert_array_equal(r.predictions, preds)
    for a, b, w0 in zip(r.weights, w, net.weights):
        assert np.abs(b - w0).max() > 1e-3          # every layer learned
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_fixed_tess_graph_equals_integer_reference_bit_for_bit(tess_run):
    """Neurons, local error units (f = identity in integers), projections and the
    bit-approximate learning engine: the weights after several samples are equal."""
    _, net, test, _ = tess_run
    r = run_network(net, test, backend="sim-fixed", n_samples=N, learn="tess", eta=ETA,
                    rng_seed=3)
    preds, w = simulate_fixed_graph(net, test, N, ETA, "tess", rng_seed=3)
    assert r.learning["f"] == "identity"           # auto: the integer form in fixed point
    np.testing.assert_array_equal(r.predictions, preds)
    for a, b, w0 in zip(r.weights, w, net.weights):
        assert np.abs(b - w0).max() > 1e-3
        np.testing.assert_array_equal(a, b)


def test_fixed_stllr_dfa_graph_equals_integer_reference_bit_for_bit(tmp_path):
    """The same integer reference with S-TLLR's DFA signal (the other on-graph mode)."""
    cfg = TrainConfig(rule="stllr", epochs=1, n_steps=10, hidden=(24, 16), seed=2,
                      params={"signal": "dfa"})
    train(cfg, tmp_path, progress=False)
    net = load_exported(export_run(tmp_path))
    test = load_dataset("digits", "test", n_steps=10, seed=2)
    r = run_network(net, test, backend="sim-fixed", n_samples=N, learn="stllr-dfa",
                    eta=ETA, rng_seed=1)
    preds, w = simulate_fixed_graph(net, test, N, ETA, "dfa", rng_seed=1,
                                    feedback=net.feedback)
    np.testing.assert_array_equal(r.predictions, preds)
    for a, b, w0 in zip(r.weights, w, net.weights):
        assert np.abs(b - w0).max() > 1e-3
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend, f, hidden_floor, readout_floor", [
    ("sim-float", "softmax", 0.95, 0.7), ("sim-float", "identity", 0.95, 0.7),
    ("sim-fixed", "identity", 0.8, 0.6)])
def test_online_tess_moves_weights_like_batched_tess(tess_run, backend, f, hidden_floor,
                                                     readout_floor):
    """Same samples, same start: the graph's update and batched TESS's (online, per-step
    SGD) point the same way in every layer. On the graph the third factor of layer l is
    n_l m^l (Bᵀ's 1/n_l folded into the layer's learning rate), so the batched
    reference steps layer l with η n_l; what remains is the graph's two-step signal
    delay (and, in fixed point, 7-bit traces and stochastic rounding). Measured: float
    hidden ≥ 0.98, readout ≥ 0.82; fixed hidden ≥ 0.87, readout ≥ 0.76 (8 samples)."""
    cfg, net, test, ck = tess_run
    n = 8
    r = run_network(net, test, backend=backend, n_samples=n, learn="tess", eta=ETA,
                    options={"tess_f": f})
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    model.double()
    groups = [{"params": [w], "lr": ETA * (w.shape[0] if l < len(model.hidden) else 1)}
              for l, w in enumerate(model.weights)]
    tr = TESSTrainer(model, torch.optim.SGD(groups, lr=ETA), TESSParams(online=True, f=f))
    online_batched(tr, test, n)
    batched = [w.detach().numpy() for w in model.weights]
    for l, cos in enumerate(update_cosines(r.weights, batched, net.weights)):
        floor = readout_floor if l == net.n_hidden else hidden_floor
        assert cos >= floor, (l, cos)
    for l in range(net.n_hidden if backend == "sim-float" else 0):   # and as far
        w0 = net.weights[l]
        ratio = np.linalg.norm(r.weights[l] - w0) / np.linalg.norm(batched[l] - w0)
        assert 0.7 < ratio < 1.4, (l, ratio)


def test_tess_softmax_has_no_fixed_point_form(tess_run):
    _, net, test, _ = tess_run
    with pytest.raises(ValueError, match="identity"):
        build_graph(net, test, backend="sim-fixed", learn="tess", n_samples=1,
                    options={"tess_f": "softmax"})
    with pytest.raises(ValueError, match="tess_f"):
        build_graph(net, test, backend="sim-float", learn="tess", n_samples=1,
                    options={"tess_g": "identity"})


@pytest.mark.parametrize("backend, floor", [("sim-float", 0.99), ("sim-fixed", 0.9)])
def test_tess_net_in_lava_reproduces_batched_predictions(tess_run, backend, floor):
    cfg, net, test, ck = tess_run
    n = 40
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    x = torch.tensor(test.spikes[:n]).permute(1, 0, 2).float()
    want = model.predict_logits(x, net.window_start).argmax(-1).numpy()
    r = run_network(net, test, backend=backend, n_samples=n)
    assert (r.predictions == want).mean() >= floor


def test_trace_reset_separates_samples(tess_run):
    """With the reset, the learning engines' pre traces start every sample at zero, as
    the batched trainer's do; without it (the old graph) they carry the previous
    sample's end into the next one. The graph equals its reference either way."""
    _, net, test, _ = tess_run
    w = {}
    for reset in (True, False):
        r = run_network(net, test, backend="sim-float", n_samples=N, learn="tess", eta=ETA,
                        reset_traces=reset)
        _, ref = simulate_graph(net, test, N, ETA, signal="tess", reset_traces=reset)
        for a, b in zip(r.weights, ref):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
        w[reset] = r.weights
    assert all(np.abs(a - b).max() > 1e-6 for a, b in zip(w[True], w[False]))


def test_idle_steps_let_traces_decay_below_one_unit():
    from lava_local.networks.graph import idle_steps

    k = idle_steps([0.5, 0.9])
    assert 127 * 0.9 ** k < 0.5 <= 127 * 0.9 ** (k - 1)
    assert idle_steps([1.0, 0.0]) == 0
