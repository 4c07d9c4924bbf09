r"""Leaky non-spiking readout (with the prediction record) and the output-error unit.

``LeakyReadout``: :math:`o[t] = κ\, o[t-1] + a_{in}[t]`; sends o every step; within each
sample it sums o over the steps ``window_start <= t < window_end`` and, at the last of
them, writes ``argmax`` of the sum into ``predictions[k]`` for sample k — the batched
trainer's prediction rule. Reading ``predictions`` once at the end is cheap (one Var).

``ErrorUnit``: receives o and the label (from the dataloader's ``ground_truth``) and, in
the learning window of each sample and while ``learn`` is 1, sends the error
:math:`e = (f(o) - \mathrm{onehot}(c)) \cdot s` (graded); else zeros. f = softmax for
the readout's output error, softmax or identity for TESS's local errors. Its fixed model
sends 8-bit graded spikes (units ``out_unit``, 2^-7 by default); softmax is evaluated on
the dequantised potentials (a lookup table on a chip), identity in integers. With a ``rule`` it is
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
    mant_shift,
    mul_round,
    wrap24,
)
from lava_local.functional._backend import softmax
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


class _ReadoutStep:
    """The readout's step; the arithmetic mixins provide ``_integrate``."""

    def _setup_readout(self) -> None:
        p = self.proc_params
        self._interval, self._offset = p["interval"], p["offset"]
        self._t0, self._t1 = p["window_start"], p["window_end"]

    def _readout_step(self, a_in: np.ndarray) -> np.ndarray:
        """Integrate ``a_in``, keep the window's sum and record the prediction at the
        window's last step; returns the potentials o to send."""
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
        return self.o.copy()


class _ReadoutFloatArith:
    def _setup_readout_arith(self) -> None:
        pass

    def _integrate(self, a_in: np.ndarray) -> None:
        self.o[:] = self.proc_params["kappa"] * self.o + a_in


class _ReadoutFixedArith:
    def _setup_readout_arith(self) -> None:
        self._d = decay_to_int(self.proc_params["kappa"])

    def _integrate(self, a_in: np.ndarray) -> None:
        o = decay(self.o, self._d) + (a_in.astype(np.int64) << ACT_SHIFT)
        self.o[:] = wrap24(o)


class _ReadoutBase(_ReadoutStep, PyLoihiProcessModel):
    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup_readout()
        self._setup_readout_arith()

    def run_spk(self) -> None:
        self.o_out.send(self._readout_step(self.a_in.recv()))


@implements(proc=LeakyReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLeakyReadoutFloat(_ReadoutBase, _ReadoutFloatArith):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    o_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    o: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)


@implements(proc=LeakyReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLeakyReadoutFixed(_ReadoutBase, _ReadoutFixedArith):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    o_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    o: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)


class ErrorUnit(LearningNeuronProcess, AbstractProcess):
    """Error ``(f(o) - onehot(label)) · scale`` in the learning window of each sample.

    The readout's error unit (f = softmax, the output error of the cross-entropy) and
    TESS's local error units (f = softmax or identity of a layer's projected spikes).

    Parameters
    ----------
    shape : (C,)
    interval, offset, window_start, window_end : int
        As in :class:`LeakyReadout` (``offset``: the step at which the first sample's
        first input arrives here).
    scale : float
        Multiplies the error (e.g. 1 / number of learning steps).
    f : {"softmax", "identity"}
        Output function. The fixed model evaluates softmax on the dequantised input (a
        lookup table on a chip) and identity in integers:
        ``e = round((o_int - onehot / in_unit) · M · 2^-k)`` with M 2^-k ≈
        in_unit · scale / out_unit.
    in_unit : float, optional
        Fixed model: real value of one unit of ``o_in`` (default: the readout's membrane
        units 2^-(6+P)).
    out_unit : float
        Fixed model: real value of one unit of the 8-bit ``err_out`` payloads.
    learn : bool
        Initial value of the ``learn`` Var (1: send errors, 0: silent).
    precision : int
        P of the fixed readout units (fixed model).
    rule : OnChipSTLLR, optional
        Learning rule of the readout synapses (Ψ ≡ 1, λ_pre = κ, α_post = 0); None: the
        synapses it feeds do not learn.
    """

    def __init__(self, *, shape: tuple[int], interval: int, offset: int, window_start: int,
                 window_end: int, scale: float = 1.0, f: str = "softmax",
                 in_unit: float | None = None, out_unit: float = 2.0 ** -7,
                 learn: bool = True, precision: int = 7, rule=None, name: str | None = None):
        if f not in ERROR_FUNCTIONS:
            raise ValueError(f"unknown error function {f!r}; use one of {ERROR_FUNCTIONS}")
        learning_rule = rule.learning_rule() if rule is not None else None
        super().__init__(shape=shape, learning_rule=learning_rule, interval=interval,
                         offset=offset, window_start=window_start, window_end=window_end,
                         scale=scale, f=f, in_unit=in_unit, out_unit=out_unit,
                         precision=precision, rule=rule, name=name)
        self.o_in = InPort(shape=shape)
        self.label_in = InPort(shape=(1,))
        self.err_out = OutPort(shape=shape)
        self.learn = Var(shape=(1,), init=int(learn))


