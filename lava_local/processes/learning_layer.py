"""A learning layer in one process: a hidden layer's learning synapses and its S-TLLR
learning neurons, for the CPU simulation of the learning graph.

On the common learning graph (:mod:`lava_local.networks.graph`) a hidden layer is two
processes, a ``LearningDense`` and an :class:`~lava_local.processes.STLLRNeuron`, and
each step they exchange five messages: the synaptic input (synapse → neuron) and the
neuron's bAP, y1, y2 and y3 (neuron → synapse), each a cross-process round trip in
Lava's simulator, on top of every process's per-step handshake with the runtime. On
Loihi 2 the two share a neuro-core: the post traces never leave it. In simulation that
traffic, not the arithmetic, bounds the learning graph's steps/s.

:class:`LearningLIFLayer` is both in one process. Its ProcessModels are the two models'
own code in one step (the learning engine of
:mod:`~lava_local.processes.learning_dense`'s fast models, the neuron arithmetic of
:mod:`~lava_local.processes.neuron`), in the order the two processes run it:

1. the neuron integrates the synaptic input of the step before (the Dense's one-step
   delay) and the learning signal on ``a_third_factor_in``, spikes on ``s_out`` and
   computes its third factors;
2. the synapse takes this step's pre-synaptic spikes on ``s_in`` (its input for the next
   step), its traces take the pre spikes and the neuron's bAP, y1, y2, y3, and the
   learning engine updates the weights (t_epoch = 1, in the spiking phase).

A layer can also hold its learning signal's source: DFA's feedback projection
(``signal_weights``), TESS's error path (``local_error``: projection, error unit, back
projection) or TP's prototype unit (``prototype_unit``), each one step late as the
separate processes deliver it. So the weights, spikes and predictions equal the
separate-process graph's bit for bit, float and fixed (tested). The Process is a
``LearningDense`` (its weights, traces and learning rule, read back with
``weights.get()``) with the neuron's Vars and ports added; only the CPU simulation
builds it — a graph for Loihi 2 keeps the separate processes, which the chip maps to
one core anyway.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.process import LearningDense

from lava_local.processes.learning_dense import (
    FastLearningDenseBitApproximate,
    FastLearningDenseFloat,
)
from lava_local.processes.neuron import _FixedArith, _FloatArith, _STLLRNeuronBase
from lava_local.processes.readout import (
    _ErrorFixedArith,
    _ErrorFloatArith,
    _ErrorStep,
    _ReadoutFixedArith,
    _ReadoutFloatArith,
    _ReadoutStep,
)
from lava_local.processes.tp_unit import (
    TP_UNIT_KEYS,
    _TPFixedArith,
    _TPFloatArith,
    _TPStep,
    check_tables,
)

#: The neuron's parameters (:class:`~lava_local.processes.STLLRNeuron`), and their
#: defaults, that the layer takes besides the ``LearningDense`` ones.
NEURON_DEFAULTS = {"lam_post": 0.2, "post_form": "paper", "surrogate": "triangle",
                   "precision": 7, "delta_unit": 2.0 ** -7, "reset_interval": 0,
                   "reset_offset": 0, "psi_lag": 0, "n_active": 0}


def _refuse(proc, error: Exception):
    """Raise ``error`` from a Process's ``__init__`` before Lava's own has run (so that
    the half-made Process's ``__del__``, which stops its runtime, finds none)."""
    object.__setattr__(proc, "_runtime", None)
    raise error


def _check_one_step(proc, learning_rule) -> None:
    if learning_rule.t_epoch != 1:
        _refuse(proc, ValueError(f"{type(proc).__name__} learns every step (t_epoch = 1), "
                                 f"got t_epoch = {learning_rule.t_epoch}"))


class LearningLIFLayer(LearningDense):
    """A ``LearningDense`` and the S-TLLR learning neurons it feeds, as one process
    (see module doc).

    Parameters
    ----------
    weights, weight_exp, learning_rule, name, trace_reset_interval, trace_reset_offset
        As for ``LearningDense`` (and the fast models' trace reset); the synapse's
        inputs are binary spikes (``num_message_bits`` = 0).
    gamma, v_th, rule, lam_post, post_form, surrogate, precision, delta_unit,
    reset_interval, reset_offset, psi_lag, n_active
        As for :class:`~lava_local.processes.STLLRNeuron`; ``rule`` (the product-series
        rule object) must be the one ``learning_rule`` was made from.
    signal_weights, signal_exp : optional
        A fixed projection of graded signals into the learning signal, built in (the
        Dense that would otherwise feed ``a_third_factor_in``: weights in the
        backend's units, weight exponent; graded inputs): its port ``signal_in`` is then
        (C,), and its neurons take ``signal_weights · signal_in`` of the step before as
        their learning signal, as through that Dense (``a_third_factor_in`` unused).
    local_error : dict, optional
        The layer's own error path, built in (``GraphParts.local_error``: TESS): its
        spikes through ``fwd_weights`` (binary inputs, ``fwd_exp``) into an
        :class:`~lava_local.processes.ErrorUnit` (settings ``unit``, label on the port
        ``label_in``), the error through ``back_weights`` (graded, ``back_exp``) into the
        learning signal — each projection one step late, as the separate Dense processes
        deliver them.
    prototype_unit : dict, optional
        The layer's prototype unit, built in (``GraphParts.prototype_unit``: Traces
        Propagation): the keyword settings of a :class:`~lava_local.processes.TPUnit`
        (``prototypes``, ``targets``, ``beta``, ``interval``, ``offset``,
        ``window_start``, ``scale``) fed by the layer's spikes and the label on
        ``label_in``; its learning signal reaches the neurons one step late, as the
        separate unit's ``m_out`` does.
    """

    def __init__(self, *, weights: np.ndarray, learning_rule, gamma: float, v_th: float,
                 rule, weight_exp: int = 0, name: str | None = None,
                 signal_weights: np.ndarray | None = None, signal_exp: int = 0,
                 local_error: dict | None = None, prototype_unit: dict | None = None,
                 **kwargs):
        unknown = set(kwargs) - set(NEURON_DEFAULTS) - {"trace_reset_interval",
                                                        "trace_reset_offset"}
        if unknown:
            _refuse(self, TypeError(f"LearningLIFLayer got unknown parameters "
                                    f"{sorted(unknown)}"))
        _check_one_step(self, learning_rule)
        neuron = {**NEURON_DEFAULTS, **{k: v for k, v in kwargs.items()
                                        if k in NEURON_DEFAULTS}}
        if neuron["psi_lag"] not in (0, 1):
            _refuse(self, ValueError(f"psi_lag must be 0 or 1, got {neuron['psi_lag']}"))
        syn = {k: v for k, v in kwargs.items() if k not in NEURON_DEFAULTS}
        if signal_weights is not None:
            signal_weights = np.asarray(signal_weights)
            if signal_weights.ndim != 2 or signal_weights.shape[0] != weights.shape[0]:
                _refuse(self, ValueError("signal_weights must be (N_post, C) with N_post = "
                                         f"{weights.shape[0]}, got {signal_weights.shape}"))
        given = [k for k, v in (("signal_weights", signal_weights),
                                ("local_error", local_error),
                                ("prototype_unit", prototype_unit)) if v is not None]
        if len(given) > 1:
            _refuse(self, ValueError(f"give one learning-signal path, not {given}"))
        if prototype_unit is not None:
            missing = set(TP_UNIT_KEYS) - set(prototype_unit)
            unknown = set(prototype_unit) - set(TP_UNIT_KEYS)
            if missing or unknown:
                _refuse(self, ValueError(f"prototype_unit lacks {sorted(missing)} / has "
                                         f"unknown {sorted(unknown)}"))
            try:
                check_tables(prototype_unit["prototypes"], prototype_unit["targets"],
                             weights.shape[0])
            except ValueError as e:
                _refuse(self, e)
        if local_error is not None:
            missing = {"fwd_weights", "fwd_exp", "unit", "back_weights", "back_exp"} \
                - set(local_error)
            if missing:
                _refuse(self, ValueError(f"local_error lacks {sorted(missing)}"))
        super().__init__(weights=weights, learning_rule=learning_rule,
                         weight_exp=weight_exp, name=name, gamma=gamma, v_th=v_th,
                         rule=rule, signal_weights=signal_weights, signal_exp=signal_exp,
                         local_error=local_error, prototype_unit=prototype_unit,
                         **neuron, **syn)
        self.label_in = InPort(shape=(1,))      # used with local_error, prototype_unit
        shape = (weights.shape[0],)
        # (a model's ports exist in every instance: unused without signal_weights)
        n_sig = signal_weights.shape[1] if signal_weights is not None else 1
        self.signal_in = InPort(shape=(n_sig,))
        self.a_third_factor_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.y = Var(shape=shape, init=0)
        self.h = Var(shape=shape, init=0)


class _LocalUnit(_ErrorStep):
    """An :class:`~lava_local.processes.ErrorUnit`'s step inside another process:
    its own settings, always learning, the host's time step."""

    def __init__(self, proc_params: dict) -> None:
        self.proc_params = proc_params
        self.learn = np.ones(1, dtype=np.int32)
        self.time_step = 0
        self._setup_error()
        self._setup_error_arith()


class _LocalUnitFloat(_LocalUnit, _ErrorFloatArith):
    pass


class _LocalUnitFixed(_LocalUnit, _ErrorFixedArith):
    pass


class _LocalTP(_TPStep):
    """A :class:`~lava_local.processes.TPUnit`'s step inside another process: its own
    settings and trace, always learning, the host's time step."""

    def __init__(self, proc_params: dict, n: int) -> None:
        self.proc_params = proc_params
        self.eps = np.zeros(n, dtype=self._eps_dtype)
        self.learn = np.ones(1, dtype=np.int32)
        self.time_step = 0
        self._setup_tp()


class _LocalTPFloat(_TPFloatArith, _LocalTP):
    pass


class _LocalTPFixed(_TPFixedArith, _LocalTP):
    pass


class _LayerStep(_STLLRNeuronBase):
    """One step of the layer: the neuron, then the synapse and its learning engine."""

    def _setup_layer(self) -> None:
        self._params()
        self._setup_arith()
        if not self._one_step_fits():
            raise ValueError("LearningLIFLayer runs 3-factor rules with t_epoch = 1 and "
                             "binary pre spikes only")
        p = self.proc_params
        w = p.get("signal_weights")
        self._signal_w = None if w is None else self._dense_matrix(w)
        self._signal_buff = np.zeros(p["shape"][0], self._a_dtype)
        self._local = None
        if p.get("local_error") is not None:
            le = p["local_error"]
            unit = self._unit_class({**le["unit"], "rule": None})
            self._local = (self._dense_matrix(le["fwd_weights"]), le["fwd_exp"], unit,
                           self._dense_matrix(le["back_weights"]), le["back_exp"])
            self._fwd_buff = np.zeros(np.shape(le["fwd_weights"])[0], self._a_dtype)
        pu = p.get("prototype_unit")
        self._proto = None if pu is None else self._tp_class(pu, p["shape"][0])

    def run_spk(self) -> None:
        # 1. the neuron, driven by the synapse's output of the step before and the
        # learning signal (through the built-in projection: its output of the step
        # before, as a Dense delivers it)
        a_in = np.zeros(self.a_buff.shape, self._a_dtype) + self.a_buff
        if self._signal_w is None and self._local is None and self._proto is None:
            delta = self.a_third_factor_in.recv()
        else:
            delta = np.zeros(self.a_buff.shape, self._a_dtype) + self._signal_buff
        spikes, y1, y2, bap = self._neuron_step(a_in, delta)
        self.s_out.send(spikes)
        # 2. the synapse: its traces are reset at a sample's first step, then take this
        # step's pre spikes and the neuron's post traces, then the engine learns
        self._reset_traces_if_due()
        s_in = self.s_in.recv().astype(bool)
        self.a_buff = self._synaptic_input(s_in)
        self._learn_step(s_in, np.asarray(bap, dtype=bool), y1, y2, np.zeros_like(y1))
        # 3. the built-in projection's output for the next step. It reads only this
        # step's spikes and messages and its own state, and nothing above reads what it
        # writes, so it runs last: the values are those of running it before 2, but the
        # synapse's work no longer waits for the readout's error (DFA, BP), which the
        # readout sends only after its own neuron and error steps
        self._next_signal(spikes)

    def _next_signal(self, spikes: np.ndarray) -> None:
        """The learning signal the neuron takes at the next step, from this step's
        error (DFA, BP: through the signal projection), the layer's own error path
        (TESS) or its prototype unit (TP)."""
        if self._signal_w is not None:
            self._signal_buff = self._dense_graded(self._signal_w, self.signal_in.recv(),
                                                   self.proc_params["signal_exp"])
        if self._local is not None:     # the layer's own error path (TESS)
            fwd, fwd_exp, unit, back, back_exp = self._local
            o = np.zeros(self._fwd_buff.shape, self._a_dtype) + self._fwd_buff
            self._fwd_buff = self._dense_spikes(fwd, spikes.astype(bool), fwd_exp)
            unit.time_step = self.time_step
            err, _, _ = unit._error_step(o, int(np.asarray(self.label_in.recv()).ravel()[0]))
            self._signal_buff = self._dense_graded(back, err, back_exp)
        if self._proto is not None:     # the layer's own prototype unit (TP)
            self._proto.time_step = self.time_step
            label = int(np.asarray(self.label_in.recv()).ravel()[0])
            self._signal_buff = self._proto._tp_step(spikes.astype(self._a_dtype), label)


@implements(proc=LearningLIFLayer, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLearningLIFLayerFloat(_LayerStep, _FloatArith, FastLearningDenseFloat):
    """Float model: :class:`~lava_local.processes.learning_dense.FastLearningDenseFloat`
    and :class:`~lava_local.processes.PySTLLRNeuronFloat` in one step."""

    # a model of LearningDense's, re-declared for the layer (Lava's @implements
    # refuses a subclass that implements another Process unless this is cleared)
    implements_process = None
    a_third_factor_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)
    h: np.ndarray = LavaPyType(np.ndarray, float)
    signal_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    _a_dtype = float

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup_layer()

    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    _unit_class = _LocalUnitFloat
    _tp_class = _LocalTPFloat


@implements(proc=LearningLIFLayer, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class PyLearningLIFLayerFixed(_LayerStep, _FixedArith, FastLearningDenseBitApproximate):
    """Fixed model: :class:`~lava_local.processes.learning_dense
    .FastLearningDenseBitApproximate` and :class:`~lava_local.processes
    .PySTLLRNeuronFixed` in one step."""

    # a model of LearningDense's, re-declared for the layer (Lava's @implements
    # refuses a subclass that implements another Process unless this is cleared)
    implements_process = None
    a_third_factor_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    y: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    h: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    signal_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=8)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    _unit_class = _LocalUnitFixed
    _tp_class = _LocalTPFixed
    _a_dtype = np.int32

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup_layer()


class LearningReadout(LearningDense):
    """The readout's ``LearningDense``, the :class:`~lava_local.processes.LeakyReadout`
    it feeds and the :class:`~lava_local.processes.ErrorUnit` that computes the output
    error and writes the synapses' post traces, as one process (see module doc): each
    step the readout integrates the synapses' output of the step before and records its
    prediction, the error unit sends the error (``err_out``) for the step's potentials
    and label (``label_in``), and the synapses take their pre spikes and learn from the
    error's third factors.

    Parameters
    ----------
    weights, weight_exp, learning_rule, name, trace_reset_interval, trace_reset_offset
        As for ``LearningDense`` (binary pre spikes).
    kappa, interval, offset, window_start, window_end, n_samples, precision
        As for :class:`~lava_local.processes.LeakyReadout`.
    scale, rule
        As for :class:`~lava_local.processes.ErrorUnit` (f = softmax, the readout's
        output error); ``rule`` must be the one ``learning_rule`` was made from.
    """

    def __init__(self, *, weights: np.ndarray, learning_rule, rule, kappa: float,
                 interval: int, offset: int, window_start: int, window_end: int,
                 n_samples: int, scale: float = 1.0, precision: int = 7,
                 weight_exp: int = 0, name: str | None = None,
                 trace_reset_interval: int = 0, trace_reset_offset: int = 0):
        _check_one_step(self, learning_rule)
        super().__init__(weights=weights, learning_rule=learning_rule,
                         weight_exp=weight_exp, name=name, rule=rule, kappa=kappa,
                         interval=interval, offset=offset, window_start=window_start,
                         window_end=window_end, scale=scale, f="softmax", in_unit=None,
                         out_unit=2.0 ** -7, precision=precision,
                         trace_reset_interval=trace_reset_interval,
                         trace_reset_offset=trace_reset_offset)
        shape = (weights.shape[0],)
        self.label_in = InPort(shape=(1,))
        self.err_out = OutPort(shape=shape)
        self.o = Var(shape=shape, init=0)
        self.acc = Var(shape=shape, init=0)
        self.predictions = Var(shape=(n_samples,), init=-1)
        self.n_done = Var(shape=(1,), init=0)
        self.learn = Var(shape=(1,), init=1)


class _ReadoutLayerStep(_ReadoutStep, _ErrorStep):
    """One step: readout, error unit, then the synapses and their learning engine."""

    def _setup_layer(self) -> None:
        self._setup_readout()
        self._setup_readout_arith()
        self._setup_error()
        self._setup_error_arith()
        if not self._one_step_fits():
            raise ValueError("LearningReadout runs 3-factor rules with t_epoch = 1 and "
                             "binary pre spikes only")

    def run_spk(self) -> None:
        a_in = np.zeros(self.a_buff.shape, self._a_dtype) + self.a_buff
        o = self._readout_step(a_in)
        label = int(np.asarray(self.label_in.recv()).ravel()[0])
        encoded, y1, bap = self._error_step(o, label)
        self.err_out.send(encoded)
        self._reset_traces_if_due()
        s_in = self.s_in.recv().astype(bool)
        self.a_buff = self._synaptic_input(s_in)
        zeros = np.zeros_like(y1)
        self._learn_step(s_in, np.asarray(bap, dtype=bool), y1, zeros, zeros)


@implements(proc=LearningReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLearningReadoutFloat(_ReadoutLayerStep, _ReadoutFloatArith, _ErrorFloatArith,
                             FastLearningDenseFloat):
    """Float model: the fast LearningDense, PyLeakyReadoutFloat and PyErrorUnitFloat in
    one step."""

    # see PyLearningLIFLayerFloat
    implements_process = None
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    o: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)
    _a_dtype = float

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup_layer()


@implements(proc=LearningReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class PyLearningReadoutFixed(_ReadoutLayerStep, _ReadoutFixedArith, _ErrorFixedArith,
                             FastLearningDenseBitApproximate):
    """Fixed model: the fast LearningDense, PyLeakyReadoutFixed and PyErrorUnitFixed in
    one step."""

    # see PyLearningLIFLayerFloat
    implements_process = None
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    o: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)
    _a_dtype = np.int32

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup_layer()


def learning_layer_models(backend: str) -> dict:
    """``exception_proc_model_map`` entries selecting the fused models for a backend."""
    if backend == "sim-float":
        return {LearningLIFLayer: PyLearningLIFLayerFloat,
                LearningReadout: PyLearningReadoutFloat}
    if backend == "sim-fixed":
        return {LearningLIFLayer: PyLearningLIFLayerFixed,
                LearningReadout: PyLearningReadoutFixed}
    return {}
