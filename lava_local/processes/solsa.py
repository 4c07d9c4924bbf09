r"""SOLSA's neuron and synaptic filter on the Lava graph (float and fixed models).

A SOLSA layer l is ``SynapticFilter_l → (Learning)Dense_l → SOLSANeuron_l``:

- :class:`SynapticFilter` turns the layer's input spikes into the filtered input
  :math:`psp[t] = α\, psp[t-1] + β\, s[t]` (α, β per layer or per input channel) and
  sends it as a graded value; with learning it also receives the back-projected signal
  :math:`b = δ^l W^l` (through a fixed Dense of W^lᵀ), adapts its own α and β by SGD —
  :math:`α \leftarrow \mathrm{clip}(α - η\, b \cdot psp[t-1], 0, 1)`,
  :math:`β \leftarrow β - η\, b \cdot s[t]` (summed over the channels of a per-layer
  filter): the filter adaptation happens in this compartment, not on the synapses — and
  forwards :math:`b ⊙ β` to the neurons of the layer below (their third factor).
- :class:`SOLSANeuron`: current-based LIF with soft reset,
  :math:`v[t] = λ v[t-1] + a[t] - θ s[t-1]`, :math:`s = Θ(v - θ)`, Gaussian
  :math:`ε(v)`. It writes the post-dependent decay of the synapses' eligibility,
  ``y2 = (1 - λ + θ ε[t]) S2``, and the learning signal ``y1 = |δ| / S1``,
  ``bap = δ > 0`` into its learning synapses (:class:`~lava_local.rules.solsa.OnChipSOLSA`)
  and sends δ on ``delta_out``. The output layer makes δ itself,
  :math:`δ^L = \frac{2}{C}(s - y) ⊙ ε` from the label, at the scheduled steps of the
  learning window, until early stop (confident and correct); it counts spikes and
  records one prediction per sample (argmax of the window's spike counts, ties broken by
  the mean membrane). A hidden layer's δ is :math:`b β ⊙ ε` with the ε of the step the
  arriving signal belongs to (``lag`` steps before; kept in a ring buffer).
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
    to_membrane,
    wrap24,
)
from lava_local.functional.solsa import gaussian_surrogate, psp_step
from lava_local.rules.solsa import PSP_BITS, Y2_SCALE
from lava_local.rules.stllr_loihi import Y_DECAY

#: Fixed point: the filters' α and β in Q16; psp payloads saturate at 8 bits.
FILTER_Q = 16
PSP_MAX = 255
#: Fixed point: ε in units ε_max / 127 from a 256-entry table over |v - θ|.
EPS_MAX = 127


def _sample_step(time_step: int, interval: int, offset: int) -> int:
    if time_step < offset:
        return -1
    return (time_step - offset) % interval


class SynapticFilter(AbstractProcess):
    """SOLSA's synaptic filter of one layer's inputs (see module doc).

    Parameters
    ----------
    shape : (N_in,)
    alpha, beta : array, shape (1,) or (N_in,)
        Initial α, β (per layer or per channel).
    interval, offset : int
        Sample period; the step at which the first sample's first spikes arrive here.
    eta : float
        SGD step of the α/β adaptation (0: fixed filter).
    lag : int
        Steps between a step's spikes here and the arrival of its back-projected signal.
    """

    def __init__(self, *, shape: tuple[int], alpha, beta, interval: int, offset: int,
                 eta: float = 0.0, lag: int = 0, fixed: bool = False,
                 delta_unit: float = 2.0 ** -8, in_bits: int = 0, name: str | None = None):
        alpha = np.asarray(alpha, dtype=np.float64).ravel()
        beta = np.asarray(beta, dtype=np.float64).ravel()
        for v, what in ((alpha, "alpha"), (beta, "beta")):
            if v.shape not in ((1,), tuple(shape)):
                raise ValueError(f"{what} must have 1 or {shape[0]} values, got {v.shape}")
        if fixed:   # the fixed model's Q16 α and β
            alpha, beta = filter_to_q(alpha), filter_to_q(beta)
        super().__init__(shape=shape, interval=interval, offset=offset, eta=eta, lag=lag,
                         fixed=fixed, delta_unit=delta_unit, in_bits=in_bits, name=name)
        self.s_in = InPort(shape=shape)
        self.back_in = InPort(shape=shape)
        self.psp_out = OutPort(shape=shape)
        self.back_out = OutPort(shape=shape)
        self.psp = Var(shape=shape, init=0)
        self.alpha = Var(shape=alpha.shape, init=alpha)
        self.beta = Var(shape=beta.shape, init=beta)

    def learned_filter(self) -> tuple[np.ndarray, np.ndarray]:
        """(α, β) now (real values; read after a run, before it stops)."""
        a = np.asarray(self.alpha.get(), dtype=np.float64)
        b = np.asarray(self.beta.get(), dtype=np.float64)
        if self.proc_params["fixed"]:
            a, b = a * 2.0 ** -FILTER_Q, b * 2.0 ** -FILTER_Q
        return a, b


def filter_to_q(values) -> np.ndarray:
    """Real α or β -> the fixed model's Q16 integers."""
    return np.rint(np.asarray(values, dtype=np.float64) * 2.0 ** FILTER_Q).astype(np.int64)


