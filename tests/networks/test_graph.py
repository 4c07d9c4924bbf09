"""Trained networks exported and run as Lava graphs."""

import numpy as np
import pytest
import torch
from graph_reference import online_batched, quantised, simulate_graph, update_cosines

from lava_local.data import load_dataset
from lava_local.networks import export_run, load_exported, save_exported
from lava_local.networks.graph import BackendError, check_backend, run_network
from lava_local.rules import STLLRParams
from lava_local.rules.stllr import STLLRTrainer
from lava_local.torch.train import TrainConfig, build, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(epochs=2, n_steps=10, hidden=(48, 32), seed=4,
                      params=STLLRParams(signal="dfa"))
    train(cfg, out, progress=False)
    net = load_exported(export_run(out))
    test = load_dataset("digits", "test", n_steps=10, seed=4)
    ck = torch.load(out / "checkpoint.pt")
    return out, cfg, net, test, ck


def torch_predictions(cfg, ck, test, n, t_l):
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    x = torch.tensor(test.spikes[:n]).permute(1, 0, 2).float()
    return model.predict_logits(x, t_l).argmax(-1).numpy()


def test_export_round_trip(trained, tmp_path):
    out, cfg, net, _, ck = trained
    assert [w.shape for w in net.weights] == [(48, 64), (32, 48), (10, 32)]
    np.testing.assert_allclose(net.weights[0], ck["model"]["hidden.0"].numpy(), rtol=1e-7)
    assert (net.gamma, net.v_th, net.kappa, net.n_steps) == (cfg.gamma, cfg.v_th, cfg.kappa, 10)
    assert net.rule == "stllr"
    assert net.params == cfg.params.to_flat()
    assert net.params["signal"] == "dfa" and net.params["post_form"] == "paper"
    assert len(net.feedback) == 2
    again = load_exported(save_exported(net, tmp_path / "copy.h5"))
    for a, b in zip(again.weights, net.weights):
        np.testing.assert_array_equal(a, b)
    assert (again.rule, again.params) == (net.rule, net.params)
    # the file uses netx's layout
    import h5py
    with h5py.File(out / "net.h5") as f:
        assert f["layer/0/type"][()] == b"dense"
        assert f["layer/0/weight"].shape == (48, 64)


@pytest.mark.parametrize("backend", ["sim-float", "sim-fixed"])
def test_lava_graph_reproduces_batched_predictions(trained, backend):
    _, cfg, net, test, ck = trained
    n = 40
    r = run_network(net, test, backend=backend, n_samples=n)
    want = torch_predictions(cfg, ck, test, n, net.window_start)
    agree = (r.predictions == want).mean()
    # float: the same arithmetic; fixed: 8-bit weights, 24-bit membranes (measured
    # loss on the full test split is in benchmarks/README.md)
    assert agree >= (0.99 if backend == "sim-float" else 0.9), (agree, r.predictions, want)


def test_lava_float_learning_graph_equals_functional_reference(trained):
    _, _, net, test, _ = trained
    n, eta = 3, 2 ** -5
    r = run_network(net, test, backend="sim-float", n_samples=n, learn="stllr-dfa", eta=eta)
    preds, w = simulate_graph(net, test, n, eta, net.feedback)
    np.testing.assert_array_equal(r.predictions, preds)
    for a, b, w0 in zip(r.weights, w, net.weights):
        assert np.abs(b - w0).max() > 1e-4
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("backend, floor", [("sim-float", 0.7), ("sim-fixed", 0.4)])
def test_online_learning_moves_weights_like_batched_stllr_dfa(trained, backend, floor):
    """Same samples, same start, same feedback matrices: the Lava update and the batched
    S-TLLR-DFA update (per-step SGD) point the same way in every layer (cosine
    similarity). They are not equal: on the graph the learning signal reaches hidden
    layer l L + 2 - l steps late and the non-causal term pairs with the previous step's
    signal; the fixed engine adds 7-bit quantisation and stochastic rounding."""
    _, cfg, net, test, ck = trained
    n, eta = 8, 2 ** -5
    r = run_network(net, test, backend=backend, n_samples=n, learn="stllr-dfa", eta=eta)
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    model.double()
    tr = STLLRTrainer(model, torch.optim.SGD(model.parameters(), lr=eta),
                      STLLRParams(signal="dfa", online=True, lam_pre=cfg.params.lam_pre,
                                  lam_post=cfg.params.lam_post,
                                  alpha_pre=cfg.params.alpha_pre,
                                  alpha_post=cfg.params.alpha_post))
    tr.feedback = [b.double() for b in ck["trainer"]["feedback"]]
    online_batched(tr, test, n)
    batched = [w.detach().numpy() for w in model.weights]
    for l, cos in enumerate(update_cosines(r.weights, batched, net.weights)):
        assert cos >= floor, (l, cos)


def test_loihi2_without_the_extension_is_a_clear_error(trained):
    _, _, net, test, _ = trained
    with pytest.raises(BackendError, match="lava-loihi"):
        run_network(net, test, backend="loihi2", n_samples=1)
    with pytest.raises(BackendError, match="sim-float"):
        check_backend("gpu")


def test_wrong_T_is_a_clear_error(trained):
    _, _, net, _, _ = trained
    other = load_dataset("digits", "test", n_steps=12)
    with pytest.raises(ValueError, match="T=10"):
        run_network(net, other, n_samples=1)


