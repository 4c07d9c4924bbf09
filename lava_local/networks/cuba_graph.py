"""The Lava graph of a SOLSA net (``ExportedNet.neuron == "cuba"``).

Graph (one long run, samples streamed by a Lava dataloader, state reset per sample)::

    SpikeDataloader ─> SynapticFilter_0 ─psp─> Dense_0 ─> SOLSANeuron_0 ─> SynapticFilter_1
        ─psp─> Dense_1 ─> ... ─> SOLSANeuron_{L-1} (output: spike counts, predictions)
                                        ^ label (ground_truth)

A filter passes its psp on in the step it receives the spikes; every Dense delays by one
step, so layer l's filter sees a sample's first step at graph step 2 + l and its neurons
at 3 + l. With learning (``--learn solsa``), every Dense is a ``LearningDense`` running
:class:`~lava_local.rules.solsa.OnChipSOLSA` on the graded psp, every neuron writes its
third factors into it, and the learning signal flows back::

    SOLSANeuron_l ─δ─> Dense(W_lᵀ, fixed) ─b─> SynapticFilter_l (α/β by SGD) ─b⊙β─>
        SOLSANeuron_{l-1} (δ = b β ⊙ ε of the step it belongs to)

so the signal of the output's step t reaches hidden layer l 3(L-1-l) steps after that
layer's step t: the output layer pairs δ with e[t] exactly, hidden layers pair the
arriving δ (which holds the right ε) with the eligibility of the arrival step — the
same delayed pairing as S-TLLR-DFA and TESS on the graph. The back projection uses the
weights the graph was built with (a fixed copy: a chip cannot share a learning
synapse's weights with a second connection).

Fixed point: psp as 8-bit payloads in units 2^-6 (:data:`~lava_local.rules.solsa
.PSP_BITS`), so each Dense has ``weight_exp = P - p_l - 6``; see the models of
:mod:`lava_local.processes.solsa`.
"""

from __future__ import annotations

import numpy as np

from ..fixed import IN_BITS, quantize_input, quantize_weights, weight_precision
from .export import ExportedNet
from .graph import GraphContext, LavaGraph, SpikeAdapter


def hidden_lags(n_layers: int) -> list[int]:
    """Steps between layer l's step t and the arrival of that step's learning signal."""
    return [3 * (n_layers - 1 - l) for l in range(n_layers)]


def build_cuba_graph(net: ExportedNet, dataset, backend: str, learn: str, parts, eta: float,
                     n_samples: int | None, rng_seed: int, learning_engine: bool,
                     reset_traces: bool) -> LavaGraph:
    """The graph of a SOLSA net (see module doc); arguments as
    :func:`lava_local.networks.graph.build_graph` (``parts``: the learning mode's bound
    parts, None for inference)."""
    from lava.magma.core.learning.constants import GradedSpikeCfg
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.io.dataloader import SpikeDataloader

    from ..processes.solsa import SOLSANeuron, SynapticFilter
    from ..rules.solsa import PSP_BITS, SOLSAParams, delta_unit

    fixed = backend != "sim-float"
    learning = parts is not None
    engine = learning and learning_engine
    if backend == "loihi2" and learning and reset_traces:
        raise ValueError("SOLSA learning on loihi2 needs the per-sample trace reset of the "
                         "simulation models; run it with --backend sim-fixed")
    params = SOLSAParams.from_flat(net.params, strict=False)
    graded = bool(getattr(dataset, "graded", False))
    data = SpikeAdapter(dataset, n_samples, quantize_input if graded and fixed else None)
    n = len(data)
    n_layers, n_steps = len(net.weights), net.n_steps
    lags = hidden_lags(n_layers)
    interval = n_steps + n_layers + 2 + ((lags[0] + 3) if learning else 0)
    if fixed:
        precs = [weight_precision(w) for w in net.weights]
        big_p = max(precs)
        w_back = [quantize_weights(w, p) for w, p in zip(net.weights, precs)]
        w_exp = [big_p - p - PSP_BITS for p in precs]
        bits = 8
    else:
        precs, big_p = [0] * n_layers, 7
        w_back = [np.asarray(w, dtype=float) for w in net.weights]
        w_exp, bits = [0] * n_layers, 24
    du = delta_unit(net.layer_sizes[-1], params.sigma)
    ctx = GraphContext(net, backend, interval, precs, big_p, eta)
    ctx.loader = SpikeDataloader(dataset=data, interval=interval, offset=0)
    ctx.learns = [engine] * (n_layers - 1)          # every SOLSA layer learns on the graph
    schedule = parts.schedule if learning else None
    filters, neurons, denses = [], [], []
    src = ctx.loader.s_out
    for l, w in enumerate(w_back):
        n_out, n_in = w.shape
        alpha, beta = net.filters[l]
        filt = SynapticFilter(shape=(n_in,), alpha=alpha, beta=beta, interval=interval,
                              offset=2 + l, eta=eta if learning else 0.0, lag=lags[l] + 2,
                              fixed=fixed, delta_unit=du,
                              in_bits=IN_BITS if graded and l == 0 else 0,
                              name=f"filter{l}")
        rule = parts.layer_rule(ctx, l) if learning else None
        if engine:
            reset = {"trace_reset_interval": interval if reset_traces else 0,
                     "trace_reset_offset": 2 + l}
            dense = LearningDense(weights=w.copy(), weight_exp=w_exp[l],
                                  num_message_bits=bits, name=f"dense{l}",
                                  learning_rule=rule.learning_rule(rng_seed + l),
                                  graded_spike_cfg=GradedSpikeCfg.OVERWRITE, **reset)
        else:
            dense = Dense(weights=w.copy(), weight_exp=w_exp[l], num_message_bits=bits,
                          name=f"dense{l}")
        neuron = SOLSANeuron(shape=(n_out,), lam=net.gamma, theta=net.v_th,
                             sigma=params.sigma, interval=interval, offset=3 + l,
                             window_start=net.window_start, n_steps=n_steps,
                             output=l == n_layers - 1, rule=rule, lag=lags[l],
                             schedule=schedule, early_stop=params.early_stop,
                             confidence=params.confidence, n_samples=n, precision=big_p,
                             delta_unit=du, name=f"neuron{l}")
        src.connect(filt.s_in)
        filt.psp_out.connect(dense.s_in)
        dense.a_out.connect(neuron.a_in)
        if engine:
            for a, b in ((neuron.s_out_bap, dense.s_in_bap), (neuron.s_out_y1, dense.s_in_y1),
                         (neuron.s_out_y2, dense.s_in_y2), (neuron.s_out_y3, dense.s_in_y3)):
                a.connect(b)
        if learning:
            back = ctx.signal_dense(np.asarray(net.weights[l], dtype=float).T, f"back{l}")
            neuron.delta_out.connect(back.s_in)
            back.a_out.connect(filt.back_in)
            if l > 0:
                filt.back_out.connect(neurons[l - 1].a_third_factor_in)
        src = neuron.s_out
        filters.append(filt)
        neurons.append(neuron)
        denses.append(dense)
    ctx.loader.ground_truth.connect(neurons[-1].label_in)
    ctx.neurons, ctx.readout = neurons, neurons[-1]
    record = ({**parts.record(), "eta": eta, "reset_traces": reset_traces, "idle_steps": 0,
               "frozen": []} if learning else None)
    return LavaGraph(ctx, denses, record, n, np.asarray(dataset.labels[:n]), engine,
                     filters=filters if learning else None)
