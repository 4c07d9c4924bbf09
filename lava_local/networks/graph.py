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
from ..fixed import IN_BITS, quantize_input, quantize_weights, weight_precision
from .export import ExportedNet

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

    def __init__(self, ds, limit: int | None = None, quantize=None):
        self.ds = ds
        self.n = len(ds) if limit is None else min(limit, len(ds))
        self.quantize = quantize

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        x, y = self.ds[i]
        if self.quantize is not None:
            x = self.quantize(x)
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

    def signal_dense(self, weights: np.ndarray, name: str):
        """A fixed Dense carrying graded signals through real ``weights`` (float: as
        they are; fixed: 8-bit mantissas with ``weight_exp = -p``, so the output stays in
        the input's units)."""
        from lava.proc.dense.process import Dense

        if self.fixed:
            pb = weight_precision(weights)
            return Dense(weights=quantize_weights(weights, pb), weight_exp=-pb,
                         num_message_bits=8, name=name)
        return Dense(weights=np.asarray(weights, dtype=float), num_message_bits=24,
                     name=name)


@dataclass
class LavaRun:
    """Result of :func:`run_network`."""

    predictions: np.ndarray
    labels: np.ndarray
    n_steps_run: int
    seconds: float
    weights: list[np.ndarray] | None  # all weights after online learning (real units)
    learning: dict | None = None      # what learned on the graph (mode, options, params)
    filters: list | None = None       # cuba nets: (α, β) per layer after online learning
    extra: dict = field(default_factory=dict)   # other learned ExportedNet fields

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
        run_cfg = _run_cfg(ctx.backend)
        n, n_run, interval = self.n_samples, self.n_steps_run, ctx.interval
        chunk = 10 * interval if progress else n_run
        try:
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
                for l, d in enumerate(self.denses):
                    w = np.asarray(d.weights.get(), dtype=float)
                    weights.append(w * 2.0 ** -ctx.precs[l] if ctx.fixed else w)
                if ctx.rec_denses:
                    extra = {"recurrent": [
                        np.asarray(d.weights.get(), dtype=float)
                        * (2.0 ** -ctx.precs[l] if ctx.fixed else 1.0)
                        for l, d in enumerate(ctx.rec_denses)]}
                if self.filters is not None:
                    filters = [f.learned_filter() for f in self.filters]
        finally:
            readout.stop()
        return LavaRun(predictions=preds, labels=self.labels, n_steps_run=n_run,
                       seconds=seconds, weights=weights, learning=self.learning,
                       filters=filters, extra=extra or {})


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
                reset_traces: bool = True) -> LavaGraph:
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
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.io.dataloader import SpikeDataloader

    from ..processes import ErrorUnit, LeakyReadout, STLLRNeuron
    from ..rules.stllr_loihi import OnChipSTLLR

    fixed = backend != "sim-float"
    learning = learn != "none"
    # graded inputs (real-valued features): a graded first Dense; 8-bit payloads if fixed
    graded = bool(getattr(dataset, "graded", False))
    data = SpikeAdapter(dataset, n_samples, quantize_input if graded and fixed else None)
    n = len(data)
    L, T = net.n_hidden, net.n_steps
    idle = 0
    if learning and reset_traces and backend == "loihi2":
        idle = idle_steps(parts.trace_decays(net))
    interval = T + L + 2 + idle
    resets = learning and reset_traces and backend != "loihi2"

    # weights in the backend's units; a recurrent layer's W and V share one precision
    # (its neuron scales one third factor for both)
    rec = list(net.recurrent) if net.recurrent else []
    if fixed:
        precs = [weight_precision(w) for w in net.weights]
        for l, v in enumerate(rec):
            precs[l] = min(precs[l], weight_precision(v))
        big_p = max(precs)
        w_back = [quantize_weights(w, p) for w, p in zip(net.weights, precs)]
        v_back = [quantize_weights(v, precs[l]) for l, v in enumerate(rec)]
        w_exp = [big_p - p for p in precs]
    else:
        precs, big_p = [0] * len(net.weights), 7
        w_back, w_exp = [np.asarray(w, dtype=float) for w in net.weights], [0] * len(net.weights)
        v_back = [np.asarray(v, dtype=float) for v in rec]

    ctx = GraphContext(net, backend, interval, precs, big_p, eta)
    ctx.loader = SpikeDataloader(dataset=data, interval=interval, offset=0)

    def reset_at(offset):   # a synapse's pre spikes of sample 0 arrive at step `offset`
        return {"trace_reset_interval": interval if resets else 0,
                "trace_reset_offset": offset}

    engine = learning and learning_engine
    denses = []
    src = ctx.loader.s_out
    for l in range(L):
        learns = engine and not (graded and l == 0)   # graded inputs: see module doc
        learns_rec = engine and l < len(rec)          # own spikes: V always can learn
        rule = parts.hidden_rule(ctx, l) if parts is not None and (learns or learns_rec) \
            else None
        if learns:
            dense = LearningDense(weights=w_back[l].copy(), weight_exp=w_exp[l],
                                  learning_rule=rule.learning_rule(rng_seed + l),
                                  name=f"dense{l}", **reset_at(ctx.layer_offset(l) - 1))
        elif graded and l == 0:
            dense = Dense(weights=w_back[0].copy(), name="dense0",
                          weight_exp=w_exp[0] - IN_BITS if fixed else 0,
                          num_message_bits=IN_BITS if fixed else 24)
        else:
            dense = Dense(weights=w_back[l].copy(), weight_exp=w_exp[l], name=f"dense{l}")
        neuron = STLLRNeuron(shape=(w_back[l].shape[0],), gamma=net.gamma, v_th=net.v_th,
                             surrogate=net.surrogate, rule=rule, precision=big_p,
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
    if engine:
        # the readout's local gradient: S-TLLR's causal term with Ψ = 1 and the rule's
        # readout trace (λ_pre = κ: the exact gradient of the leaky readout), unless the
        # mode has a readout rule of its own
        rule_out = parts.readout_rule(ctx) or OnChipSTLLR(
            eta=eta, alpha_pre=1.0, alpha_post=0.0, lam_pre=parts.readout_decay(net),
            lam_post=0.0, mode=ctx.mode, weight_precision=precs[-1],
            delta_max=1.0 / ctx.n_win, psi_max=1.0)
        dense_out = LearningDense(weights=w_back[-1].copy(), weight_exp=w_exp[-1],
                                  learning_rule=rule_out.learning_rule(rng_seed + L),
                                  name="dense_out", **reset_at(ctx.readout_offset - 1))
        denses.append(dense_out)
    else:
        dense_out = Dense(weights=w_back[-1].copy(), weight_exp=w_exp[-1], name="dense_out")
    src.connect(dense_out.s_in)
    ctx.readout = LeakyReadout(shape=(w_back[-1].shape[0],), kappa=net.kappa,
                               interval=interval, offset=ctx.readout_offset,
                               window_start=net.window_start, window_end=T, n_samples=n,
                               precision=big_p)
    dense_out.a_out.connect(ctx.readout.a_in)
    if learning:
        err = ErrorUnit(shape=(w_back[-1].shape[0],), interval=interval,
                        offset=ctx.readout_offset, window_start=net.window_start,
                        window_end=T, scale=1.0 / ctx.n_win, precision=big_p, rule=rule_out)
        ctx.readout.o_out.connect(err.o_in)
        if rule_out is not None:
            for a, b in ((err.s_out_bap, dense_out.s_in_bap), (err.s_out_y1, dense_out.s_in_y1),
                         (err.s_out_y2, dense_out.s_in_y2), (err.s_out_y3, dense_out.s_in_y3)):
                a.connect(b)
        ctx.loader.ground_truth.connect(err.label_in)
        ctx.error = err
        parts.attach(ctx)
    record = ({**parts.record(), "eta": eta, "reset_traces": reset_traces,
               "idle_steps": idle, "frozen": ["dense0 (graded inputs)"] if graded else []}
              if parts else None)
    return LavaGraph(ctx, denses, record, n, np.asarray(dataset.labels[:n]), engine)


def _prepare(net: ExportedNet, dataset, backend: str, learn: str, eta, rng_seed: int,
             options):
    """Checks every graph builder shares; the learning mode's parts and the step η."""
    check_backend(backend)
    if learn not in LEARN_MODES:
        raise ValueError(f"unknown learning mode {learn!r}; choose one of {LEARN_MODES}")
    if dataset.n_steps != net.n_steps:
        raise ValueError(f"the network was trained with T={net.n_steps} but the data has "
                         f"T={dataset.n_steps}; encode the data with T={net.n_steps}")
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


def _run_cfg(backend: str):
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    from ..processes.learning_dense import fast_learning_models

    models = fast_learning_models(backend)
    if backend == "sim-float":
        return Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map=models)
    if backend == "sim-fixed":
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
    return Loihi2HwCfg()