class _FilterBase(PyLoihiProcessModel):
    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._interval, self._offset = p["interval"], p["offset"]
        self._eta, self._lag = p["eta"], p["lag"]
        self._hist: list = []          # (psp[t-1], s[t]) of the last lag + 1 steps
        self._fwd = None

    def run_spk(self) -> None:
        if self._fwd is None:
            self._fwd = self._zeros()
        self.back_out.send(self._fwd)
        s = self.s_in.recv()
        back = self.back_in.recv()
        if _sample_step(self.time_step, self._interval, self._offset) == 0:
            self.psp[:] = 0
        self._hist.append((self.psp.copy(), s.copy()))
        if len(self._hist) > self._lag + 1:
            self._hist.pop(0)
        self._step(s)
        self.psp_out.send(self._payload())
        self._fwd = self._forward(back)
        if self._eta and len(self._hist) == self._lag + 1:
            self._adapt(back, *self._hist[0])


@implements(proc=SynapticFilter, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySynapticFilterFloat(_FilterBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    back_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    psp_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    back_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    psp: np.ndarray = LavaPyType(np.ndarray, float)
    alpha: np.ndarray = LavaPyType(np.ndarray, float)
    beta: np.ndarray = LavaPyType(np.ndarray, float)

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.psp.shape)

    def _step(self, s: np.ndarray) -> None:
        self.psp[:] = psp_step(self.psp, s, self.alpha, self.beta)

    def _payload(self) -> np.ndarray:
        return self.psp.copy()

    def _forward(self, back: np.ndarray) -> np.ndarray:
        return back * self.beta

    def _adapt(self, back: np.ndarray, psp_prev: np.ndarray, s: np.ndarray) -> None:
        ga, gb = back * psp_prev, back * s
        if self.alpha.shape[0] == 1:
            ga, gb = ga.sum(keepdims=True), gb.sum(keepdims=True)
        self.alpha[:] = np.clip(self.alpha - self._eta * ga, 0.0, 1.0)
        self.beta[:] = self.beta - self._eta * gb


@implements(proc=SynapticFilter, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySynapticFilterFixed(_FilterBase):
    """Integer filter: psp in units 2^-PSP_BITS (8-bit payloads, saturating), α and β
    kept in Q16 (the adaptation's resolution), the decay as ``psp · α >> 16``; the
    back signal b in the units of the neurons' δ (``delta_unit``)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    back_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    psp_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    back_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    psp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    alpha: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=17)
    beta: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._in_shift = FILTER_Q - PSP_BITS + p["in_bits"]
        # α/β step: η · b · psp (units δ · 2^-PSP_BITS), η · b · s (units δ · in) in Q16
        self._ma = mant_shift(self._eta * p["delta_unit"] * 2.0 ** (FILTER_Q - PSP_BITS))
        self._mb = mant_shift(self._eta * p["delta_unit"] * 2.0 ** (FILTER_Q - p["in_bits"]))

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.psp.shape, dtype=np.int32)

    def _step(self, s: np.ndarray) -> None:
        self.psp[:] = filter_step_int(self.psp, s, self.alpha, self.beta, self._in_shift)

    def _payload(self) -> np.ndarray:
        return self.psp.copy()

    def _forward(self, back: np.ndarray) -> np.ndarray:
        return ((back.astype(np.int64) * self.beta) >> FILTER_Q).astype(np.int32)

    def _adapt(self, back: np.ndarray, psp_prev: np.ndarray, s: np.ndarray) -> None:
        ga = back.astype(np.int64) * psp_prev
        gb = back.astype(np.int64) * s
        if self.alpha.shape[0] == 1:
            ga, gb = ga.sum(keepdims=True), gb.sum(keepdims=True)
        self.alpha[:] = np.clip(self.alpha - mul_round(ga, *self._ma), 0, 1 << FILTER_Q)
        self.beta[:] = self.beta - mul_round(gb, *self._mb)


def filter_step_int(psp, s, alpha_q, beta_q, in_shift: int) -> np.ndarray:
    """``psp = min((psp · α >> 16) + (β · s >> in_shift), 255)`` (α, β in Q16)."""
    new = ((np.asarray(psp, dtype=np.int64) * alpha_q) >> FILTER_Q) \
        + ((beta_q * np.asarray(s, dtype=np.int64)) >> in_shift)
    return np.clip(new, 0, PSP_MAX).astype(np.int32)


class SOLSANeuron(LearningNeuronProcess, AbstractProcess):
    """SOLSA's current-based LIF neurons (see module doc).

    Parameters
    ----------
    shape : (n,)
    lam, theta, sigma : float
        Leak λ, threshold θ (= the soft-reset amount), Gaussian width σ.
    interval, offset : int
        Sample period; the step at which the first sample reaches these neurons.
    window_start, n_steps : int
        T_l and T.
    output : bool
        The output layer: δ from the label, spike counts, predictions.
    rule : OnChipSOLSA, optional
        The learning rule of the synapses into these neurons (None: no learning).
    lag : int
        Hidden layers: steps between a step and the arrival of its signal.
    schedule : sequence of int, optional
        Output layer: the steps that learn (default: the whole window).
    early_stop : bool
        Output layer: stop learning on a sample once it is classified correctly with
        confidence >= ``confidence`` (spike counts from the sample's start).
    n_samples : int
        Output layer: size of the prediction record.
    precision, delta_unit
        Fixed model: P of the membrane units and the real value of one unit of δ.
    """

    def __init__(self, *, shape: tuple[int], lam: float, theta: float, sigma: float,
                 interval: int, offset: int, window_start: int, n_steps: int,
                 output: bool = False, rule=None, lag: int = 0, schedule=None,
                 early_stop: bool = False, confidence: float = 0.9, n_samples: int = 1,
                 precision: int = 7, delta_unit: float = 2.0 ** -8,
                 name: str | None = None):
        learning_rule = rule.learning_rule() if rule is not None else None
        sched = tuple(range(window_start, n_steps)) if schedule is None else \
            tuple(int(t) for t in schedule)
        super().__init__(shape=shape, learning_rule=learning_rule, lam=lam, theta=theta,
                         sigma=sigma, interval=interval, offset=offset,
                         window_start=window_start, n_steps=n_steps, output=output,
                         rule=rule, lag=lag, schedule=sched, early_stop=early_stop,
                         confidence=confidence, precision=precision,
                         delta_unit=delta_unit, name=name)
        self.a_in = InPort(shape=shape)
        self.label_in = InPort(shape=(1,))
        self.s_out = OutPort(shape=shape)
        self.delta_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=0)
        self.s = Var(shape=shape, init=0)
        self.predictions = Var(shape=(n_samples,), init=-1)
        self.n_done = Var(shape=(1,), init=0)
        self.learn = Var(shape=(1,), init=int(rule is not None))


class _NeuronBase:
    def _setup(self) -> None:
        p = self.proc_params
        self._interval, self._offset = p["interval"], p["offset"]
        self._t0, self._T = p["window_start"], p["n_steps"]
        self._output, self._rule, self._lag = p["output"], p["rule"], p["lag"]
        self._sched = set(p["schedule"])
        self._eps_hist: list = []
        n = p["shape"][0]
        self._counts = np.zeros(n)          # spike counts from the sample's start
        self._counts_win = np.zeros(n)      # ... in the window (the prediction)
        self._vsum = np.zeros(n)
        self._active = True

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        back = self.a_third_factor_in.recv()
        label = int(np.asarray(self.label_in.recv()).ravel()[0])
        t = _sample_step(self.time_step, self._interval, self._offset)
        if t == 0:
            self.v[:] = 0
            self.s[:] = 0
            self._counts[:] = 0
            self._counts_win[:] = 0
            self._vsum[:] = 0
            self._active = True
            self._eps_hist = []
        eps = self._integrate(a_in)
        self._eps_hist.append(eps)
        if len(self._eps_hist) > self._lag + 1:
            self._eps_hist.pop(0)
        if self._output:
            delta = self._output_step(t, label, eps)
        else:
            delta = self._hidden_delta(back)
        self.s_out.send(self.s.copy())
        self.delta_out.send(delta)
        # the step before a sample: full decay, so the synapses' eligibility starts at 0
        restart = _sample_step(self.time_step + 1, self._interval, self._offset) == 0
        y1, y2, bap = self._third_factors(delta, eps, restart)
        self.s_out_bap.send(bap)
        self.s_out_y1.send(y1)
        self.s_out_y2.send(y2)
        self.s_out_y3.send(np.zeros_like(y1))

    def _output_step(self, t: int, label: int, eps):
        """Counts, the prediction record, δ^L and early stop."""
        in_sample = 0 <= t < self._T
        if in_sample:
            self._counts += self.s
        if in_sample and t >= self._t0:
            self._counts_win += self.s
            self._vsum += self._v_real()
        if t == self._T - 1:
            k = int(self.n_done[0])
            if k < self.predictions.shape[0]:
                self.predictions[k] = self._prediction()
            self.n_done[0] = k + 1
        delta = self._zeros()
        if not (in_sample and t >= self._t0 and self._rule is not None and self.learn[0]):
            return delta
        if self._active and t in self._sched:
            delta = self._output_delta(label, eps)
        if self.proc_params["early_stop"] and self._active:
            c = self._counts
            total = c.sum()
            if total > 0 and int(np.argmax(c)) == label and \
                    c.max() / total >= self.proc_params["confidence"]:
                self._active = False
        return delta


@implements(proc=SOLSANeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySOLSANeuronFloat(_NeuronBase, LearningNeuronModelFloat):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    delta_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    s: np.ndarray = LavaPyType(np.ndarray, float)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup()
        p = self.proc_params
        self._lam, self._theta, self._sigma = p["lam"], p["theta"], p["sigma"]

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.v.shape)

    def _v_real(self) -> np.ndarray:
        return self.v

    def _prediction(self) -> int:
        """SOLSANet's rule: the window's spike counts, ties broken by the mean membrane."""
        n = max(1, self._T - self._t0)
        return int(np.argmax(self._counts_win + 1e-3 * np.tanh(self._vsum / n)))

    def _integrate(self, a_in: np.ndarray) -> np.ndarray:
        v = self._lam * self.v + a_in - self._theta * self.s
        self.v[:] = v
        self.s[:] = (v > self._theta).astype(float)
        return gaussian_surrogate(v, self._theta, self._sigma)

    def _output_delta(self, label: int, eps: np.ndarray) -> np.ndarray:
        onehot = np.zeros(self.v.shape)
        onehot[label] = 1.0
        return 2.0 * (self.s - onehot) / onehot.shape[0] * eps

    def _hidden_delta(self, back: np.ndarray) -> np.ndarray:
        if len(self._eps_hist) < self._lag + 1:
            return self._zeros()
        return back * self._eps_hist[0]

    def _third_factors(self, delta: np.ndarray, eps: np.ndarray, restart: bool):
        if self._rule is None:
            z = self._zeros()
            return z, z, np.zeros(self.v.shape, dtype=bool)
        y1, y2, bap = self._rule.third_factors(delta, eps)
        if restart:
            y2 = np.full_like(y2, self._rule.s2)
        return y1 / Y_DECAY, y2 / Y_DECAY, bap


def eps_table(sigma: float, theta: float, precision: int) -> tuple[np.ndarray, int]:
    """The fixed neuron's Gaussian ε: ``EPS_TABLE[min(|v - θ| >> shift, 255)]`` in units
    ε_max / 127 (ε_max = 1 / (√(2π) σ)); 256 entries cover 4σ."""
    unit = 2.0 ** -(ACT_SHIFT + precision)
    shift = max(0, int(np.ceil(np.log2(4.0 * sigma / unit / 256.0))))
    d = np.arange(256) * 2.0 ** shift * unit
    return np.rint(EPS_MAX * np.exp(-d * d / (2.0 * sigma * sigma))).astype(np.int64), shift


def y2_constants(lam: float, theta: float, sigma: float) -> tuple[int, int]:
    """(A, B) of the fixed neuron's ``y2 = (A + B ε + 2^11) >> 12`` ≈ 64 (1 - λ + θ ε)."""
    eps_unit = 1.0 / (np.sqrt(2 * np.pi) * sigma) / EPS_MAX
    return (int(round((1.0 - lam) * Y2_SCALE * 4096)),
            int(round(theta * eps_unit * Y2_SCALE * 4096)))


@implements(proc=SOLSANeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySOLSANeuronFixed(_NeuronBase, LearningNeuronModelFixed):
    """Integer neurons: v in the 24-bit units 2^-(6+P) of :mod:`lava_local.fixed` (12-bit
    leak, θ quantised), ε from :func:`eps_table` (7 bits), δ as 8-bit graded payloads in
    units ``delta_unit``, y1 = |δ| M1 >> k1 and y2 from :func:`y2_constants` (7 bits);
    ties of the spike counts are broken by the summed membrane, as in float."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    delta_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    s: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)
    learn: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self._setup()
        p = self.proc_params
        P, sigma = p["precision"], p["sigma"]
        self._d = decay_to_int(p["lam"])
        self._th = int(to_membrane(p["theta"], P))
        self._table, self._shift = eps_table(sigma, p["theta"], P)
        self._y2 = y2_constants(p["lam"], p["theta"], sigma)
        eps_unit = 1.0 / (np.sqrt(2 * np.pi) * sigma) / EPS_MAX
        du, n = p["delta_unit"], p["shape"][0]
        self._m_out = mant_shift(2.0 / n * eps_unit / du)    # (s - y) ε -> δ units
        self._m_hid = mant_shift(eps_unit)                    # b ε -> δ units
        self._m1 = mant_shift(du / self._rule.s1) if self._rule is not None else (0, 0)

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.v.shape, dtype=np.int32)

    def _v_real(self) -> np.ndarray:
        return self.v.astype(np.int64)

    def _integrate(self, a_in: np.ndarray) -> np.ndarray:
        v = wrap24(decay(self.v, self._d) + (a_in.astype(np.int64) << ACT_SHIFT)
                   - self._th * self.s.astype(np.int64))
        self.v[:] = v
        self.s[:] = (v > self._th).astype(np.int32)
        idx = np.minimum(np.abs(v - self._th) >> self._shift, 255)
        return self._table[idx]

    def _prediction(self) -> int:
        n = self._counts.shape[0]
        return max(range(n), key=lambda i: (self._counts_win[i], self._vsum[i]))

    def _output_delta(self, label: int, eps: np.ndarray) -> np.ndarray:
        err = self.s.astype(np.int64).copy()
        err[label] -= 1
        return np.clip(mul_round(err * eps, *self._m_out), -GRADED_MAX,
                       GRADED_MAX).astype(np.int32)

    def _hidden_delta(self, back: np.ndarray) -> np.ndarray:
        if len(self._eps_hist) < self._lag + 1:
            return self._zeros()
        return np.clip(mul_round(back.astype(np.int64) * self._eps_hist[0], *self._m_hid),
                       -GRADED_MAX, GRADED_MAX).astype(np.int32)

    def _third_factors(self, delta: np.ndarray, eps: np.ndarray, restart: bool):
        if self._rule is None:
            z = self._zeros()
            return z, z, np.zeros(self.v.shape, dtype=bool)
        m1, k1 = self._m1
        y1 = np.minimum((np.abs(delta.astype(np.int64)) * m1) >> k1, TRACE_MAX)
        a, b = self._y2
        y2 = np.full(eps.shape, Y2_SCALE) if restart else (a + b * eps + 2048) >> 12
        return y1.astype(np.int32), np.minimum(y2, TRACE_MAX).astype(np.int32), delta > 0
