r"""Leaky non-spiking readout (with the prediction record) and the output-error unit.

``LeakyReadout``: :math:`o[t] = κ\, o[t-1] + a_{in}[t]`; sends o every step; within each
sample it sums o over the steps ``window_start <= t < window_end`` and, at the last of
them, writes ``argmax`` of the sum into ``predictions[k]`` for sample k — the batched
trainer's prediction rule. Reading ``predictions`` once at the end is cheap (one Var).

``ErrorUnit``: receives o and the label (from the dataloader's ``ground_truth``) and, in
the learning window of each sample and while ``learn`` is 1, sends the output error
:math:`e = (\mathrm{softmax}(o) - \mathrm{onehot}(c)) \cdot s` (graded); else zeros.
Its fixed model quantises e to 8-bit graded spikes (units 2^-7); the softmax is
evaluated on the dequantised potentials (a lookup table on a chip). With a ``rule`` it is
also the learning neuron of the readout's synapses: it writes ``y1 = |e|/S1`` and
``bap = e > 0`` into their post traces, so the readout weights learn
:math:`Δw = -η\, e[t]\, q[t]` with q the κ-trace of the last hidden layer's spikes —
S-TLLR's causal term with Ψ ≡ 1 and λ_pre = κ, the exact gradient of a leaky readout.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.neuron import LearningNeuronModelFixed, LearningNeuronModelFloat
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.neuron import LearningNeuronProcess
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_local.fixed import (
    ACT_SHIFT,
    GRADED_MAX,
    TRACE_MAX,
    decay,
    decay_to_int,
    from_membrane,
    wrap24,
)
from lava_local.functional._backend import softmax
from lava_local.processes.neuron import _mant_shift
from lava_local.rules.stllr_loihi import Y_DECAY


def _sample_step(time_step: int, interval: int, offset: int) -> int:
    """Step index within the current sample (-1 before the first sample arrives)."""
    if time_step < offset:
        return -1
    return (time_step - offset) % interval


class LeakyReadout(AbstractProcess):
    """Leaky integrator readout that records one prediction per sample.

    Parameters
    ----------
    shape : (C,)
    kappa : float
        Leak κ.
    interval, offset : int
        Sample period and the step at which the first sample reaches this Process.
    window_start, window_end : int
        Prediction window within a sample (T_l and T).
    n_samples : int
        Size of the prediction record.
    precision : int
        P of the fixed units (fixed model).
    """

    def __init__(self, *, shape: tuple[int], kappa: float, interval: int, offset: int,
                 window_start: int, window_end: int, n_samples: int, precision: int = 7,
                 name: str | None = None):
        super().__init__(shape=shape, kappa=kappa, interval=interval, offset=offset,
                         window_start=window_start, window_end=window_end,
                         precision=precision, name=name)
        self.a_in = InPort(shape=shape)
        self.o_out = OutPort(shape=shape)
        self.o = Var(shape=shape, init=0)
        self.acc = Var(shape=shape, init=0)
        self.predictions = Var(shape=(n_samples,), init=-1)
        self.n_done = Var(shape=(1,), init=0)


class _ReadoutBase(PyLoihiProcessModel):
    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._interval, self._offset = p["interval"], p["offset"]
        self._t0, self._t1 = p["window_start"], p["window_end"]

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        t = _sample_step(self.time_step, self._interval, self._offset)
        if t == 0:
            self.o[:] = 0
            self.acc[:] = 0
        self._integrate(a_in)
        if self._t0 <= t < self._t1:
            self.acc[:] = self.acc + self.o
        if t == self._t1 - 1:
            k = int(self.n_done[0])
            if k < self.predictions.shape[0]:
                self.predictions[k] = int(np.argmax(self.acc))
            self.n_done[0] = k + 1
        self.o_out.send(self.o.copy())


@implements(proc=LeakyReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLeakyReadoutFloat(_ReadoutBase):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    o_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    o: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def _integrate(self, a_in: np.ndarray) -> None:
        self.o[:] = self.proc_params["kappa"] * self.o + a_in


@implements(proc=LeakyReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLeakyReadoutFixed(_ReadoutBase):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    o_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    o: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._d = decay_to_int(self.proc_params["kappa"])

    def _integrate(self, a_in: np.ndarray) -> None:
        o = decay(self.o, self._d) + (a_in.astype(np.int64) << ACT_SHIFT)
        self.o[:] = wrap24(o)


class ErrorUnit(LearningNeuronProcess, AbstractProcess):
    """Output error ``(softmax(o) - onehot(label)) · scale`` in the learning window.

    Parameters
    ----------
    shape : (C,)
    interval, offset, window_start, window_end : int
        As in :class:`LeakyReadout` (same offset as the readout feeding it).
    scale : float
        Multiplies the error (e.g. 1 / number of learning steps).
    learn : bool
        Initial value of the ``learn`` Var (1: send errors, 0: silent).
    precision : int
        P of the fixed readout units (fixed model).
    rule : OnChipSTLLR, optional
        Learning rule of the readout synapses (Ψ ≡ 1, λ_pre = κ, α_post = 0); None: the
        readout does not learn.
    """

    def __init__(self, *, shape: tuple[int], interval: int, offset: int, window_start: int,
                 window_end: int, scale: float = 1.0, learn: bool = True,
                 precision: int = 7, rule=None, name: str | None = None):
        learning_rule = rule.learning_rule() if rule is not None else None
        super().__init__(shape=shape, learning_rule=learning_rule, interval=interval,
                         offset=offset, window_start=window_start, window_end=window_end,
                         scale=scale, precision=precision, rule=rule, name=name)
        self.o_in = InPort(shape=shape)
        self.label_in = InPort(shape=(1,))
        self.err_out = OutPort(shape=shape)
        self.learn = Var(shape=(1,), init=int(learn))


class _ErrorBase(PyLoihiProcessModel):
    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._interval, self._offset = p["interval"], p["offset"]
        self._t0, self._t1 = p["window_start"], p["window_end"]
        self._scale = p["scale"]
        self._rule = p["rule"]

    def run_spk(self) -> None:
        o = self.o_in.recv()
        label = int(np.asarray(self.label_in.recv()).ravel()[0])
        self.a_third_factor_in.recv()
        t = _sample_step(self.time_step, self._interval, self._offset)
        err = np.zeros(o.shape, dtype=float)
        if self.learn[0] and self._t0 <= t < self._t1:
            err = softmax(self._real(o))
            err[label] -= 1.0
            err *= self._scale
        encoded = self._encode(err)
        self.err_out.send(encoded)
        y1, bap = self._third_factor(encoded)
        self.s_out_bap.send(bap)
        self.s_out_y1.send(y1)
        self.s_out_y2.send(np.zeros_like(y1))
        self.s_out_y3.send(np.zeros_like(y1))


@implements(proc=ErrorUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyErrorUnitFloat(_ErrorBase, LearningNeuronModelFloat):
    o_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def _real(self, o: np.ndarray) -> np.ndarray:
        return np.asarray(o, dtype=float)

    def _encode(self, err: np.ndarray) -> np.ndarray:
        return err

    def _third_factor(self, err: np.ndarray):
        if self._rule is None:
            return np.zeros_like(err), np.zeros(err.shape, dtype=bool)
        return np.abs(err) / self._rule.s1 / Y_DECAY, err > 0


@implements(proc=ErrorUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyErrorUnitFixed(_ErrorBase, LearningNeuronModelFixed):
    o_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def _real(self, o: np.ndarray) -> np.ndarray:
        return from_membrane(o, self.proc_params["precision"])

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._m = (0, 0)
        if self._rule is not None:
            self._m = _mant_shift(2.0 ** -7 / self._rule.s1)  # |e_int| units -> y1 units

    def _encode(self, err: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(err * 2 ** 7), -GRADED_MAX, GRADED_MAX).astype(np.int32)

    def _third_factor(self, err: np.ndarray):
        m, k = self._m
        y1 = np.minimum((np.abs(err.astype(np.int64)) * m) >> k, TRACE_MAX).astype(np.int32)
        return y1, err > 0
