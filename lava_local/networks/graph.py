"""Build an exported network as a Lava process graph and run it.

Graph (one long run, samples streamed by a Lava dataloader, state reset per sample)::

    SpikeDataloader ─s_out─> Dense_1 ─> STLLRNeuron_1 ─> Dense_2 ─> ... ─> Dense_out ─> LeakyReadout
          │                                                                              │ o
          └──────────────────────── ground_truth ──────────────────────────> ErrorUnit <─┘
                                       (learning only)                           │ err
                    STLLRNeuron_l.a_third_factor_in <── Dense(B^l, graded) <──────┘

With learning, Dense_l is a ``LearningDense`` running the S-TLLR product-series rule and
the neuron's y1/y2/bap ports feed its post traces. Every Dense delays by one step, so a
sample reaches layer l (1-based) ``l`` steps after the dataloader sends it; each Process
resets at its own offset. Samples are spaced ``T + L + 2`` steps apart so the readout and
the (delayed) learning signals of one sample end before the next one starts.

Backends: ``sim-float`` (``Loihi2SimCfg``, floating_pt models), ``sim-fixed``
(``Loihi2SimCfg``, fixed_pt models: integer weights, membranes and the bit-approximate
learning engine) and ``loihi2`` (``Loihi2HwCfg``; needs Intel's Loihi extension).

Graded inputs (data sets with ``graded = True``, e.g. Speech Commands log-mels): the first
Dense takes graded messages (float; 8-bit payloads in fixed point, see
:mod:`lava_local.fixed`); such graphs run inference only.
"""

from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import dataclass

import numpy as np

from ..fixed import IN_BITS, quantize_input, quantize_weights, weight_precision
from .export import ExportedNet

BACKENDS = ("sim-float", "sim-fixed", "loihi2")
LEARN_MODES = ("none", "stllr-dfa")


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


def default_feedback(net: ExportedNet, seed: int) -> list[np.ndarray]:
    """Fixed random DFA matrices B^l (N_l, C), Kaiming-uniform, for nets trained with bp."""
    rng = np.random.default_rng([seed, 7])
    c = net.layer_sizes[-1]
    bound = math.sqrt(6.0 / c)
    return [rng.uniform(-bound, bound, size=(n, c)) for n in net.layer_sizes[1:-1]]


@dataclass
class LavaRun:
    """Result of :func:`run_network`."""

    predictions: np.ndarray
    labels: np.ndarray
    n_steps_run: int
    seconds: float
    weights: list[np.ndarray] | None  # all weights after online learning (real units)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def steps_per_second(self) -> float:
        return self.n_steps_run / self.seconds


