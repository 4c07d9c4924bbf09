r"""TTL-BPTT's on-graph form: one Process per block of b layers.

A :class:`TTLBlock` holds its layers' weights and its classifier (an auxiliary leaky
classifier, or the network's readout for the last block). Every step it receives the
block's input spikes (the previous block's output, detached by construction: nothing
flows back between Processes), advances its LIF layers (soft reset) and classifier
:math:`o[t] = κ o[t-1] + W_c y[t]`, sends the last layer's spikes on, and keeps the
window's inputs and states. At the end of each window of K steps (and of the sample) it
back-propagates the window's per-step cross-entropy losses (learning window only,
divided by T - T_l) through time and through its own layers — states entering the window
and the block input are constants, the reset term carries no gradient — and takes an SGD
step of η (``update="window"``), or accumulates to the end of the sample (``"sample"``).
The last block also records one prediction per sample (argmax of Σ o over the window).

This is the batched trainer's computation, written out in numpy (forward and reverse
mode by hand, float64), so it is tested against the torch trainer's autograd.

Fixed model: the forward pass in the integer units of :mod:`lava_local.fixed` (8-bit
weight mantissas per matrix, 24-bit membranes and classifier potentials, 12-bit decays);
the window's gradient is computed in floating point from the dequantised states (an
embedded-core or host computation: Loihi 2's learning engine has no BPTT) and the weights
are written back as 8-bit mantissas with stochastic rounding (seeded).
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
    ACT_SHIFT,
    W_WEIGHT_MAX,
    decay,
    decay_to_int,
    lif_step_int,
    to_membrane,
    weight_precision,
    wrap24,
)
from lava_local.functional._backend import softmax
from lava_local.functional.surrogates import get_surrogate


def _flat(mats: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in mats])


def _split(flat: np.ndarray, shapes: list[tuple]) -> list[np.ndarray]:
    """The matrices of ``flat``: views where ``flat`` is a float64 array (writing into
    them writes into ``flat``)."""
    out, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(np.asarray(flat[i:i + n], dtype=np.float64).reshape(s))
        i += n
    return out


def _mantissas(w: np.ndarray, precision: int) -> np.ndarray:
    """Real weights rounded to the block's integer mantissas (units 2^-precision)."""
    return np.clip(np.rint(w * 2.0 ** precision), -W_WEIGHT_MAX, W_WEIGHT_MAX).astype(np.int64)


def _columns(cols):
    """The column index of a :func:`_column_grad` result (every column for None)."""
    return slice(None) if cols is None else cols


def _column_grad(delta: np.ndarray, inputs: np.ndarray) -> tuple:
    r"""A weight's window gradient :math:`\sum_t δ[t] \otimes x[t]` (δ and x stacked by
    step) on the columns whose input is non-zero at some step of the window: ``(g,
    cols)``, ``cols`` None when that is every column. The other columns' gradient is
    exactly zero (sparse spike inputs: most of a wide layer's columns in a short window)."""
    cols = np.flatnonzero(inputs.any(axis=0))
    if cols.size == inputs.shape[1]:
        return delta.T @ inputs, None
    return delta.T @ inputs[:, cols], cols


def _add_column_grads(a: tuple, b: tuple, width: int) -> tuple:
    """The sum of two :func:`_column_grad` results over the union of their columns."""
    (ga, ca), (gb, cb) = a, b
    cols = None if ca is None or cb is None else np.union1d(ca, cb)
    out = np.zeros((ga.shape[0], width if cols is None else cols.size))
    for g, c in ((ga, ca), (gb, cb)):
        out[:, _columns(c) if cols is None else np.searchsorted(cols, c)] += g
    return out, cols


