"""Build an exported network as a Lava process graph, and run it.

Graph (one long run, samples streamed by a Lava dataloader, state reset per sample)::

    SpikeDataloader ─s_out─> Dense_1 ─> STLLRNeuron_1 ─> Dense_2 ─> ... ─> Dense_out ─> LeakyReadout
          │                                                                              │ o
          └──────────────────────── ground_truth ──────────────────────────> ErrorUnit <─┘
                                       (learning only)                           │ err
                                                                 readout synapses' third factor

With learning, every Dense is a ``LearningDense`` running a product-series rule, and the
learning signal of each hidden layer comes from the on-graph parts of a rule in the
registry (:class:`lava_local.rules.GraphLearning`): S-TLLR-DFA sends the readout's
error through fixed random Dense matrices, TESS makes a local error per layer (``lava-local
rules`` lists them). The readout always learns with its exact local gradient through
the shared error unit. Every Dense delays by one step, so a sample reaches layer l
(1-based) ``l`` steps after the dataloader sends it; each Process resets at its own
offset. Samples are spaced ``T + L + 2`` steps apart so the readout and the (delayed)
learning signals of one sample end before the next one starts.

:func:`build_graph` makes the processes (a :class:`LavaGraph`), :meth:`LavaGraph.run`
runs them and always stops them; :func:`run_network` does both.

Backends: ``sim-float`` (``Loihi2SimCfg``, floating_pt models), ``sim-fixed``
(``Loihi2SimCfg``, fixed_pt models: integer weights, membranes and the bit-approximate
learning engine) and ``loihi2`` (``Loihi2HwCfg``; needs Intel's Loihi extension).

Graded inputs (data sets with ``graded = True``, e.g. Speech Commands log-mels): the first
Dense takes graded messages (float; 8-bit payloads in fixed point, see
:mod:`lava_local.fixed`). It does not learn: the rules' eligibilities on the learning
engine are built from pre-synaptic *spikes* (x0, the x traces' impulses), and Lava's one
graded form (``GradedSpikeCfg.OVERWRITE``: x1 := payload/2, decayed once before the
learning phase and carried over while silent) cannot give the step's value both exactly
and with 7-bit resolution. With learning on graded data the layers from the second on
and the readout learn (the run's record lists the frozen layer).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import rules
from ..fixed import IN_BITS, W_WEIGHT_MAX, quantize_input, quantize_weights, weight_precision
from .conv_layers import dense_from_map, dense_to_torch, frames_to_lava, lava_conv, lava_shape
from .export import ExportedNet
from .guard import LavaGuard

BACKENDS = ("sim-float", "sim-fixed", "loihi2")
#: ``run --learn`` values: none, or a rule's on-graph learning mode.
LEARN_MODES = ("none", *rules.graph_modes())


class BackendError(RuntimeError):
    """The requested backend cannot run here."""


def loihi_available() -> bool:
    """True when Intel's Loihi extension (NcProcessModels, lava-loihi) is importable."""
    try:
        return importlib.util.find_spec("lava.magma.core.model.nc") is not None
    except ModuleNotFoundError:
        return False


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "loihi2" and not loihi_available():
        raise BackendError(
            "the loihi2 backend needs Intel's Loihi extension for Lava (lava-loihi, "
            "distributed to INRC members), which is not installed here; install it on an "
            "INRC machine with Loihi 2 access, or use --backend sim-fixed, which runs the "
            "same graph with Loihi 2 integer arithmetic on the CPU")


class SpikeAdapter:
    """A time-first :class:`~lava_local.data.SpikeDataset` as Lava's dataloaders want it:
    ``dataset[i] -> (spikes (features, T), label)`` (time last)."""

    def __init__(self, ds, limit: int | None = None, quantize=None, layout=None):
        self.ds = ds
        self.n = len(ds) if limit is None else min(limit, len(ds))
        self.quantize = quantize
        self.layout = layout      # (C, H, W): frames reordered for Lava's (X, Y, C) maps

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        x, y = self.ds[i]
        if self.quantize is not None:
            x = self.quantize(x)
        if self.layout is not None:
            x = frames_to_lava(x, self.layout)
        return np.ascontiguousarray(x.T), y