ERROR_FUNCTIONS = ("softmax", "identity")


class _ErrorStep:
    """The error unit's step; the arithmetic mixins provide ``_error``, ``_silent`` and
    ``_third_factor``."""

    def _setup_error(self) -> None:
        p = self.proc_params
        self._interval, self._offset = p["interval"], p["offset"]
        self._t0, self._t1 = p["window_start"], p["window_end"]
        self._scale, self._f = p["scale"], p["f"]
        self._rule = p["rule"]

    def _error_step(self, o: np.ndarray, label: int):
        """The error to send for potentials ``o`` and ``label`` (zeros outside the
        window or while not learning), and its third factors (y1, bap)."""
        t = _sample_step(self.time_step, self._interval, self._offset)
        if self.learn[0] and self._t0 <= t < self._t1:
            encoded = self._error(o, label)
        else:
            encoded = self._silent(o.shape)
        y1, bap = self._third_factor(encoded)
        return encoded, y1, bap

    def _real_error(self, z: np.ndarray, label: int) -> np.ndarray:
        """(f(z) - onehot) · scale on real values."""
        err = softmax(z) if self._f == "softmax" else np.array(z, dtype=float)
        err[label] -= 1.0
        return err * self._scale


class _ErrorFloatArith:
    def _setup_error_arith(self) -> None:
        pass

    def _error(self, o: np.ndarray, label: int) -> np.ndarray:
        return self._real_error(np.asarray(o, dtype=float), label)

    def _silent(self, shape) -> np.ndarray:
        return np.zeros(shape, dtype=float)

    def _third_factor(self, err: np.ndarray):
        if self._rule is None:
            return np.zeros_like(err), np.zeros(err.shape, dtype=bool)
        return np.abs(err) / self._rule.s1 / Y_DECAY, err > 0


class _ErrorFixedArith:
    def _setup_error_arith(self) -> None:
        p = self.proc_params
        self._in_unit = (p["in_unit"] if p["in_unit"] is not None
                         else 2.0 ** -(ACT_SHIFT + p["precision"]))
        self._out_unit = p["out_unit"]
        self._one = int(round(1.0 / self._in_unit))     # the target 1 in input units
        self._ms = mant_shift(self._in_unit * self._scale / self._out_unit)
        self._m = (0, 0)
        if self._rule is not None:   # |e_int| units -> y1 units
            self._m = mant_shift(self._out_unit / self._rule.s1)

    def _error(self, o: np.ndarray, label: int) -> np.ndarray:
        if self._f == "identity":
            num = o.astype(np.int64)
            num[label] -= self._one
            e = mul_round(num, *self._ms)
        else:
            e = np.rint(self._real_error(o * self._in_unit, label) / self._out_unit)
        return np.clip(e, -GRADED_MAX, GRADED_MAX).astype(np.int32)

    def _silent(self, shape) -> np.ndarray:
        return np.zeros(shape, dtype=np.int32)

    def _third_factor(self, err: np.ndarray):
        m, k = self._m
        y1 = np.minimum((np.abs(err.astype(np.int64)) * m) >> k, TRACE_MAX).astype(np.int32)
        return y1, err > 0


class _ErrorBase(_ErrorStep):
    def _setup(self) -> None:
        self._setup_error()
        self._setup_error_arith()

    def run_spk(self) -> None:
        o = self.o_in.recv()
        label = int(np.asarray(self.label_in.recv()).ravel()[0])
        self.a_third_factor_in.recv()
        encoded, y1, bap = self._error_step(o, label)
        self.err_out.send(encoded)
        self.s_out_bap.send(bap)
        self.s_out_y1.send(y1)
        self.s_out_y2.send(np.zeros_like(y1))
        self.s_out_y3.send(np.zeros_like(y1))


@implements(proc=ErrorUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyErrorUnitFloat(_ErrorBase, _ErrorFloatArith, LearningNeuronModelFloat):
    o_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup()


@implements(proc=ErrorUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyErrorUnitFixed(_ErrorBase, _ErrorFixedArith, LearningNeuronModelFixed):
    o_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup()