class TTLBlock(AbstractProcess):
    """One TTL-BPTT block on the graph (see module doc).

    Parameters
    ----------
    weights : list of ndarray
        The block's layer weights (N_l, N_{l-1}), then its classifier (C, N_last).
    gamma, v_th, kappa : float
    surrogate : str
    trunc : int
        K (window length).
    n_steps, window_start : int
        T and T_l.
    update : {"window", "sample"}
    eta : float
        SGD step (0: no learning).
    interval, offset : int
        Sample period and the step at which the first sample's first input arrives.
    last : bool
        The network's last block: its classifier is the readout; it records predictions.
    n_samples : int
        Size of the prediction record.
    rng_seed : int
        Fixed model: seed of the stochastic rounding of the weights.
    """

    def __init__(self, *, weights: list, gamma: float, v_th: float, kappa: float,
                 surrogate: str, trunc: int, n_steps: int, window_start: int,
                 update: str, eta: float, interval: int, offset: int, last: bool,
                 n_samples: int = 1, rng_seed: int = 0, name: str | None = None):
        shapes = [tuple(np.shape(w)) for w in weights]
        n_in, n_out = shapes[0][1], shapes[-2][0]
        super().__init__(shapes=shapes, gamma=gamma, v_th=v_th, kappa=kappa,
                         surrogate=surrogate, trunc=trunc, n_steps=n_steps,
                         window_start=window_start, update=update, eta=eta,
                         interval=interval, offset=offset, last=last, rng_seed=rng_seed,
                         name=name)
        self.s_in = InPort(shape=(n_in,))
        self.label_in = InPort(shape=(1,))
        self.s_out = OutPort(shape=(n_out,))
        flat = _flat(weights)
        self.params_flat = Var(shape=flat.shape, init=flat)
        self.predictions = Var(shape=(n_samples,), init=-1)
        self.n_done = Var(shape=(1,), init=0)

    def learned_weights(self) -> list[np.ndarray]:
        """The block's weight matrices now, real values (read before the run stops)."""
        return _split(np.asarray(self.params_flat.get()), self.proc_params["shapes"])


class _TTLBlockBase(PyLoihiProcessModel):
    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._shapes = p["shapes"]
        self._n_layers = len(self._shapes) - 1
        self._psi = get_surrogate(p["surrogate"])
        self._win: list = []                    # per step: (x, [u], [y], o, label, t)
        self._pending = None                    # accumulated gradients ("sample")
        self._acc = None
        self._state = None

    def run_spk(self) -> None:
        p = self.proc_params
        x = self.s_in.recv()
        label = int(np.asarray(self.label_in.recv()).ravel()[0])
        t = (self.time_step - p["offset"]) % p["interval"] if self.time_step >= p["offset"] \
            else -1
        if t == 0:
            self._state = self._init_state()
            self._acc = None
            self._win = []
        if self._state is None or not 0 <= t < p["n_steps"]:
            self.s_out.send(np.zeros(self._shapes[-2][0]))
            return
        y_out = self._forward(x, label, t)
        self.s_out.send(y_out)
        if p["last"]:
            real_o = self._o_real()
            if t >= p["window_start"]:
                self._acc = real_o if self._acc is None else self._acc + real_o
            if t == p["n_steps"] - 1:
                k = int(self.n_done[0])
                if k < self.predictions.shape[0]:
                    self.predictions[k] = int(np.argmax(self._acc))
                self.n_done[0] = k + 1
        end = (t + 1) % p["trunc"] == 0 or t == p["n_steps"] - 1
        if p["eta"] and end:
            grads = self._window_grads()
            self._win = []
            if self._pending is None:
                self._pending = grads
            else:
                self._pending = [_add_column_grads(a, g, s[1]) for a, g, s
                                 in zip(self._pending, grads, self._shapes)]
            if p["update"] == "window" or t == p["n_steps"] - 1:
                self._apply(self._pending)
                self._pending = None
        elif end:
            self._win = []

    def _window_grads(self) -> list[tuple]:
        """Reverse mode through the window's steps, the block's layers and classifier:
        per weight, its gradient on the columns it is not zero in
        (:func:`_column_grad`)."""
        p = self.proc_params
        ws = self._real_weights()
        w_c = ws[-1]
        n_win = p["n_steps"] - p["window_start"]
        grads = [None] * len(ws)
        steps = self._win
        n_l = self._n_layers
        # classifier: o[t] = κ o[t-1] + W_c y_L[t], the window's first o[t-1] constant.
        # Each weight's gradient Σ_t δ[t] ⊗ input[t] is one product over the window's
        # steps (δ and the inputs stacked by step), not one outer product per step
        dy = [[None] * len(steps) for _ in range(n_l)]
        do = np.zeros(w_c.shape[0])
        dos = np.empty((len(steps), w_c.shape[0]))
        for i in range(len(steps) - 1, -1, -1):
            x, us, ys, o, label, t = steps[i]
            do = p["kappa"] * do
            if t >= p["window_start"]:
                e = softmax(o)
                e[label] -= 1.0
                do = do + e / n_win
            dos[i] = do
            dy[-1][i] = w_c.T @ do
        grads[-1] = _column_grad(dos, np.stack([st[2][-1] for st in steps]))
        # layers, top to bottom: u[t] = γ (u[t-1] - v_th y[t-1]) + W x[t]
        for li in range(n_l - 1, -1, -1):
            du = np.zeros(self._shapes[li][0])
            dus = np.empty((len(steps), du.size))
            for i in range(len(steps) - 1, -1, -1):
                x, us, ys, o, label, t = steps[i]
                du = p["gamma"] * du + dy[li][i] * self._psi(us[li], p["v_th"])
                dus[i] = du
                if li > 0:
                    dy[li - 1][i] = ws[li].T @ du
            inputs = np.stack([st[0] if li == 0 else st[2][li - 1] for st in steps])
            grads[li] = _column_grad(dus, inputs)
        return grads