@dataclass
class GraphContext:
    """What a rule's on-graph parts need to attach their learning signal: the net, the
    backend's units, the timing and the processes built so far."""

    net: ExportedNet
    backend: str
    interval: int
    precs: list[int]
    big_p: int
    eta: float
    loader: Any = None
    neurons: list = field(default_factory=list)
    readout: Any = None
    error: Any = None            # the readout's ErrorUnit (learning graphs)
    rec_denses: list = field(default_factory=list)   # recurrent V^l (recurrent nets)
    learns: list = field(default_factory=list)   # per hidden layer: do its synapses learn

    @property
    def fixed(self) -> bool:
        return self.backend != "sim-float"

    @property
    def mode(self) -> str:
        """The learning engine's mode: "fixed" (bit-approximate) or "float"."""
        return "fixed" if self.fixed else "float"

    @property
    def n_steps(self) -> int:
        return self.net.n_steps

    @property
    def window_start(self) -> int:
        return self.net.window_start

    @property
    def n_win(self) -> int:
        return self.net.n_steps - self.net.window_start

    def layer_offset(self, l: int) -> int:
        """Step at which the first sample reaches hidden layer l (0-based)."""
        return 2 + l + 1

    @property
    def readout_offset(self) -> int:
        return 2 + self.net.n_hidden + 1

    def signal_form(self, weights: np.ndarray) -> dict:
        """A fixed projection of graded signals through real ``weights`` in the
        backend's units (float: as they are; fixed: 8-bit mantissas with
        ``weight_exp = -p``, so the output stays in the input's units)."""
        if self.fixed:
            pb = weight_precision(weights)
            return {"weights": quantize_weights(weights, pb), "weight_exp": -pb,
                    "num_message_bits": 8}
        return {"weights": np.asarray(weights, dtype=float), "weight_exp": 0,
                "num_message_bits": 24}

    def signal_dense(self, weights: np.ndarray, name: str):
        """A Dense carrying graded signals through real ``weights``
        (:meth:`signal_form`)."""
        from lava.proc.dense.process import Dense

        form = self.signal_form(weights)
        if not self.fixed:
            form.pop("weight_exp")
        return Dense(**form, name=name)

    def send_signal(self, src, l: int, weights: np.ndarray, name: str) -> None:
        """Project the graded signals of port ``src`` through ``weights`` into hidden
        layer l's learning signal: into its own projection when the layer was built
        with these weights (a :class:`~lava_local.processes.LearningLIFLayer` with
        ``signal_weights``), else through a :meth:`signal_dense` into its
        ``a_third_factor_in``."""
        neuron = self.neurons[l]
        if getattr(neuron, "proc_params", {}).get("signal_weights") is not None:
            if not np.array_equal(neuron.proc_params["signal_weights"],
                                  self.signal_form(weights)["weights"]):
                raise ValueError(f"layer {l} was built with other signal weights")
            src.connect(neuron.signal_in)
            return
        dense = self.signal_dense(weights, name)
        src.connect(dense.s_in)
        dense.a_out.connect(neuron.a_third_factor_in)


@dataclass
class LavaRun:
    """Result of :func:`run_network`."""

    predictions: np.ndarray
    labels: np.ndarray
    n_steps_run: int
    seconds: float                    # running the steps (compile and start-up excluded)
    # all weights after online learning (real units); a layer that does not learn on the
    # graph (graded inputs, conv, behind a pooling) comes back exactly as exported, not as
    # the fixed backend's quantised copy of it
    weights: list[np.ndarray] | None
    learning: dict | None = None      # what learned on the graph (mode, options, params)
    filters: list | None = None       # cuba nets: (α, β) per layer after online learning
    extra: dict = field(default_factory=dict)   # other learned ExportedNet fields
    startup_seconds: float = 0.0      # Lava's compiler and process start-up

    @property
    def learned(self) -> dict:
        """The learned parts of the net, as :class:`ExportedNet` fields (``replace(net,
        **run.learned)`` is the learned net)."""
        out = {"weights": self.weights} if self.weights is not None else {}
        if self.filters is not None:
            out["filters"] = self.filters
        return {**out, **self.extra}

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def steps_per_second(self) -> float:
        return self.n_steps_run / self.seconds


