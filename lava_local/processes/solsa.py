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
from lava.magma.core.model.py.neuron import LearningNeuronModelFloat
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.neuron import LearningNeuronProcess
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_local.functional.solsa import gaussian_surrogate, psp_step
from lava_local.rules.stllr_loihi import Y_DECAY


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
                 eta: float = 0.0, lag: int = 0, name: str | None = None):
        alpha = np.asarray(alpha, dtype=np.float64).ravel()
        beta = np.asarray(beta, dtype=np.float64).ravel()
        for v, what in ((alpha, "alpha"), (beta, "beta")):
            if v.shape not in ((1,), tuple(shape)):
                raise ValueError(f"{what} must have 1 or {shape[0]} values, got {v.shape}")
        super().__init__(shape=shape, interval=interval, offset=offset, eta=eta, lag=lag,
                         name=name)
        self.s_in = InPort(shape=shape)
        self.back_in = InPort(shape=shape)
        self.psp_out = OutPort(shape=shape)
        self.back_out = OutPort(shape=shape)
        self.psp = Var(shape=shape, init=0)
        self.alpha = Var(shape=alpha.shape, init=alpha)
        self.beta = Var(shape=beta.shape, init=beta)

    def learned_filter(self) -> tuple[np.ndarray, np.ndarray]:
        """(α, β) now (real values; read after a run, before it stops)."""
        return (np.asarray(self.alpha.get(), dtype=np.float64),
                np.asarray(self.beta.get(), dtype=np.float64))


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
    """

    def __init__(self, *, shape: tuple[int], lam: float, theta: float, sigma: float,
                 interval: int, offset: int, window_start: int, n_steps: int,
                 output: bool = False, rule=None, lag: int = 0, schedule=None,
                 early_stop: bool = False, confidence: float = 0.9, n_samples: int = 1,
                 name: str | None = None):
        learning_rule = rule.learning_rule() if rule is not None else None
        sched = tuple(range(window_start, n_steps)) if schedule is None else \
            tuple(int(t) for t in schedule)
        super().__init__(shape=shape, learning_rule=learning_rule, lam=lam, theta=theta,
                         sigma=sigma, interval=interval, offset=offset,
                         window_start=window_start, n_steps=n_steps, output=output,
                         rule=rule, lag=lag, schedule=sched, early_stop=early_stop,
                         confidence=confidence, name=name)
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
                score = self._counts_win + 1e-3 * np.tanh(
                    self._vsum / max(1, self._T - self._t0))
                self.predictions[k] = int(np.argmax(score))
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
