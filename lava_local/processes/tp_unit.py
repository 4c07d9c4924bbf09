r"""Traces Propagation's prototype unit: the learning signal of one hidden layer.

Each step σ the unit

1. sends the learning signal m it computed at step σ-1 (so the neuron gets the signal
   of its step t one step later, and pairs it with its Ψ(u[t]): ``psi_lag = 1``);
2. receives the layer's spikes y[t] and the label k (from the dataloader);
3. (at the first step of a sample) zeroes its trace; in the sample's T steps updates the
   layer trace :math:`ε[t] = β ε[t-1] + y[t]` and, in the learning window, computes

   .. math::

       m = s\, P[t]^T \left(\mathrm{softmax}(P[t]\, ε[t]) - Y[t]_{k}\right)

   with the prototypes P[t] (C × H: the label path's traces of the C classes at sample
   step t) and the soft targets Y[t] (C × C, row k for label k) it holds
   (:mod:`lava_local.functional.tp`, prototype contrast), and s = 1/(T - T_l).

Float model: the functional core's :func:`~lava_local.functional.tp.tp_prototype_signal`.
Fixed model (the integer arithmetic of a Loihi 2 embedded core): ε in units 2^-7 with
the 12-bit decay of :mod:`lava_local.fixed`, prototypes in the same units, the C
similarities as integer dot products (units 2^-14), :func:`~lava_local.fixed.int_softmax`
(Q7), soft targets in Q7, and :math:`m = P^T e` as an integer in units 2^-14 (the scale s
is folded into the neuron's ``delta_unit``), saturated to a 24-bit graded payload.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_local.fixed import UV_MAX, decay, decay_to_int, int_softmax
from lava_local.functional.tp import tp_prototype_signal

#: Fixed model: ε and the prototypes in units of 2^-7 (one spike = 128).
EPS_BITS = 7


def _sample_step(time_step: int, interval: int, offset: int) -> int:
    if time_step < offset:
        return -1
    return (time_step - offset) % interval


def check_tables(prototypes, targets, n: int) -> None:
    """Refuse prototypes (T, C, H) and targets (T, C, C) that do not fit a layer of
    ``n`` neurons."""
    p_shape, t_shape = np.shape(prototypes), np.shape(targets)
    if len(p_shape) != 3 or p_shape[2] != n or t_shape != (*p_shape[:2], p_shape[1]):
        raise ValueError(f"prototypes {p_shape} / targets {t_shape} do not fit a layer of "
                         f"{n} neurons")


#: A prototype unit's settings: :class:`TPUnit`'s keyword parameters but its shape, name
#: and ``learn`` (the layer that builds one in, LearningLIFLayer, takes these).
TP_UNIT_KEYS = ("prototypes", "targets", "beta", "interval", "offset", "window_start",
                "scale")


class TPUnit(AbstractProcess):
    """Prototype contrast of one hidden layer (see module doc).

    Parameters
    ----------
    shape : (H,)
        The layer's neurons.
    prototypes : ndarray, shape (T, C, H)
        P[t] (float: real traces; fixed: integers in units 2^-7).
    targets : ndarray, shape (T, C, C)
        Y[t] (float: probabilities; fixed: Q7 integers).
    beta : float
        Trace decay β.
    interval, offset : int
        Sample period and the step at which the first sample's first spikes arrive here.
    window_start : int
        T_l: the first step that learns.
    scale : float
        s (float model; the fixed model leaves it to the neuron's ``delta_unit``).
    learn : bool
        Initial value of the ``learn`` Var (0: silent).
    """

    def __init__(self, *, shape: tuple[int], prototypes: np.ndarray, targets: np.ndarray,
                 beta: float, interval: int, offset: int, window_start: int,
                 scale: float = 1.0, learn: bool = True, name: str | None = None):
        check_tables(prototypes, targets, tuple(shape)[0])
        super().__init__(shape=shape, prototypes=prototypes, targets=targets, beta=beta,
                         interval=interval, offset=offset, window_start=window_start,
                         scale=scale, name=name)
        self.s_in = InPort(shape=shape)
        self.label_in = InPort(shape=(1,))
        self.m_out = OutPort(shape=shape)
        self.eps = Var(shape=shape, init=0)
        self.learn = Var(shape=(1,), init=int(learn))


class _TPStep:
    """The unit's step on its own state (``eps``, ``learn``, ``time_step``,
    ``proc_params``): shared by its ProcessModels and the layer that builds the unit in
    (:class:`~lava_local.processes.LearningLIFLayer`)."""

    def _setup_tp(self) -> None:
        p = self.proc_params
        self._P, self._Y = p["prototypes"], p["targets"]
        self._interval, self._offset = p["interval"], p["offset"]
        self._t0, self._n_steps = p["window_start"], self._P.shape[0]
        self._setup_tp_arith()

    def _tp_step(self, y: np.ndarray, label: int) -> np.ndarray:
        """The learning signal m of this step from the layer's spikes ``y`` and the
        label (zeros outside the sample's learning window)."""
        t = _sample_step(self.time_step, self._interval, self._offset)
        if t == 0:
            self.eps[:] = 0
        m = self._zeros()
        if 0 <= t < self._n_steps:
            self._trace(y)
            if self.learn[0] and t >= self._t0:
                m = self._signal(t, label)
        return m


class _TPFloatArith:
    _eps_dtype = float

    def _setup_tp_arith(self) -> None:
        pass

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.eps.shape, dtype=float)

    def _trace(self, y: np.ndarray) -> None:
        self.eps[:] = self.proc_params["beta"] * self.eps + y

    def _signal(self, t: int, label: int) -> np.ndarray:
        m = tp_prototype_signal(self.eps[None, :], self._P[t], self._Y[t][label][None, :])
        return m[0] * self.proc_params["scale"]


class _TPFixedArith:
    _eps_dtype = np.int32

    def _setup_tp_arith(self) -> None:
        self._d = decay_to_int(self.proc_params["beta"])
        self._P = np.asarray(self._P, dtype=np.int64)
        self._Y = np.asarray(self._Y, dtype=np.int64)

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.eps.shape, dtype=np.int32)

    def _trace(self, y: np.ndarray) -> None:
        self.eps[:] = decay(self.eps, self._d) + (y.astype(np.int64) << EPS_BITS)

    def _signal(self, t: int, label: int) -> np.ndarray:
        return tp_fixed_signal(self.eps, self._P[t], self._Y[t][label])


class _TPUnitBase(_TPStep, PyLoihiProcessModel):
    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup_tp()
        self._m = None

    def run_spk(self) -> None:
        if self._m is None:
            self._m = self._zeros()
        self.m_out.send(self._m)
        y = self.s_in.recv()
        label = int(np.asarray(self.label_in.recv()).ravel()[0])
        self._m = self._tp_step(y, label)


@implements(proc=TPUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyTPUnitFloat(_TPFloatArith, _TPUnitBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    m_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    eps: np.ndarray = LavaPyType(np.ndarray, float)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)


@implements(proc=TPUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTPUnitFixed(_TPFixedArith, _TPUnitBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    m_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    eps: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)


def tp_fixed_signal(eps: np.ndarray, protos: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The fixed unit's m (units 2^-14) from ε and P (units 2^-7) and targets (Q7)."""
    z = protos @ eps.astype(np.int64)
    e = int_softmax(z, 2.0 ** (-2 * EPS_BITS)) - targets
    return np.clip(protos.T @ e, -UV_MAX, UV_MAX).astype(np.int32)