class LavaGraph:
    """The processes of a built graph; :meth:`run` streams the samples once."""

    def __init__(self, ctx: GraphContext, denses: list, learning: dict | None,
                 n_samples: int, labels: np.ndarray, learns: bool, filters=None,
                 read_learned=None):
        self.ctx, self.denses, self.learning = ctx, denses, learning
        self.n_samples, self.labels, self.learns = n_samples, labels, learns
        self.filters = filters     # cuba nets: the SynapticFilter of every layer
        #: a graph of a mode's own shape: () -> ExportedNet fields it learned
        self.read_learned = read_learned
        #: run LearningDense with Lava's own ProcessModels instead of lava-local's fast,
        #: bit-identical ones (benchmarks only: the stock models do not reset the pre
        #: traces between samples)
        self.stock_models = False

    @property
    def n_steps_run(self) -> int:
        return self.n_samples * self.ctx.interval + 2

    def run(self, progress: bool = False) -> LavaRun:
        """Run every sample (blocking runs of 10 samples when ``progress``), read the
        predictions and, when learning, the weights; the processes are always stopped
        (a graph runs once)."""
        from lava.magma.core.run_conditions import RunSteps
        from tqdm.auto import tqdm

        ctx, readout = self.ctx, self.ctx.readout
        run_cfg = _run_cfg(ctx.backend, self.stock_models)
        n, n_run, interval = self.n_samples, self.n_steps_run, ctx.interval
        chunk = 10 * interval if progress else n_run
        with LavaGuard() as guard:
            t0 = time.perf_counter()
            guard.start(lambda: readout.create_runtime(run_cfg=run_cfg),   # compile, fork
                        readout.stop)
            startup = time.perf_counter() - t0
            t0 = time.perf_counter()
            with tqdm(total=n, desc=f"lava {ctx.backend}", unit="sample",
                      disable=not progress) as bar:
                done = 0
                while done < n_run:
                    k = min(chunk, n_run - done)
                    readout.run(condition=RunSteps(num_steps=k), run_cfg=run_cfg)
                    done += k
                    bar.update(min(n, done // interval) - bar.n)
            seconds = time.perf_counter() - t0
            preds = np.asarray(readout.predictions.get(), dtype=np.int64)
            weights = filters = extra = None
            if self.learns and self.read_learned is not None:
                extra = self.read_learned()
                weights = extra.pop("weights")
            elif self.learns:
                weights = []
                for l, (d, ly) in enumerate(zip(self.denses, graph_layers(ctx.net))):
                    if not (ly["learnable"] and (l == len(self.denses) - 1
                                                 or ctx.learns[l])):
                        weights.append(ctx.net.weights[l])     # frozen: as exported
                        continue
                    w = np.asarray(d.weights.get(), dtype=float)
                    weights.append(ly["to_torch"](w * 2.0 ** -ctx.precs[l] if ctx.fixed
                                                  else w))
                if ctx.rec_denses:
                    extra = {"recurrent": [
                        np.asarray(d.weights.get(), dtype=float)
                        * (2.0 ** -ctx.precs[l] if ctx.fixed else 1.0)
                        for l, d in enumerate(ctx.rec_denses)]}
                if self.filters is not None:
                    filters = [f.learned_filter() for f in self.filters]
        return LavaRun(predictions=preds, labels=self.labels, n_steps_run=n_run,
                       seconds=seconds, weights=weights, learning=self.learning,
                       filters=filters, extra=extra or {}, startup_seconds=startup)


def idle_steps(decays: list[float], resolution: int = 127) -> int:
    """Idle steps after which traces with these per-step decays have fallen below one
    unit of a ``resolution``-unit trace: what separates samples on Loihi 2, whose
    learning engine cannot reset its traces."""
    worst = max((d for d in decays if 0 < d < 1), default=0.0)
    if worst == 0.0:
        return 0
    return int(np.ceil(np.log(0.5 / resolution) / np.log(worst)))


def build_graph(net: ExportedNet, dataset, backend: str = "sim-float", learn: str = "none",
                n_samples: int | None = None, eta: float | None = None, rng_seed: int = 0,
                learning_engine: bool = True, options: dict | None = None,
                reset_traces: bool = True, fuse_layers: bool = True) -> LavaGraph:
    """The Lava process graph of ``net`` fed by ``dataset``.

    Parameters
    ----------
    net : ExportedNet
    dataset : SpikeDataset
        Time-first samples (T, features) with T = ``net.n_steps``.
    backend : {"sim-float", "sim-fixed", "loihi2"}
    learn : str
        "none" or a rule's on-graph learning mode (:data:`LEARN_MODES`, e.g.
        ``stllr-dfa``, ``tess``): hidden layers keep learning with that rule's signal
        and product-series rule, the readout with its exact local gradient (error ×
        κ-trace of its input), all by SGD steps of ``eta`` on the learning engine
        (default: the mode's ``default_eta``).
    n_samples : int, optional
        First samples of ``dataset`` to run (default all).
    rng_seed : int
        Seed of the learning engines' stochastic rounding and of anything a mode draws.
    learning_engine : bool
        With learning: False builds the whole learning graph (error units, signal
        paths, third factors) but with plain Dense synapses — the baseline that isolates
        the learning engine's cost in benchmarks.
    options : dict, optional
        The learning mode's options by flat key (e.g. ``{"tess_f": "identity"}``).
    reset_traces : bool
        With learning: zero the learning engines' pre traces at each sample's first step
        (simulation), so that samples learn independently; on ``loihi2``, whose engine
        cannot reset them, idle steps separate the samples instead (:func:`idle_steps`).
        False keeps the traces running across samples.
    fuse_layers : bool
        With learning, in simulation: run each learning hidden layer's synapses and
        neurons as one process (:class:`~lava_local.processes.LearningLIFLayer`; not
        for recurrent layers), and the readout's synapses, readout and error unit as
        one (:class:`~lava_local.processes.LearningReadout`): the same numbers bit for
        bit, without the per-step messages between them. False builds them as separate
        processes, as on Loihi 2.
    """
    from ..lava_runtime import ensure_lava_runtime

    ensure_lava_runtime()
    parts, eta = _prepare(net, dataset, backend, learn, eta, rng_seed, options)
    own = parts.build_graph(net, dataset, backend, eta, n_samples, rng_seed) \
        if parts is not None else None
    if own is not None:
        return own
    if net.neuron == "cuba":
        from .cuba_graph import build_cuba_graph

        return build_cuba_graph(net, dataset, backend, learn, parts, eta, n_samples,
                                rng_seed, learning_engine, reset_traces)
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.io.dataloader import SpikeDataloader

    from ..processes import (
        ErrorUnit,
        LeakyReadout,
        LearningLIFLayer,
        LearningReadout,
        STLLRNeuron,
    )
    from ..rules.stllr_loihi import OnChipSTLLR

    fixed = backend != "sim-float"
    learning = learn != "none"
    # graded inputs (real-valued features): a graded first Dense; 8-bit payloads if fixed
    graded = bool(getattr(dataset, "graded", False))
    data = SpikeAdapter(dataset, n_samples, quantize_input if graded and fixed else None,
                        layout=tuple(net.conv["input_shape"]) if net.conv else None)
    n = len(data)
    L, T = net.n_hidden, net.n_steps
    idle = 0
    if learning and reset_traces and backend == "loihi2":
        idle = idle_steps(parts.trace_decays(net))
    interval = T + L + 2 + idle
    resets = learning and reset_traces and backend != "loihi2"
    engine_on = learning and learning_engine

    # the layers as graph connections (conv nets: pooling folded in, Lava layouts)
    layers = graph_layers(net)
    gw = [ly["weight"] for ly in layers]
    # weights in the backend's units; a recurrent layer's W and V share one precision
    # (its neuron scales one third factor for both); Lava's Conv applies no weight
    # exponent, so a conv layer's neurons count in its own units 2^-p
    rec = list(net.recurrent) if net.recurrent else []
    convs = [ly["kind"] == "conv" for ly in layers]
    if fixed:
        precs = [weight_precision(w) for w in gw]
        for l, v in enumerate(rec):
            precs[l] = min(precs[l], weight_precision(v))
        big_p = max(p for p, c in zip(precs, convs) if not c)
        w_back = [conv_ints(w, p) if c else quantize_weights(w, p)
                  for w, p, c in zip(gw, precs, convs)]
        v_back = [quantize_weights(v, precs[l]) for l, v in enumerate(rec)]
        w_exp = [0 if c else big_p - p for p, c in zip(precs, convs)]
    else:
        precs, big_p = [0] * len(gw), 7
        w_back, w_exp = [np.asarray(w, dtype=float) for w in gw], [0] * len(gw)
        v_back = [np.asarray(v, dtype=float) for v in rec]
    neuron_p = [precs[l] if convs[l] else big_p for l in range(L)]

    ctx = GraphContext(net, backend, interval, precs, big_p, eta)
    ctx.loader = SpikeDataloader(dataset=data, interval=interval, offset=0)
    ctx.learns = [engine_on and ly["learnable"] and not (graded and l == 0)
                  for l, ly in enumerate(layers[:-1])]

    def reset_at(offset):   # a synapse's pre spikes of sample 0 arrive at step `offset`
        return {"trace_reset_interval": interval if resets else 0,
                "trace_reset_offset": offset}

    engine = engine_on
    denses = []
    src = ctx.loader.s_out if not net.conv else ctx.loader.s_out.reshape(layers[0]["in_lava"])
    for l in range(L):
        ly = layers[l]
        learns = ctx.learns[l]                        # graded inputs, conv: see module doc
        learns_rec = engine and l < len(rec)          # own spikes: V always can learn
        rule = parts.hidden_rule(ctx, l) if parts is not None and (learns or learns_rec) \
            else None
        fused = (fuse_layers and learns and backend != "loihi2" and l >= len(rec)
                 and ly["kind"] != "conv")
        if ly["kind"] != "conv" and len(ly["in_lava"]) == 3:     # a map into a Dense
            src = src.reshape((int(np.prod(ly["in_lava"])),))
        if fused:
            sw, local = parts.signal_weights(ctx, l), parts.local_error(ctx, l)
            proto = parts.prototype_unit(ctx, l)
            signal = {} if local is None else {"local_error": local}
            if proto is not None:
                signal = {"prototype_unit": proto}
            if sw is not None:
                form = ctx.signal_form(sw)
                signal = {"signal_weights": form["weights"],
                          "signal_exp": form["weight_exp"]}
            layer = LearningLIFLayer(
                weights=w_back[l].copy(), weight_exp=w_exp[l],
                learning_rule=rule.learning_rule(rng_seed + l), name=f"layer{l}",
                **reset_at(ctx.layer_offset(l) - 1),
                gamma=net.gamma, v_th=net.v_th, surrogate=net.surrogate, rule=rule,
                precision=neuron_p[l], delta_unit=parts.delta_unit(ctx, l),
                reset_interval=interval, reset_offset=ctx.layer_offset(l),
                **parts.neuron_options(ctx, l), **signal)
            src.connect(layer.s_in)
            src = layer.s_out
            ctx.neurons.append(layer)
            denses.append(layer)
            continue
        if ly["kind"] == "conv":
            cv = ly["conv"]
            dense = Conv(weight=w_back[l].copy(), input_shape=ly["in_lava"],
                         padding=cv["padding"], stride=cv["stride"], name=f"conv{l}")
        elif learns:
            dense = LearningDense(weights=w_back[l].copy(), weight_exp=w_exp[l],
                                  learning_rule=rule.learning_rule(rng_seed + l),
                                  name=f"dense{l}", **reset_at(ctx.layer_offset(l) - 1))
        elif graded and l == 0:
            dense = Dense(weights=w_back[0].copy(), name="dense0",
                          weight_exp=w_exp[0] - IN_BITS if fixed else 0,
                          num_message_bits=IN_BITS if fixed else 24)
        else:
            dense = Dense(weights=w_back[l].copy(), weight_exp=w_exp[l], name=f"dense{l}")
        neuron = STLLRNeuron(shape=ly["out_lava"], gamma=net.gamma, v_th=net.v_th,
                             surrogate=net.surrogate, rule=rule, precision=neuron_p[l],
                             delta_unit=parts.delta_unit(ctx, l) if parts else 2.0 ** -7,
                             reset_interval=interval, reset_offset=ctx.layer_offset(l),
                             n_active=T if l < len(rec) else 0, name=f"lif{l}",
                             **(parts.neuron_options(ctx, l) if parts else {}))
        src.connect(dense.s_in)
        dense.a_out.connect(neuron.a_in)
        synapses = [dense]
        if l < len(rec):       # V^l y^l[t-1]: the layer's own spikes, one step later
            if learns_rec:
                rdense = LearningDense(weights=v_back[l].copy(), weight_exp=w_exp[l],
                                       learning_rule=rule.learning_rule(rng_seed + 100 + l),
                                       name=f"rec{l}", **reset_at(ctx.layer_offset(l)))
                synapses.append(rdense)
            else:
                rdense = Dense(weights=v_back[l].copy(), weight_exp=w_exp[l], name=f"rec{l}")
            neuron.s_out.connect(rdense.s_in)
            rdense.a_out.connect(neuron.a_in)
            ctx.rec_denses.append(rdense)
        if not learns:
            synapses.remove(dense)
        if synapses and rule is not None:
            for syn in synapses:
                neuron.s_out_bap.connect(syn.s_in_bap)
                neuron.s_out_y1.connect(syn.s_in_y1)
                neuron.s_out_y2.connect(syn.s_in_y2)
                neuron.s_out_y3.connect(syn.s_in_y3)
        src = neuron.s_out
        ctx.neurons.append(neuron)
        denses.append(dense)
    rule_out = None
    out_learns = engine and layers[-1]["learnable"]
    if out_learns:
        # the readout's local gradient: S-TLLR's causal term with Ψ = 1 and the rule's
        # readout trace (λ_pre = κ: the exact gradient of the leaky readout), unless the
        # mode has a readout rule of its own
        rule_out = parts.readout_rule(ctx) or OnChipSTLLR(
            eta=eta, alpha_pre=1.0, alpha_post=0.0, lam_pre=parts.readout_decay(net),
            lam_post=0.0, mode=ctx.mode, weight_precision=precs[-1],
            delta_max=1.0 / ctx.n_win, psi_max=1.0)
    if len(layers[-1]["in_lava"]) == 3:
        src = src.reshape((int(np.prod(layers[-1]["in_lava"])),))
    timing = {"interval": interval, "offset": ctx.readout_offset,
              "window_start": net.window_start, "window_end": T}
    if out_learns and fuse_layers and backend != "loihi2":
        # the readout's synapses, readout and error unit in one process (same numbers)
        out = LearningReadout(
            weights=w_back[-1].copy(), weight_exp=w_exp[-1], name="readout",
            learning_rule=rule_out.learning_rule(rng_seed + L), rule=rule_out,
            kappa=net.kappa, n_samples=n, scale=1.0 / ctx.n_win, precision=big_p,
            **timing, **reset_at(ctx.readout_offset - 1))
        denses.append(out)
        src.connect(out.s_in)
        ctx.loader.ground_truth.connect(out.label_in)
        ctx.readout = ctx.error = out
    else:
        if out_learns:
            dense_out = LearningDense(weights=w_back[-1].copy(), weight_exp=w_exp[-1],
                                      learning_rule=rule_out.learning_rule(rng_seed + L),
                                      name="dense_out", **reset_at(ctx.readout_offset - 1))
        else:
            dense_out = Dense(weights=w_back[-1].copy(), weight_exp=w_exp[-1],
                              name="dense_out")
        denses.append(dense_out)
        src.connect(dense_out.s_in)
        ctx.readout = LeakyReadout(shape=(w_back[-1].shape[0],), kappa=net.kappa,
                                   n_samples=n, precision=big_p, **timing)
        dense_out.a_out.connect(ctx.readout.a_in)
        if learning:
            err = ErrorUnit(shape=(w_back[-1].shape[0],), scale=1.0 / ctx.n_win,
                            precision=big_p, rule=rule_out, **timing)
            ctx.readout.o_out.connect(err.o_in)
            if rule_out is not None:
                for a, b in ((err.s_out_bap, dense_out.s_in_bap),
                             (err.s_out_y1, dense_out.s_in_y1),
                             (err.s_out_y2, dense_out.s_in_y2),
                             (err.s_out_y3, dense_out.s_in_y3)):
                    a.connect(b)
            ctx.loader.ground_truth.connect(err.label_in)
            ctx.error = err
    if learning:
        parts.attach(ctx)
    record = ({**parts.record(), "eta": eta, "reset_traces": reset_traces,
               "idle_steps": idle, "frozen": ["dense0 (graded inputs)"] if graded else []}
              if parts else None)
    return LavaGraph(ctx, denses, record, n, np.asarray(dataset.labels[:n]), engine)


def conv_ints(weight: np.ndarray, p: int) -> np.ndarray:
    """Fixed point: a Lava Conv kernel as 8-bit mantissas at precision p."""
    return np.clip(np.rint(np.asarray(weight) * 2.0 ** p), -W_WEIGHT_MAX,
                   W_WEIGHT_MAX).astype(np.int32)


def graph_layers(net: ExportedNet) -> list[dict]:
    """Every weight layer (hidden layers, then the readout) as its graph connection:
    ``kind`` ("conv" or "fc"), ``weight`` in the graph's form (a Lava Conv kernel, or
    Dense weights in Lava's input order with any pooling folded in,
    :mod:`lava_local.networks.conv_layers`), ``conv`` (kernel size, stride, padding),
    Lava shapes ``in_lava`` and ``out_lava``, whether its synapses can learn on the graph
    (``learnable``: dense layers whose graph weights are the model's weights, up to a
    permutation; a conv kernel is shared and a folded pooling ties weights together)
    and ``to_torch`` (graph weights back to the model's)."""
    ident = lambda w: w  # noqa: E731
    if not net.conv:
        out = [{"kind": "fc", "weight": w, "conv": None, "in_lava": (w.shape[1],),
                "out_lava": (w.shape[0],), "learnable": True, "to_torch": ident}
               for w in net.weights]
        return out
    plan, layers = net.conv["layers"], []
    ops = {p.get("pool_op", "avg") for p in plan} | {net.conv.get("readout_pool_op", "avg")}
    if ops - {"avg"}:
        raise ValueError(f"this conv net pools its spikes by {'/'.join(sorted(ops - {'avg'}))}"
                         " pooling; the Lava graph pools k×k by averaging (a fixed synaptic "
                         "layer) only: train with --pooling avg and a preset without G<k> "
                         "(vgg9, alexnet-snn) to run it in Lava")
    shape = tuple(net.conv["input_shape"])          # the unpooled map feeding layer l
    for l, p in enumerate(plan):
        w, pool = net.weights[l], p["pool"]
        if p["kind"] == "conv":
            cv = lava_conv(w, pool)
            layers.append({"kind": "conv", "weight": cv["weight"], "conv": cv,
                           "in_lava": lava_shape(shape), "out_lava": lava_shape(p["out"]),
                           "learnable": False, "to_torch": ident})
        elif len(shape) == 3:
            layers.append(_dense_after_map(w, shape, pool))
        else:
            layers.append({"kind": "fc", "weight": w, "conv": None, "in_lava": (w.shape[1],),
                           "out_lava": (w.shape[0],), "learnable": True, "to_torch": ident})
        shape = tuple(p["out"])
    w = net.weights[-1]
    if len(shape) == 3:
        layers.append(_dense_after_map(w, shape, net.conv["readout_pool"]))
    else:
        layers.append({"kind": "fc", "weight": w, "conv": None, "in_lava": (w.shape[1],),
                       "out_lava": (w.shape[0],), "learnable": True, "to_torch": lambda x: x})
    return layers


def _dense_after_map(w, shape, pool) -> dict:
    return {"kind": "fc", "weight": dense_from_map(w, shape, pool), "conv": None,
            "in_lava": lava_shape(shape), "out_lava": (w.shape[0],), "learnable": pool == 1,
            "to_torch": lambda x, s=shape: dense_to_torch(x, s)}


def _prepare(net: ExportedNet, dataset, backend: str, learn: str, eta, rng_seed: int,
             options):
    """Checks every graph builder shares; the learning mode's parts and the step η."""
    check_backend(backend)
    if learn not in LEARN_MODES:
        raise ValueError(f"unknown learning mode {learn!r}; choose one of {LEARN_MODES}")
    if dataset.n_steps != net.n_steps:
        raise ValueError(f"the network was trained with T={net.n_steps} but the data has "
                         f"T={dataset.n_steps}; encode the data with T={net.n_steps}")
    n_in = getattr(dataset, "n_inputs", None)
    if n_in is not None and n_in != net.layer_sizes[0]:
        raise ValueError(f"the network takes {net.layer_sizes[0]} inputs but the data "
                         f"{getattr(dataset, 'name', '')} has {n_in}; run it on the data "
                         f"set it was trained on ({net.dataset})")
    learning = learn != "none"
    if not learning:
        if options:
            raise ValueError(f"options {sorted(options)} need a learning mode (--learn)")
        return None, 2.0 ** -7 if eta is None else eta
    mode = rules.graph_mode(learn)
    if mode.net_kind != net.neuron:
        fits = [m for m, g in rules.graph_modes().items() if g.net_kind == net.neuron]
        raise ValueError(f"--learn {learn} runs on {mode.net_kind} nets, but this net "
                         f"({net.rule}) is a {net.neuron} net; use --learn "
                         f"{' or '.join(fits) or 'none'}")
    parts = mode.bind(net, backend, rng_seed, options)
    eta = mode.default_eta if eta is None else eta
    if not eta > 0:
        raise ValueError(f"the learning rate eta must be > 0, got {eta}")
    return parts, eta


def run_network(net: ExportedNet, dataset, backend: str = "sim-float", learn: str = "none",
                n_samples: int | None = None, eta: float | None = None,
                rng_seed: int = 0, progress: bool = False, learning_engine: bool = True,
                options: dict | None = None, reset_traces: bool = True) -> LavaRun:
    """Stream ``dataset`` through ``net`` in a Lava graph; optionally keep learning
    (see :func:`build_graph`; ``progress``: a progress bar). The learning synapses run
    lava-local's LearningDense models (:mod:`lava_local.processes.learning_dense`: Lava's
    arithmetic, bit for bit, faster, with the per-sample trace reset)."""
    graph = build_graph(net, dataset, backend, learn, n_samples, eta, rng_seed,
                        learning_engine, options, reset_traces)
    return graph.run(progress)


def _run_cfg(backend: str, stock_models: bool = False):
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    from ..processes.fast_conv import fast_conv_models
    from ..processes.learning_dense import fast_learning_models
    from ..processes.learning_layer import learning_layer_models

    models = {**({} if stock_models else fast_learning_models(backend)),
              **fast_conv_models(backend), **learning_layer_models(backend)}
    if backend == "sim-float":
        return Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map=models)
    if backend == "sim-fixed":
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
    return Loihi2HwCfg()
