r"""The S-TLLR learning neuron: LIF with soft reset that computes its own third factors.

Each step σ the neuron

1. (at the first step of a sample) resets u, y, h to 0;
2. integrates :math:`u = γ (u - v_{th} y) + a_{in}`, spikes :math:`y = Θ(u - v_{th})`;
3. evaluates :math:`Ψ(u)`, the post trace of the next step
   :math:`h' = λ_{post} h + Ψ(u)` and :math:`\tilde h' = λ_{post} h'` ("paper") or
   :math:`h'` ("code");
4. reads the learning signal δ arriving on ``a_third_factor_in`` and, when a learning
   rule is attached, sends ``y1 = |δ| Ψ(u)/S1``, ``y2 = |δ| \tilde h'/S2`` and
   ``bap = δ > 0`` to its learning synapses (see
   :mod:`lava_local.rules.stllr_loihi`); it always sends its spikes on ``s_out``.
   With ``psi_lag = 1`` the δ that arrives is the signal of the previous step (it was
   computed from that step's spikes) and is paired with that step's Ψ(u)
   (Traces Propagation).

The float model sends the third factors divided by Lava's in-epoch post-trace decay
exp(-1/65535), so the float learning engine sees them exactly. The fixed model works in
the integer units of :mod:`lava_local.fixed` (24-bit membrane, 12-bit decays, 7-bit
third factors); its Ψ is the triangle surrogate evaluated in integers.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
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
    TRACE_MAX,
    decay_to_int,
    lif_step_int,
    mant_shift,
    to_membrane,
)
from lava_local.functional.lif import LIFState, lif_step
from lava_local.functional.stllr import noncausal_trace
from lava_local.functional.surrogates import get_surrogate
from lava_local.functional.traces import post_trace_step
from lava_local.rules.stllr_loihi import Y_DECAY, OnChipSTLLR


def _is_reset_step(time_step: int, interval: int, offset: int) -> bool:
    return interval > 0 and (time_step - offset) % interval == 0


class STLLRNeuron(LearningNeuronProcess, AbstractProcess):
    """LIF neurons (soft reset) that send S-TLLR third factors to learning synapses.

    Parameters
    ----------
    shape : tuple of int
        (n,) neurons.
    gamma, v_th : float
        Leak and threshold (real units; the fixed model quantises them).
    lam_post : float
        Post-trace decay λ_post.
    post_form : {"paper", "code"}
    surrogate : str
        Ψ; the fixed model supports "triangle" only.
    rule : OnChipSTLLR, optional
        Constants of the attached learning rule (None: no learning, no third factors).
    precision : int
        P of the fixed membrane units (u_real = u_int · 2^-(6+P)); fixed model only.
    delta_unit : float
        Real value of one unit of the integer learning signal (δ_real = δ_int ·
        delta_unit); fixed model only.
    reset_interval, reset_offset : int
        Reset state at steps σ with (σ - offset) % interval == 0 (interval 0: never).
    psi_lag : {0, 1}
        Pair the arriving δ with Ψ(u) of this step (0) or of the previous step (1).
    n_active : int
        Spike only in the first ``n_active`` steps of each sample (0: always): a
        recurrent layer is silent between samples, so its own spikes cannot carry one
        sample into the next.
    """

    def __init__(self, *, shape: tuple[int, ...], gamma: float, v_th: float,
                 lam_post: float = 0.2, post_form: str = "paper", surrogate: str = "triangle",
                 rule: OnChipSTLLR | None = None, precision: int = 7,
                 delta_unit: float = 2.0 ** -7, reset_interval: int = 0,
                 reset_offset: int = 0, psi_lag: int = 0, n_active: int = 0,
                 name: str | None = None):
        if psi_lag not in (0, 1):
            raise ValueError(f"psi_lag must be 0 or 1, got {psi_lag}")
        learning_rule = rule.learning_rule() if rule is not None else None
        super().__init__(shape=shape, learning_rule=learning_rule, gamma=gamma, v_th=v_th,
                         lam_post=lam_post, post_form=post_form, surrogate=surrogate,
                         rule=rule, precision=precision, delta_unit=delta_unit,
                         reset_interval=reset_interval, reset_offset=reset_offset,
                         psi_lag=psi_lag, n_active=n_active, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.y = Var(shape=shape, init=0)
        self.h = Var(shape=shape, init=0)


class _STLLRNeuronBase:
    """Shared step logic; subclasses implement the arithmetic."""

    def _params(self) -> None:
        p = self.proc_params
        self._rule: OnChipSTLLR | None = p["rule"]
        self._interval, self._offset = p["reset_interval"], p["reset_offset"]
        self._lag = p.get("psi_lag", 0)
        self._psi_now = self._psi_prev = None

    def _psi_paired(self):
        """Ψ(u) of the step the arriving δ belongs to."""
        return self._psi_prev if self._lag else self._psi_now

    def run_spk(self) -> None:
        spikes, y1, y2, bap = self._neuron_step(self.a_in.recv(),
                                                self.a_third_factor_in.recv())
        self.s_out.send(spikes)
        self.s_out_bap.send(bap)
        self.s_out_y1.send(y1)
        self.s_out_y2.send(y2)
        self.s_out_y3.send(np.zeros_like(y1))

    def _neuron_step(self, a_in: np.ndarray, delta: np.ndarray):
        """One step of the neuron from its input ``a_in`` and learning signal ``delta``:
        (spikes, y1, y2, bap) to send (the arithmetic of the subclass)."""
        if _is_reset_step(self.time_step, self._interval, self._offset):
            self.u[:] = 0
            self.y[:] = 0
            self.h[:] = 0
        self._psi_prev = self._psi_now
        self._integrate(a_in)
        n_active = self.proc_params.get("n_active", 0)
        if n_active and self._interval > 0:
            t = self.time_step - self._offset
            if t < 0 or t % self._interval >= n_active:
                self.y[:] = 0
        if self._psi_prev is None:
            self._psi_prev = np.zeros_like(self._psi_now)
        y1, y2, bap = self._third_factors(delta)
        return self.y.copy(), y1, y2, bap


class _FloatArith:
    """The float model's arithmetic: the functional core's equations, step by step."""

    def _setup_arith(self) -> None:
        p = self.proc_params
        self._gamma, self._v_th = p["gamma"], p["v_th"]
        self._lam_post, self._post_form = p["lam_post"], p["post_form"]
        self._psi = get_surrogate(p["surrogate"])

    def _integrate(self, a_in: np.ndarray) -> None:
        s = lif_step(LIFState(self.u, self.y), a_in, self._gamma, self._v_th)
        self.u[:] = s.u
        self.y[:] = s.y
        self._psi_now = self._psi(self.u, self._v_th)

    def _third_factors(self, delta: np.ndarray):
        h_next = post_trace_step(self.h, self._psi_now, self._lam_post)
        h_eff = noncausal_trace(h_next, self._lam_post, self._post_form)
        self.h[:] = h_next
        if self._rule is None:
            z = np.zeros_like(self.u)
            return z, z, np.zeros(self.u.shape, dtype=bool)
        y1, y2, bap = self._rule.third_factors(delta, self._psi_paired(), h_eff)
        return y1 / Y_DECAY, y2 / Y_DECAY, bap


class _FixedArith:
    """The fixed model's arithmetic in Loihi 2 integer ranges (see
    :class:`PySTLLRNeuronFixed`)."""

    def _setup_arith(self) -> None:
        p = self.proc_params
        if p["surrogate"] != "triangle":
            raise ValueError("the fixed-point S-TLLR neuron implements the triangle "
                             f"surrogate only, got {p['surrogate']!r}; train with "
                             "--surrogate triangle to run in fixed point")
        self._P = p["precision"]
        self._d_gamma = decay_to_int(p["gamma"])
        self._vth = int(to_membrane(p["v_th"], self._P))
        self._one = 2 ** (ACT_SHIFT + self._P)
        self._lam_post_int = int(round(p["lam_post"] * 4096))
        self._post_form = p["post_form"]
        self._scales = None
        if self._rule is not None:
            # real value of one unit of |δ|·ψ (resp. |δ|·h): delta_unit · 0.3/128
            unit = p["delta_unit"] * 0.3 / 128
            self._scales = (mant_shift(unit / self._rule.s1),
                            mant_shift(unit / self._rule.s2) if self._rule.s2 else (0, 0))

    def _integrate(self, a_in: np.ndarray) -> None:
        u, y = lif_step_int(self.u, self.y, a_in, self._d_gamma, self._vth)
        self.u[:] = u
        self.y[:] = y
        d = np.abs(u - self._vth)
        self._psi_now = np.right_shift(np.maximum(self._one - d, 0), self._P - 1)

    def _third_factors(self, delta: np.ndarray):
        h_next = ((self.h.astype(np.int64) * self._lam_post_int) >> 12) + self._psi_now
        h_eff = (h_next * self._lam_post_int) >> 12 if self._post_form == "paper" else h_next
        self.h[:] = h_next
        if self._rule is None:
            z = np.zeros(self.u.shape, dtype=np.int32)
            return z, z, np.zeros(self.u.shape, dtype=bool)
        mag = np.abs(delta.astype(np.int64))
        (m1, k1), (m2, k2) = self._scales
        y1 = np.minimum((mag * self._psi_paired() * m1) >> k1, TRACE_MAX).astype(np.int32)
        y2 = np.minimum((mag * h_eff * m2) >> k2, TRACE_MAX).astype(np.int32)
        return y1, y2, delta > 0


@implements(proc=STLLRNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySTLLRNeuronFloat(_STLLRNeuronBase, _FloatArith, LearningNeuronModelFloat):
    """Float model: the functional core's equations, step by step."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)
    h: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._params()
        self._setup_arith()


@implements(proc=STLLRNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySTLLRNeuronFixed(_STLLRNeuronBase, _FixedArith, LearningNeuronModelFixed):
    """Fixed model in Loihi 2 integer ranges (see :mod:`lava_local.fixed`).

    Ψ (triangle) in 7 bits: ψ = max(2^(6+P) - |u - v_th|, 0) >> (P - 1), i.e. 128 at
    threshold (Ψ_real = 0.3 ψ / 128). The post trace h is kept with 7 fractional bits
    (same units as ψ). y1 = |δ| ψ · M1 >> k1 and y2 = |δ| h̃ · M2 >> k2, saturated to 7
    bits, with (M, k) the 8-bit mantissa/shift closest to the real scale.
    """

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    y: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    h: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._params()
        self._setup_arith()