@implements(proc=TTLBlock, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyTTLBlockFloat(_TTLBlockBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    params_flat: np.ndarray = LavaPyType(np.ndarray, float)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def _init_state(self):
        return ([np.zeros(s[0]) for s in self._shapes[:-1]],
                [np.zeros(s[0]) for s in self._shapes[:-1]], np.zeros(self._shapes[-1][0]))

    def _real_weights(self) -> list[np.ndarray]:
        return _split(self.params_flat, self._shapes)

    def _o_real(self) -> np.ndarray:
        return self._state[2].copy()

    def _forward(self, x: np.ndarray, label: int, t: int) -> np.ndarray:
        p = self.proc_params
        us, ys, o = self._state
        ws = self._real_weights()
        inp = np.asarray(x, dtype=np.float64)
        new_u, new_y = [], []
        for li in range(self._n_layers):
            u = p["gamma"] * (us[li] - p["v_th"] * ys[li]) + ws[li] @ inp
            y = (u - p["v_th"] > 0).astype(np.float64)
            new_u.append(u)
            new_y.append(y)
            inp = y
        o = p["kappa"] * o + ws[-1] @ inp
        self._state = (new_u, new_y, o)
        self._win.append((np.asarray(x, dtype=np.float64), new_u, new_y, o.copy(), label, t))
        return inp

    def _apply(self, grads: list[tuple]) -> None:
        eta = self.proc_params["eta"]
        for w, (g, cols) in zip(self._real_weights(), grads):     # views: in place
            w[:, _columns(cols)] -= eta * g


@implements(proc=TTLBlock, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTTLBlockFixed(_TTLBlockBase):
    """Integer forward pass; float window gradient; 8-bit weights by stochastic rounding
    (see module doc). ``params_flat`` holds the real values of the integer weights."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    label_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    params_flat: np.ndarray = LavaPyType(np.ndarray, float)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32)
    n_done: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self._rng = np.random.default_rng([p["rng_seed"], 29])
        self._d_gamma, self._d_kappa = decay_to_int(p["gamma"]), decay_to_int(p["kappa"])
        self._ints = None

    def _quantise(self):
        """Integer mantissas and precisions of the current weights (first step)."""
        self._real = _split(self.params_flat, self._shapes)
        self._precs = [weight_precision(w) for w in self._real]
        self._P = max(self._precs)
        self._vth = int(to_membrane(self.proc_params["v_th"], self._P))
        self._unit = 2.0 ** -(ACT_SHIFT + self._P)
        self._round_to_mantissas()

    def _round_to_mantissas(self) -> None:
        """The real weights (views into ``params_flat``) rounded to the integer
        mantissas of the block's precisions, both kept."""
        self._ints = [_mantissas(r, pr) for r, pr in zip(self._real, self._precs)]
        for r, w, pr in zip(self._real, self._ints, self._precs):
            r[:] = w * 2.0 ** -pr

    def _real_weights(self) -> list[np.ndarray]:
        """The integer weights' real values: views into ``params_flat``, kept equal to
        them by :meth:`_apply`."""
        return self._real

    def _set_var(self):
        """Lava's Var.set; weights set into ``params_flat`` mid-run are rounded to the
        block's integer mantissas (the precisions of the first step kept)."""
        super()._set_var()
        if self._ints is not None:
            self._round_to_mantissas()

    def _init_state(self):
        if self._ints is None:
            self._quantise()
        return ([np.zeros(s[0], dtype=np.int64) for s in self._shapes[:-1]],
                [np.zeros(s[0], dtype=np.int64) for s in self._shapes[:-1]],
                np.zeros(self._shapes[-1][0], dtype=np.int64))

    def _o_real(self) -> np.ndarray:
        return self._state[2] * self._unit

    def _current(self, li: int, inp: np.ndarray) -> np.ndarray:
        """W x in units 2^-P (the Dense's weight_exp P - p). Binary spikes (every layer's
        output, and spike inputs) as the sum of the spiking columns, as a Dense does
        (numpy multiplies integer matrices without BLAS, several times slower);
        the same integers."""
        nz = np.flatnonzero(inp)
        w = self._ints[li]
        acc = w[:, nz].sum(axis=1) if np.all(inp[nz] == 1) else w @ inp
        return acc << (self._P - self._precs[li])

    def _forward(self, x: np.ndarray, label: int, t: int) -> np.ndarray:
        us, ys, o = self._state
        inp = np.asarray(x, dtype=np.int64)
        new_u, new_y = [], []
        for li in range(self._n_layers):
            u, y = lif_step_int(us[li], ys[li], self._current(li, inp), self._d_gamma,
                                self._vth)
            new_u.append(u)
            new_y.append(y)
            inp = y
        o = wrap24(decay(o, self._d_kappa) + (self._current(self._n_layers, inp) << ACT_SHIFT))
        self._state = (new_u, new_y, o)
        self._win.append((np.asarray(x, dtype=np.float64),
                          [u * self._unit for u in new_u],
                          [y.astype(np.float64) for y in new_y], o * self._unit, label, t))
        return inp.astype(np.int32)

    def _apply(self, grads: list[tuple]) -> None:
        """Stochastic rounding of the updated mantissas: one uniform draw per weight
        whose gradient the window made (its columns; the others' are exactly zero and
        stay)."""
        eta = self.proc_params["eta"]
        for li, (g, cols) in enumerate(grads):
            pr, sel = self._precs[li], _columns(cols)
            real = self._ints[li][:, sel] - eta * g * 2.0 ** pr
            low = np.floor(real)
            up = self._rng.random(real.shape) < (real - low)
            new = np.clip(low + up, -W_WEIGHT_MAX, W_WEIGHT_MAX).astype(np.int64)
            self._ints[li][:, sel] = new
            self._real[li][:, sel] = new * 2.0 ** -pr