def test_graded_inputs_reach_the_graph_as_values(tmp_path):
    """Speech Commands features are input currents in [0, 1], not spikes: the float graph
    reproduces the batched network exactly, the fixed graph (8-bit inputs) nearly; with
    learning the graded first layer stays as it is and the layers after it learn."""
    from lava_local.data.fixtures import write_speech_commands
    from lava_local.data.speech import SpeechCommandsFeatures

    t = np.arange(16_000) / 16_000
    rng = np.random.default_rng(2)
    clips = [(w, f"s{k}", 0.3 * np.sin(2 * np.pi * f * (1 + 0.2 * rng.random()) * t))
             for k in range(12) for w, f in (("yes", 300), ("no", 1200), ("up", 2500))]
    write_speech_commands(tmp_path, clips, test=list(range(0, 36, 2)))
    out = tmp_path / "run"
    cfg = TrainConfig(dataset="gsc", root=str(tmp_path), n_steps=12, hidden=(24,),
                      epochs=1, seed=1, rule="bptt")
    train(cfg, out, progress=False)
    net = load_exported(export_run(out))
    test = SpeechCommandsFeatures("test", tmp_path, n_steps=12)
    assert test.graded and 0 < test.frames(0).mean() < 1
    ck = torch.load(out / "checkpoint.pt")
    model, _, _ = build(cfg, 120, 3, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    x = torch.tensor(np.stack([test.frames(i) for i in range(len(test))])).permute(1, 0, 2)
    want = model.predict_logits(x, net.window_start)
    r = run_network(net, test, backend="sim-float")
    np.testing.assert_array_equal(r.predictions, want.argmax(-1).numpy())
    # binarised inputs (what a spike-only first Dense would see) change the answers
    binar = model.predict_logits((x > 0).float(), net.window_start).argmax(-1).numpy()
    assert (binar != r.predictions).any()
    fx = run_network(net, test, backend="sim-fixed")
    assert (fx.predictions == r.predictions).mean() >= 0.8
    # learning on graded inputs: the first layer (graded synapses) stays, the rest learns
    for backend in ("sim-float", "sim-fixed"):
        lr = run_network(net, test, backend=backend, learn="tp", n_samples=4, eta=2 ** -4)
        start = net.weights if backend == "sim-float" else quantised(net.weights)
        assert lr.learning["frozen"] == ["dense0 (graded inputs)"]
        np.testing.assert_array_equal(lr.weights[0], net.weights[0])   # kept as exported
        assert np.abs(lr.weights[1] - start[1]).max() > 0


def test_exports_of_format_1_still_load(trained, tmp_path):
    """Before the rule registry net.h5 said rule='stllr' for every run and kept S-TLLR's
    options directly in learning/; such a file loads with those options."""
    import h5py

    _, _, net, _, _ = trained
    path = save_exported(net, tmp_path / "old.h5")
    with h5py.File(path, "r+") as f:
        lg = f["learning"]
        del lg["params"], lg["formatVersion"]
        for k in ("lam_pre", "lam_post", "alpha_pre", "alpha_post"):
            lg[k] = net.params[k]
        lg["signal"], lg["post_form"] = net.params["signal"], net.params["post_form"]
    old = load_exported(path)
    assert old.rule == "stllr" and old.params == {
        k: net.params[k] for k in ("lam_pre", "lam_post", "alpha_pre", "alpha_post",
                                   "signal", "post_form")}
    with h5py.File(path, "r+") as f:
        f["learning"]["formatVersion"] = 7
    with pytest.raises(ValueError, match="format 7"):
        load_exported(path)


@pytest.mark.parametrize("learn", ["stllr-dfa", "tess", "tp"])
@pytest.mark.parametrize("backend", ["sim-float", "sim-fixed"])
def test_fast_learning_models_equal_lavas_stock_models_bit_for_bit(trained, backend, learn):
    """lava-local's learning graph — every learning hidden layer one process
    (LearningLIFLayer: neuron and synapses in one step), the readout's LearningDense with
    the one-step engine path, the in-place appliers, learning in the spiking phase —
    against the two-process graph run by Lava's own LearningDense models (traces not
    reset, which the stock models cannot do): the same weights, bit for bit, and the
    same predictions, for every rule's product series (S-TLLR; TP with its tags)."""
    _fast_equals_stock(trained, backend, learn)


@pytest.mark.parametrize("backend, learn", [("sim-float", "stllr-dfa"),
                                            ("sim-float", "tp"), ("sim-fixed", "tp")])
def test_compiled_kernels_equal_lavas_stock_models_bit_for_bit(trained, backend, learn,
                                                                monkeypatch, tmp_path):
    """The same with the compiled kernels on every learning matrix (by default only on
    large ones): every step's update in one pass, in place (TP's tags in the order
    weights, d, t; bit-approximate: with the saturations and stochastic rounding)."""
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "all")
    monkeypatch.setenv("LAVA_LOCAL_CACHE", str(tmp_path))
    _fast_equals_stock(trained, backend, learn)
    assert list((tmp_path / "kernels").glob("k_*.py")), "no kernel was compiled"


def _fast_equals_stock(trained, backend, learn):
    from lava_local.lava_runtime import ensure_lava_runtime
    from lava_local.networks.graph import build_graph

    ensure_lava_runtime()
    from lava_local.processes import LearningLIFLayer

    _, _, net, test, _ = trained
    runs = []
    for stock in (False, True):
        graph = build_graph(net, test, backend, learn=learn, n_samples=3, eta=2 ** -5,
                            reset_traces=False, fuse_layers=not stock)
        fused = [isinstance(d, LearningLIFLayer) for d in graph.denses]
        assert fused == [not stock] * net.n_hidden + [False]
        graph.stock_models = stock
        runs.append(graph.run())
    fast, lava = runs
    np.testing.assert_array_equal(fast.predictions, lava.predictions)
    start = net.weights if backend == "sim-float" else quantised(net.weights)
    for a, b in zip(fast.weights, lava.weights):
        np.testing.assert_array_equal(a, b)
    assert all(np.abs(a - w0).max() > 0 for a, w0 in zip(fast.weights, start))