def run_network(net: ExportedNet, dataset, backend: str = "sim-float", learn: str = "none",
                n_samples: int | None = None, eta: float = 2 ** -7,
                rng_seed: int = 0, progress: bool = False,
                fast_learning: bool = True, learning_engine: bool = True) -> LavaRun:
    """Stream ``dataset`` through ``net`` in a Lava graph; optionally keep learning.

    Parameters
    ----------
    net : ExportedNet
    dataset : SpikeDataset
        Time-first samples (T, features) with T = ``net.n_steps``.
    backend : {"sim-float", "sim-fixed", "loihi2"}
    learn : {"none", "stllr-dfa"}
        ``stllr-dfa``: hidden layers keep learning with S-TLLR and a DFA learning signal,
        the readout with its exact local gradient (error × κ-trace of its input), all by
        SGD steps of ``eta`` on the learning engine.
    n_samples : int, optional
        First samples of ``dataset`` to run (default all).
    progress : bool
        Show a progress bar (the run is split into blocking runs of 10 samples).
    fast_learning : bool
        Use the bit-identical faster LearningDense models of
        :mod:`lava_local.processes.learning_dense` (default) instead of Lava's own.
    learning_engine : bool
        With ``learn="stllr-dfa"``: False builds the whole learning graph (error unit,
        feedback, third factors) but with plain Dense synapses — the baseline that
        isolates the learning engine's cost in benchmarks.
    """
    from ..lava_runtime import ensure_lava_runtime

    ensure_lava_runtime()
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.io.dataloader import SpikeDataloader

    from ..processes import ErrorUnit, LeakyReadout, STLLRNeuron
    from ..rules.stllr_loihi import OnChipSTLLR

    check_backend(backend)
    if learn not in LEARN_MODES:
        raise ValueError(f"unknown learning mode {learn!r}; choose one of {LEARN_MODES}")
    if dataset.n_steps != net.n_steps:
        raise ValueError(f"the network was trained with T={net.n_steps} but the data has "
                         f"T={dataset.n_steps}; encode the data with T={net.n_steps}")
    fixed = backend != "sim-float"
    mode = "fixed" if fixed else "float"
    # graded inputs (real-valued features): a graded first Dense; 8-bit payloads if fixed
    graded = bool(getattr(dataset, "graded", False))
    if graded and learn != "none":
        raise ValueError("online learning on the graph needs spike inputs: the learning "
                         "engine's pre-synaptic traces count binary spikes, and "
                         f"{getattr(dataset, 'name', 'this data set')} has graded "
                         "features; run it with --learn none")
    data = SpikeAdapter(dataset, n_samples, quantize_input if graded and fixed else None)
    n = len(data)
    L = net.n_hidden
    T = net.n_steps
    interval = T + L + 2
    sp = net.stllr

    # weights in the backend's units
    if fixed:
        precs = [weight_precision(w) for w in net.weights]
        big_p = max(precs)
        w_back = [quantize_weights(w, p) for w, p in zip(net.weights, precs)]
        w_exp = [big_p - p for p in precs]
    else:
        precs, big_p = [0] * len(net.weights), 7
        w_back, w_exp = [np.asarray(w, dtype=float) for w in net.weights], [0] * len(net.weights)

    loader = SpikeDataloader(dataset=data, interval=interval, offset=0)
    learning = learn != "none"
    rules = []
    neurons, denses = [], []
    src = loader.s_out
    for l in range(L):
        rule = None
        if learning:
            rule = OnChipSTLLR(eta=eta, alpha_pre=sp["alpha_pre"], alpha_post=sp["alpha_post"],
                               lam_pre=sp["lam_pre"], lam_post=sp["lam_post"],
                               post_form=sp["post_form"], mode=mode,
                               weight_precision=precs[l], delta_max=1.0)
        if learning and learning_engine:
            dense = LearningDense(weights=w_back[l].copy(), weight_exp=w_exp[l],
                                  learning_rule=rule.learning_rule(rng_seed + l),
                                  name=f"dense{l}")
        elif graded and l == 0:
            dense = Dense(weights=w_back[0].copy(), name="dense0",
                          weight_exp=w_exp[0] - IN_BITS if fixed else 0,
                          num_message_bits=IN_BITS if fixed else 24)
        else:
            dense = Dense(weights=w_back[l].copy(), weight_exp=w_exp[l], name=f"dense{l}")
        neuron = STLLRNeuron(shape=(w_back[l].shape[0],), gamma=net.gamma, v_th=net.v_th,
                             lam_post=sp["lam_post"], post_form=sp["post_form"],
                             surrogate=net.surrogate, rule=rule, precision=big_p,
                             delta_precision=7, reset_interval=interval,
                             reset_offset=2 + l + 1, name=f"lif{l}")
        src.connect(dense.s_in)
        dense.a_out.connect(neuron.a_in)
        if learning and learning_engine:
            neuron.s_out_bap.connect(dense.s_in_bap)
            neuron.s_out_y1.connect(dense.s_in_y1)
            neuron.s_out_y2.connect(dense.s_in_y2)
            neuron.s_out_y3.connect(dense.s_in_y3)
        src = neuron.s_out
        neurons.append(neuron)
        denses.append(dense)
        rules.append(rule)
    n_win = T - net.window_start
    rule_out = None
    if learning and learning_engine:
        # the readout's exact local gradient: S-TLLR's causal term with Ψ = 1, λ_pre = κ
        rule_out = OnChipSTLLR(eta=eta, alpha_pre=1.0, alpha_post=0.0, lam_pre=net.kappa,
                               lam_post=0.0, mode=mode, weight_precision=precs[-1],
                               delta_max=1.0 / n_win, psi_max=1.0)
        dense_out = LearningDense(weights=w_back[-1].copy(), weight_exp=w_exp[-1],
                                  learning_rule=rule_out.learning_rule(rng_seed + L),
                                  name="dense_out")
        denses.append(dense_out)
    else:
        dense_out = Dense(weights=w_back[-1].copy(), weight_exp=w_exp[-1], name="dense_out")
    src.connect(dense_out.s_in)
    readout_offset = 2 + L + 1
    readout = LeakyReadout(shape=(w_back[-1].shape[0],), kappa=net.kappa, interval=interval,
                           offset=readout_offset, window_start=net.window_start,
                           window_end=T, n_samples=n, precision=big_p)
    dense_out.a_out.connect(readout.a_in)
    if learning:
        err = ErrorUnit(shape=(w_back[-1].shape[0],), interval=interval, offset=readout_offset,
                        window_start=net.window_start, window_end=T, scale=1.0 / n_win,
                        precision=big_p, rule=rule_out)
        readout.o_out.connect(err.o_in)
        if rule_out is not None:
            for a, b in ((err.s_out_bap, dense_out.s_in_bap), (err.s_out_y1, dense_out.s_in_y1),
                         (err.s_out_y2, dense_out.s_in_y2), (err.s_out_y3, dense_out.s_in_y3)):
                a.connect(b)
        loader.ground_truth.connect(err.label_in)
        fb = net.feedback or default_feedback(net, rng_seed)
        for l, b in enumerate(fb):
            if fixed:
                pb = weight_precision(b)
                fdense = Dense(weights=quantize_weights(b, pb), weight_exp=-pb,
                               num_message_bits=8, name=f"feedback{l}")
            else:
                fdense = Dense(weights=np.asarray(b, dtype=float), num_message_bits=24,
                               name=f"feedback{l}")
            err.err_out.connect(fdense.s_in)
            fdense.a_out.connect(neurons[l].a_third_factor_in)

    run_cfg = _run_cfg(backend, fast_learning)
    n_run = n * interval + 2
    from tqdm.auto import tqdm

    chunk = 10 * interval if progress else n_run
    t0 = time.perf_counter()
    with tqdm(total=n, desc=f"lava {backend}", unit="sample", disable=not progress) as bar:
        done = 0
        while done < n_run:
            k = min(chunk, n_run - done)
            readout.run(condition=RunSteps(num_steps=k), run_cfg=run_cfg)
            done += k
            bar.update(min(n, done // interval) - bar.n)
    seconds = time.perf_counter() - t0
    preds = np.asarray(readout.predictions.get(), dtype=np.int64)
    weights = None
    if learning and learning_engine:
        weights = []
        for l, d in enumerate(denses):
            w = np.asarray(d.weights.get(), dtype=float)
            weights.append(w * 2.0 ** -precs[l] if fixed else w)
    readout.stop()
    return LavaRun(predictions=preds, labels=np.asarray(dataset.labels[:n]), n_steps_run=n_run,
                   seconds=seconds, weights=weights)


def _run_cfg(backend: str, fast: bool = True):
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    from ..processes.learning_dense import fast_learning_models

    models = fast_learning_models(backend) if fast else {}
    if backend == "sim-float":
        return Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map=models)
    if backend == "sim-fixed":
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
    return Loihi2HwCfg()
