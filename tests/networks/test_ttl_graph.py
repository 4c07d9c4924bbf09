"""TTL-BPTT on the Lava graph (``learn="ttlbptt"``): one Process per block whose numpy
reverse mode through each K-step window equals the batched trainer's autograd on the
same samples, for several (K, b); the fixed model learns the same way in 8-bit weights."""

import numpy as np
import pytest
import torch
from graph_reference import update_cosines

from lava_local.data import load_dataset
from lava_local.networks import export_run, load_exported
from lava_local.networks.graph import build_graph, run_network
from lava_local.rules.ttlbptt import TTLBPTTTrainer
from lava_local.torch.train import TrainConfig, build, train

ETA = 0.05


def _run(tmp_path, k, b, update="window"):
    cfg = TrainConfig(rule="ttlbptt", epochs=1, n_steps=10, hidden=(24, 16), seed=2,
                      window=6, params={"ttl_trunc": k, "ttl_block": b, "ttl_update": update})
    train(cfg, tmp_path, progress=False)
    net = load_exported(export_run(tmp_path))
    return cfg, net, torch.load(tmp_path / "checkpoint.pt")


def _batched(cfg, ck, test, n, eta):
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    model.double()
    tr = TTLBPTTTrainer(model, None, cfg.params, window=cfg.window)
    tr.load_state_dict(ck["trainer"])
    tr.aux.double()
    tr.attach_optimizer(torch.optim.SGD(tr.parameters(), lr=eta))
    for i in range(n):
        x = torch.tensor(test.spikes[i:i + 1]).permute(1, 0, 2).double()
        tr.train_batch(x, torch.tensor(test.labels[i:i + 1]))
    return [w.detach().numpy() for w in model.weights], [a.detach().numpy() for a in tr.aux]


@pytest.mark.parametrize("k, b, update", [(3, 1, "window"), (1, 1, "window"),
                                          (4, 2, "window"), (10, 2, "window"),
                                          (3, 1, "sample")])
def test_ttlbptt_graph_update_equals_batched_trainer(tmp_path, k, b, update):
    cfg, net, ck = _run(tmp_path, k, b, update)
    test = load_dataset("digits", "test", n_steps=10, seed=2)
    r = run_network(net, test, backend="sim-float", n_samples=2, learn="ttlbptt", eta=ETA,
                    options={"ttl_form": "blocks"})
    assert r.learning["window"] == k and r.learning["form"] == "blocks"
    assert r.learning["blocks"] == ([[0], [1]] if b == 1 else [[0, 1]])
    weights, aux = _batched(cfg, ck, test, 2, ETA)
    for a, w, w0 in zip(r.weights, weights, net.weights):
        assert np.abs(w - w0).max() > 1e-4
        np.testing.assert_allclose(a, w, rtol=0, atol=1e-6)
    for i, a in enumerate(aux):
        np.testing.assert_allclose(r.extra["matrices"][f"aux.{i}"], a, rtol=0, atol=1e-6)


def test_ttlbptt_fixed_graph_learns_like_the_float_graph(tmp_path):
    """Integer forward pass, float window gradient, stochastic rounding into 8-bit
    weights: weight updates in the float graph's direction (from the quantised start)."""
    cfg, net, ck = _run(tmp_path, 3, 1)
    test = load_dataset("digits", "test", n_steps=10, seed=2)
    n = 16
    fl = run_network(net, test, backend="sim-float", n_samples=n, learn="ttlbptt", eta=ETA)
    fx = run_network(net, test, backend="sim-fixed", n_samples=n, learn="ttlbptt", eta=ETA)
    from graph_reference import quantised

    cos = update_cosines(fx.weights, fl.weights, net.weights, quantised(net.weights))
    assert min(cos) > 0.6, cos     # measured 0.79, 0.75, 0.96 (16 samples)


def test_ttlbptt_graph_needs_its_auxiliary_classifiers(tmp_path):
    cfg = TrainConfig(rule="stllr", epochs=1, n_steps=10, hidden=(24, 16), seed=2)
    train(cfg, tmp_path, progress=False)
    net = load_exported(export_run(tmp_path))
    test = load_dataset("digits", "test", n_steps=10, seed=2)
    with pytest.raises(ValueError, match="auxiliary classifier"):
        build_graph(net, test, backend="sim-float", learn="ttlbptt", n_samples=1)


@pytest.mark.parametrize("backend, eta, n, floor", [
    ("sim-float", 2 ** -10, 8, 0.9999), ("sim-float", 2 ** -4, 8, 0.99),
    ("sim-fixed", 2 ** -4, 24, 0.4)])
def test_ttlbptt_k1_b1_on_the_learning_engine_moves_like_batched(tmp_path, backend, eta,
                                                                 n, floor):
    """K = 1, b = 1 runs on the common graph: a TTLAuxUnit per layer sends its
    classifier's error projected back, OnChipTP applies it with the pre spike of the
    step, the readout learns e[t] ⊗ y_L[t]. Same samples, same start as batched
    TTL-BPTT (K = 1, b = 1, SGD): measured cosines 1.0 at η = 2^-10 and ≥ 0.993 at 2^-4
    in float (the graph applies updates two steps late; the last layer's working copy of
    the readout runs one update ahead of the readout synapses), 0.53 / 0.56 / 0.93 in
    fixed point (24 samples: the updates are a few 8-bit steps, stochastically rounded)."""
    cfg, net, ck = _run(tmp_path, 1, 1)
    test = load_dataset("digits", "test", n_steps=10, seed=2)
    r = run_network(net, test, backend=backend, n_samples=n, learn="ttlbptt", eta=eta)
    assert r.learning["form"] == "engine"
    weights, _ = _batched(cfg, ck, test, n, eta)
    from graph_reference import quantised

    start = quantised(net.weights) if backend == "sim-fixed" else None
    cos = update_cosines(r.weights, weights, net.weights, start)
    assert min(cos) >= floor, cos


def test_ttlbptt_forms(tmp_path):
    _, net, _ = _run(tmp_path, 3, 1)
    test = load_dataset("digits", "test", n_steps=10, seed=2)
    with pytest.raises(ValueError, match="K = 1, b = 1"):
        build_graph(net, test, backend="sim-float", learn="ttlbptt", n_samples=1,
                    options={"ttl_form": "engine"})
    from lava_local import rules

    with pytest.raises(ValueError, match="sim-float and sim-fixed"):   # before any Loihi
        rules.get("ttlbptt").graph.bind(net, "loihi2")


def test_fixed_block_current_is_the_integer_product():
    """The fixed block's W x: binary spikes as the sum of the spiking columns, graded
    inputs by the product — the integers of ``W @ x`` in both cases, shifted to the
    block's units."""
    from types import SimpleNamespace

    from lava_local.processes.ttl_block import PyTTLBlockFixed

    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (30, 50))
    block = SimpleNamespace(_ints=[w], _P=6, _precs=[4])
    for x in ((rng.random(50) < 0.1).astype(np.int64), np.zeros(50, np.int64),
              np.ones(50, np.int64), rng.integers(0, 4, 50)):
        got = PyTTLBlockFixed._current(block, 0, x)
        np.testing.assert_array_equal(got, (w @ x) << 2)
        assert got.dtype == np.int64
