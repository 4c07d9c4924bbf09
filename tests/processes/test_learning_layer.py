"""The fused learning processes (LearningLIFLayer, LearningReadout): their checks, and the
graph shapes that use them. That they give the same numbers as the separate processes
is tested on whole learning graphs against Lava's stock models
(tests/networks/test_graph.py::test_fast_learning_models_equal_lavas_stock_models...)."""

import numpy as np
import pytest

from lava_local.lava_runtime import ensure_lava_runtime

ensure_lava_runtime()

from lava.magma.core.learning.learning_rule import Loihi3FLearningRule  # noqa: E402

from lava_local.processes import LearningLIFLayer, LearningReadout, STLLRNeuron  # noqa: E402
from lava_local.rules.stllr_loihi import OnChipSTLLR  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from lava_local.data import load_dataset
    from lava_local.networks import export_run, load_exported
    from lava_local.rules import STLLRParams
    from lava_local.torch.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(epochs=1, n_steps=6, hidden=(12, 8), seed=1,
                      params=STLLRParams(signal="dfa")), out, progress=False)
    return None, None, load_exported(export_run(out)), load_dataset("digits", "test",
                                                                     n_steps=6), None


def _layer(**kw):
    rule = OnChipSTLLR(eta=2 ** -7, mode="float")
    args = dict(weights=np.zeros((4, 3)), learning_rule=rule.learning_rule(0), gamma=0.5,
                v_th=0.8, rule=rule)
    return LearningLIFLayer(**{**args, **kw})


def test_layer_checks_its_parameters():
    layer = _layer(lam_post=0.3, signal_weights=np.ones((4, 2)))
    assert layer.signal_in.shape == (2,) and layer.s_out.shape == (4,)
    assert layer.proc_params["lam_post"] == 0.3
    assert _layer().signal_in.shape == (1,)          # unused without signal weights
    with pytest.raises(TypeError, match="unknown parameters"):
        _layer(lam_pots=0.3)
    with pytest.raises(ValueError, match="signal_weights must be"):
        _layer(signal_weights=np.ones((3, 2)))
    with pytest.raises(ValueError, match="one learning-signal path"):
        _layer(signal_weights=np.ones((4, 2)), local_error={})
    with pytest.raises(ValueError, match="one learning-signal path"):
        _layer(local_error={}, prototype_unit={})
    unit = dict(prototypes=np.zeros((6, 10, 4)), targets=np.zeros((6, 10, 10)), beta=0.9,
                interval=8, offset=1, window_start=2, scale=0.25)
    assert _layer(prototype_unit=unit).proc_params["prototype_unit"]["beta"] == 0.9
    with pytest.raises(ValueError, match="prototype_unit lacks"):
        _layer(prototype_unit={k: v for k, v in unit.items() if k != "beta"})
    with pytest.raises(ValueError, match="do not fit a layer of 4"):
        _layer(prototype_unit={**unit, "prototypes": np.zeros((6, 10, 5))})
    with pytest.raises(ValueError, match="local_error lacks"):
        _layer(local_error={"fwd_weights": np.ones((2, 4))})
    with pytest.raises(ValueError, match="psi_lag"):
        _layer(psi_lag=2)
    slow = Loihi3FLearningRule(dw="x0*y1", x1_impulse=16, x1_tau=10, t_epoch=2)
    with pytest.raises(ValueError, match="t_epoch = 1"):
        _layer(learning_rule=slow)
    with pytest.raises(ValueError, match="t_epoch = 1"):
        LearningReadout(weights=np.zeros((2, 4)), learning_rule=slow, rule=None, kappa=0.9,
                        interval=10, offset=3, window_start=0, window_end=5, n_samples=2)


@pytest.mark.parametrize("backend", ["sim-float", "sim-fixed"])
def test_learning_graph_fuses_each_learning_layer(trained, backend):
    """Simulated learning graphs build one process per learning layer and the readout
    (the DFA feedback built into the layers); ``fuse_layers=False`` builds the separate
    processes of the Loihi 2 graph; inference graphs are never fused; and a signal
    projection given other weights than the layer was built with is refused."""
    from lava_local.networks.graph import build_graph

    _, _, net, test, _ = trained
    fused = build_graph(net, test, backend, learn="stllr-dfa", n_samples=1)
    kinds = [type(d).__name__ for d in fused.denses]
    assert kinds == ["LearningLIFLayer"] * net.n_hidden + ["LearningReadout"]
    assert fused.ctx.readout is fused.ctx.error is fused.denses[-1]
    assert all(d.proc_params["signal_weights"] is not None for d in fused.denses[:-1])
    apart = build_graph(net, test, backend, learn="stllr-dfa", n_samples=1,
                        fuse_layers=False)
    assert [type(d).__name__ for d in apart.denses] == ["LearningDense"] * (net.n_hidden + 1)
    assert all(isinstance(n, STLLRNeuron) for n in apart.ctx.neurons)
    inference = build_graph(net, test, backend, n_samples=1)
    assert [type(d).__name__ for d in inference.denses] == ["Dense"] * (net.n_hidden + 1)
    ctx = fused.ctx
    with pytest.raises(ValueError, match="other signal weights"):
        ctx.send_signal(ctx.error.err_out, 0, np.ones((net.layer_sizes[1], 10)), "x")


def test_tess_graph_builds_each_layers_error_path_in(trained):
    """TESS's per-layer path (projection, error unit, back projection) is inside each
    fused layer, which takes the label; the separate graph has the three processes per
    layer (their numbers are equal: the stock-models test)."""
    from lava_local.networks.graph import build_graph

    _, _, net, test, _ = trained
    fused = build_graph(net, test, "sim-fixed", learn="tess", n_samples=1)
    for layer in fused.denses[:-1]:
        le = layer.proc_params["local_error"]
        assert le["fwd_weights"].shape == (10, layer.weights.shape[0])
        assert le["back_weights"].shape == (layer.weights.shape[0], 10)
        assert le["unit"]["f"] == "identity" and len(layer.label_in.in_connections) == 1
    apart = build_graph(net, test, "sim-fixed", learn="tess", n_samples=1, fuse_layers=False)
    names = {p.name for n in apart.ctx.neurons for p in
             (c.process for c in n.s_out.out_connections)}
    assert {f"tess_proj{l}" for l in range(net.n_hidden)} <= names


def test_tp_graph_builds_each_layers_prototype_unit_in(trained):
    """TP's prototype unit is inside each fused layer, which takes the label; the
    separate graph has a TPUnit per layer (their numbers are equal: the stock-models
    test)."""
    from lava_local.networks.graph import build_graph
    from lava_local.processes import TPUnit

    _, _, net, test, _ = trained
    fused = build_graph(net, test, "sim-float", learn="tp", n_samples=1)
    for l, layer in enumerate(fused.denses[:-1]):
        pu = layer.proc_params["prototype_unit"]
        assert pu["prototypes"].shape[2] == layer.weights.shape[0] == net.layer_sizes[l + 1]
        assert len(layer.label_in.in_connections) == 1
        assert not any(isinstance(c.process, TPUnit)
                       for c in layer.s_out.out_connections)
    apart = build_graph(net, test, "sim-float", learn="tp", n_samples=1, fuse_layers=False)
    units = [c.process for n in apart.ctx.neurons for c in n.s_out.out_connections
             if isinstance(c.process, TPUnit)]
    assert [u.name for u in units] == [f"tp_unit{l}" for l in range(net.n_hidden)]
