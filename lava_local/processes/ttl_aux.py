r"""TTL-BPTT with K = 1 and b = 1 on the learning engine: a layer's auxiliary classifier.

With a window of one step and one layer per block, TTL-BPTT's update of layer l at step
t is a third factor times Ψ(u[t]) times the pre-synaptic spike of the step (the same
shape as Traces Propagation's, so the synapses run :class:`~lava_local.rules.tp.OnChipTP`
and the neuron pairs the factor with Ψ of its step, ``psi_lag = 1``):

.. math::

    o[t] = κ\, o[t-1] + A\, y[t], \quad e = \frac{\mathrm{softmax}(o[t]) - y^*}{T - T_l},
    \quad m = A^T e, \quad A \leftarrow A - η\, e\, y[t]^T

(o[t-1] is a constant: the window is one step). :class:`TTLAuxUnit` holds the layer's
classifier A (the block's auxiliary classifier, or a working copy of the readout for
the last layer, updated with the readout's own update), receives the layer's spikes and
the label in the step they happen, and sends m one step later. It learns A itself (a
small C × H matrix: a compartment or embedded-core computation).

Fixed model: A as 8-bit mantissas at its own precision p_A (stochastic rounding of the
updates, seeded), o as an integer in units 2^-p_A with a 12-bit leak, softmax by
:func:`~lava_local.fixed.int_softmax` (Q7), m = Aᵀ e as an integer in units 2^-(p_A+7)
(the 1/(T - T_l) is folded into the neuron's ``delta_unit``).
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

from lava_local.fixed import (
    PROB_BITS,
    UV_MAX,
    W_WEIGHT_MAX,
    decay,
    decay_to_int,
    int_softmax,
    weight_precision,
)
from lava_local.functional._backend import softmax


def _sample_step(time_step: int, interval: int, offset: int) -> int:
    if time_step < offset:
        return -1
    return (time_step - offset) % interval


class TTLAuxUnit(AbstractProcess):
    """A layer's classifier for TTL-BPTT with K = 1, b = 1 (see module doc).

    Parameters
    ----------
    classifier : ndarray, shape (C, H)
        A.
    kappa : float
        Leak of o.
    eta : float
        SGD step of A.
    interval, offset : int
        Sample period; the step at which the first sample's first spikes arrive here.
    window_start, n_steps : int
        T_l and T.
    rng_seed : int
        Fixed model: seed of the stochastic rounding of A.
    """

    def __init__(self, *, classifier, kappa: float, eta: float, interval: int,
                 offset: int, window_start: int, n_steps: int, rng_seed: int = 0,
                 name: str | None = None):
        classifier = np.asarray(classifier, dtype=np.float64)
        c, n = classifier.shape
        super().__init__(kappa=kappa, eta=eta, interval=interval, offset=offset,
                         window_start=window_start, n_steps=n_steps, rng_seed=rng_seed,
                         precision=weight_precision(classifier), name=name)
        self.s_in = InPort(shape=(n,))
        self.label_in = InPort(shape=(1,))
        self.m_out = OutPort(shape=(n,))
        self.classifier = Var(shape=(c, n), init=classifier)
        self.o = Var(shape=(c,), init=0)

    def learned_classifier(self) -> np.ndarray:
        """A now, real values (read before the run stops)."""
        return np.asarray(self.classifier.get(), dtype=np.float64)


class _AuxBase(PyLoihiProcessModel):
    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._n_win = p["n_steps"] - p["window_start"]
        self._m = None

    def run_spk(self) -> None:
        p = self.proc_params
        if self._m is None:
            self._m = self._zeros()
        self.m_out.send(self._m)
        y = self.s_in.recv()
        label = int(np.asarray(self.label_in.recv()).ravel()[0])
        t = _sample_step(self.time_step, p["interval"], p["offset"])
        if t == 0:
            self.o[:] = 0
        m = self._zeros()
        if 0 <= t < p["n_steps"]:
            self._integrate(y)
            if t >= p["window_start"]:
                m = self._learn(y, label)
        self._m = m


@implements(proc=TTLAuxUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyTTLAuxUnitFloat(_AuxBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    m_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    classifier: np.ndarray = LavaPyType(np.ndarray, float)
    o: np.ndarray = LavaPyType(np.ndarray, float)

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.classifier.shape[1])

    def _integrate(self, y: np.ndarray) -> None:
        self.o[:] = self.proc_params["kappa"] * self.o + self.classifier @ y

    def _learn(self, y: np.ndarray, label: int) -> np.ndarray:
        e = softmax(self.o.copy())
        e[label] -= 1.0
        e = e / self._n_win
        m = self.classifier.T @ e
        self.classifier[:] = self.classifier - self.proc_params["eta"] * np.outer(e, y)
        return m


@implements(proc=TTLAuxUnit, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTTLAuxUnitFixed(_AuxBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    m_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    classifier: np.ndarray = LavaPyType(np.ndarray, float)
    o: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._p = p["precision"]
        self._d = decay_to_int(p["kappa"])
        self._rng = np.random.default_rng([p["rng_seed"], 31])
        self._a = None

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.classifier.shape[1], dtype=np.int32)

    def _ints(self) -> np.ndarray:
        if self._a is None:
            self._a = np.clip(np.rint(self.classifier * 2.0 ** self._p), -W_WEIGHT_MAX,
                              W_WEIGHT_MAX).astype(np.int64)
        return self._a

    def _integrate(self, y: np.ndarray) -> None:
        o = decay(self.o, self._d) + self._ints() @ y.astype(np.int64)
        self.o[:] = np.clip(o, -UV_MAX, UV_MAX)

    def _learn(self, y: np.ndarray, label: int) -> np.ndarray:
        a = self._ints()
        e = int_softmax(self.o, 2.0 ** -self._p)
        e[label] -= 1 << PROB_BITS
        m = np.clip(a.T @ e, -UV_MAX, UV_MAX).astype(np.int32)
        # A -= η e y / (T - T_l), in mantissa units, stochastically rounded
        step = (self.proc_params["eta"] / self._n_win * 2.0 ** (self._p - PROB_BITS)
                * np.outer(e, y.astype(np.int64)))
        real = a - step
        low = np.floor(real)
        self._a = np.clip(low + (self._rng.random(real.shape) < real - low), -W_WEIGHT_MAX,
                          W_WEIGHT_MAX).astype(np.int64)
        self.classifier[:] = self._a * 2.0 ** -self._p
        return m
