r"""S-TLLR as a Loihi 2 three-factor product-series learning rule.

Timing on Lava / Loihi
----------------------
A Dense connection delivers the spikes p[σ] it receives at step σ to its post-synaptic
neurons at step σ+1, while the learning engine adds p[σ] to the pre trace x1 at σ. So at
the learning phase of step σ the post neuron is at its own step t = σ (driven by inputs
x[t] = p[σ-1]) but the pre trace already holds q[t+1] = λ_pre q[t] + p[σ]. The rule
therefore uses ``x1 - I·x0`` (= I λ_pre q[t], I the x1 impulse) for the causal term, and
pairs the pre spike p[σ] = x[t+1] with the post trace of step t+1, which the neuron can
already compute at step t: h[t+1] = λ_post h[t] + Ψ(u[t]). With the learning signal
δ_in[σ] that reaches the neuron at step σ, the update applied at step σ is

.. math::

    Δw_{ij}[σ] = -η\, δ_i[σ] \left( α_{pre}\, Ψ(u_i[t])\, q_j[t]
                 + α_{post}\, \tilde h_i[t+1]\, x_j[t+1] \right),\quad t = σ

i.e. exactly S-TLLR's eligibility, with the non-causal term paired with the learning
signal of the step before its own.

Third factors
-------------
The post-synaptic neuron writes per-neuron values into the synapse's post traces every
step (``Loihi3FLearningRule``): ``y1 = |δ| Ψ(u) / S1``, ``y2 = |δ| \tilde h / S2`` and a
back-propagating "spike" ``bap = δ > 0`` that carries the sign (hardware traces are
unsigned). The rule is

.. code-block:: text

    dw =  c1·(u0·x1·y1 − u0·x2·y1) − 2·c1·(y0·x1·y1 − y0·x2·y1)
        + c2·u0·x2·y2 − 2·c2·y0·x2·y2

where x2 is a second pre trace with the same impulse I that decays fully every step
(x2 = I·x0: Lava's float engine cannot use a dependency such as x0 as a factor), the
y0 terms flip the sign of the update for neurons that sent ``bap``, c1 = sign(α_pre)·2^e1
and c2 = sign(α_post)·2^e2. The scales S1, S2 are chosen so that the literals are exact
powers of two: ``S1 = λ_pre I 2^{e1-s} / (η |α_pre| 2^p)`` and
``S2 = I 2^{e2-s} / (η |α_post| 2^p)``, with s = 0, p = 0 in the float engine, and in
the bit-approximate (fixed) engine s = 3 (a product of two 7-bit traces and a 4-bit
mantissa loses 7 + 7 + 4 - 15 bits) and p the weight precision (w = w_int 2^-p).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fixed import TRACE_MAX

MODES = ("float", "fixed")


def series_string(terms: list[tuple[int, int, str]]) -> str:
    """A product series ``[(mantissa, exponent, "dep*factor*..."), ...]`` as a rule
    string (``"1*2^-3*u0*x1*y1 - 2*2^-3*y0*x1*y1"``)."""
    out = ""
    for m, e, prod in terms:
        scale = f"{abs(m)}*2^{e}" if e != 0 else f"{abs(m)}"
        out += (" - " if m < 0 else (" + " if out else "")) + f"{scale}*{prod}"
    return out.lstrip(" ")
#: Lava's Loihi3FLearningRule decays the post traces by exp(-1/65535) within an epoch.
Y_TAU = 65535
Y_DECAY = math.exp(-1.0 / Y_TAU)


@dataclass(frozen=True)
class OnChipSTLLR:
    """S-TLLR constants for one learning Dense on Lava's learning engine (t_epoch = 1).

    Parameters
    ----------
    eta : float
        SGD learning rate of the online rule (Δw = -η δ e).
    alpha_pre, alpha_post, lam_pre, lam_post, post_form
        As in :class:`lava_local.rules.STLLRParams`.
    mode : {"float", "fixed"}
        Float engine (real weights) or bit-approximate engine (integer weights).
    weight_precision : int
        p of the integer weights (w_real = w_int · 2^-p); fixed mode only.
    delta_max, psi_max : float
        Expected largest |δ| and Ψ; they set S1, S2 so that y1, y2 use the 7-bit range
        (fixed mode).
    """

    eta: float
    alpha_pre: float = 1.0
    alpha_post: float = -1.0
    lam_pre: float = 0.5
    lam_post: float = 0.2
    post_form: str = "paper"
    mode: str = "float"
    weight_precision: int = 0
    delta_max: float = 1.0
    psi_max: float = 0.3

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.eta > 0:
            raise ValueError(f"the learning rate must be > 0, got {self.eta}")
        if not 0.0 < self.lam_pre <= 1.0:
            raise ValueError("on chip λ_pre must lie in (0, 1]: the causal term divides by it")
        if self.alpha_pre == 0:
            raise ValueError("α_pre = 0 leaves no causal term; S-TLLR needs α_pre != 0")

    # -- pre trace ---------------------------------------------------------------------
    @property
    def x1_tau(self) -> float:
        """Trace time constant τ with exp(-1/τ) = λ_pre (integer in fixed mode)."""
        if self.lam_pre == 1.0:
            return float("inf")
        tau = -1.0 / math.log(self.lam_pre)
        return tau if self.mode == "float" else float(max(1, round(tau)))

    @property
    def x2_tau(self) -> float:
        """x2 decays fully every step, so x2 = I·x0 (the pre spike of this step): the
        fixed engine leaves a τ = 0 trace undecayed-from-zero; the float engine needs
        τ > 0 and exp(-1/0.001) underflows to exactly 0."""
        return 1e-3 if self.mode == "float" else 0.0

    @property
    def lam_pre_effective(self) -> float:
        """The decay the engine really applies: exp(-1/τ)."""
        return math.exp(-1.0 / self.x1_tau)

    @property
    def x1_impulse(self) -> int:
        """1 in float mode; the largest power of two with I / (1 - λ) <= 127 in fixed mode."""
        if self.mode == "float":
            return 1
        lam = self.lam_pre_effective
        cap = TRACE_MAX * (1.0 - lam) if lam < 1 else 8.0
        return int(2 ** max(0, math.floor(math.log2(max(cap, 1.0)))))

    # -- literals and third-factor scales ------------------------------------------------
    @property
    def _shift(self) -> int:
        """Bits the fixed engine drops from a product of two 7-bit traces."""
        return 3 if self.mode == "fixed" else 0

    @property
    def _wscale(self) -> float:
        return 2.0 ** self.weight_precision if self.mode == "fixed" else 1.0

    def _exponent(self, target: float, base: float) -> int:
        """Literal exponent e (in [-7, 7]; the y0 terms use 2·2^e) that makes
        ``base · 2^e`` closest to target."""
        if self.mode == "float":
            return 0
        e = round(math.log2(target / base)) if target > 0 else 0
        return int(np.clip(e, -7, 7))

    @property
    def e1(self) -> int:
        """Exponent of the causal literal c1 (the x1·y1 products)."""
        lam, i = self.lam_pre_effective, self.x1_impulse
        base = lam * i * 2.0 ** -self._shift / (self.eta * abs(self.alpha_pre) * self._wscale)
        return self._exponent(self.delta_max * self.psi_max / TRACE_MAX, base)

    @property
    def s1(self) -> float:
        """Value of one y1 unit: y1 = |δ| Ψ / S1."""
        lam, i = self.lam_pre_effective, self.x1_impulse
        return (lam * i * 2.0 ** (self.e1 - self._shift)
                / (self.eta * abs(self.alpha_pre) * self._wscale))

    @property
    def h_max(self) -> float:
        h = self.psi_max / max(1.0 - self.lam_post, 1e-3)
        return self.lam_post * h if self.post_form == "paper" else h

    @property
    def e2(self) -> int:
        """Exponent of the non-causal literal c2 (the x0·y2 products)."""
        if self.alpha_post == 0:
            return 0
        base = (self.x1_impulse * 2.0 ** -self._shift
                / (self.eta * abs(self.alpha_post) * self._wscale))
        return self._exponent(self.delta_max * self.h_max / TRACE_MAX, base)

    @property
    def s2(self) -> float:
        """Value of one y2 unit: y2 = |δ| h̃ / S2 (0 when α_post = 0)."""
        if self.alpha_post == 0:
            return 0.0
        return (self.x1_impulse * 2.0 ** (self.e2 - self._shift)
                / (self.eta * abs(self.alpha_post) * self._wscale))

    def products(self) -> list[tuple[int, int, str]]:
        """The rule as ``(mantissa, exponent, product)`` terms, in evaluation order."""
        sp = 1 if self.alpha_pre > 0 else -1
        e1 = self.e1
        terms = [
            (sp, e1, "u0*x1*y1"),
            (-sp, e1, "u0*x2*y1"),
            (-2 * sp, e1, "y0*x1*y1"),
            (2 * sp, e1, "y0*x2*y1"),
        ]
        if self.alpha_post != 0:
            sq = 1 if self.alpha_post > 0 else -1
            terms += [(sq, self.e2, "u0*x2*y2"), (-2 * sq, self.e2, "y0*x2*y2")]
        for m, e, _ in terms:
            if not (-8 <= m <= 7 and -7 <= e <= 8):
                raise ValueError(f"literal {m}*2^{e} is outside the engine's range; "
                                 "change eta, delta_max or the weight precision")
        return terms

    def rule_string(self) -> str:
        """The ``dw`` string of the product series."""
        return series_string(self.products())

    def tag_products(self) -> dict:
        """Products of the tag updates (``t``, ``d``): none."""
        return {}

    def learning_rule(self, rng_seed: int = 0):
        """A ``Loihi3FLearningRule`` with t_epoch = 1 implementing this rule."""
        from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

        return Loihi3FLearningRule(dw=self.rule_string(), x1_impulse=self.x1_impulse,
                                   x1_tau=self.x1_tau, x2_impulse=self.x1_impulse,
                                   x2_tau=self.x2_tau, t_epoch=1, rng_seed=rng_seed)

    def third_factors(self, delta: np.ndarray, psi: np.ndarray, h_eff_next: np.ndarray):
        """Real-valued (y1, y2, bap) a neuron sends for learning signal δ (before any
        quantisation): y1 = |δ|Ψ/S1, y2 = |δ|h̃/S2, bap = δ > 0."""
        mag = np.abs(delta)
        y1 = mag * psi / self.s1
        y2 = mag * h_eff_next / self.s2 if self.alpha_post != 0 else np.zeros_like(mag)
        return y1, y2, delta > 0


class FixedEngineReference:
    """Our own integer model of Lava's bit-approximate learning engine running a
    product-series rule object — S-TLLR's :class:`OnChipSTLLR`, or Traces Propagation's
    :class:`~lava_local.rules.tp.OnChipTP` with its tag updates — in fixed mode,
    t_epoch = 1, MIXED sign.

    It follows the engine's documented arithmetic step by step — 7-bit traces with
    stochastic rounding of decays, factors clipped to their widths, 4-bit mantissa
    products right-shifted to the 15-bit accumulator, the scale exponent, saturation,
    one stochastic rounding per step into 8-bit weights — with the engine's random
    streams (seeded by ``rng_seed``), so the two agree bit for bit.

    Parameters
    ----------
    weights : ndarray of int, shape (N_post, N_pre)
        Initial integer weights (even mantissas; odd ones lose their lowest bit as in
        Lava's MIXED sign mode).
    rule : OnChipSTLLR or OnChipTP
        The rule (mode "fixed"): ``products()`` of dw, ``tag_products()`` of the tags,
        its x-trace taus and impulse.
    rng_seed : int
        The seed given to ``rule.learning_rule``.
    """

    _W_ACC, _W_W = 15, 8
    #: Factor widths (bits, without the sign) and, for the synaptic variables, their
    #: ranges after saturation (weights and the tag t signed, the tag d unsigned).
    _WIDTH = {"x1": 7, "x2": 7, "y1": 7, "y2": 7, "t": 9, "d": 9}
    _RANGE = {"w": (-256, 255), "t": (-257, 255), "d": (0, 255)}

    def __init__(self, weights: np.ndarray, rule: OnChipSTLLR, rng_seed: int = 0):
        if rule.mode != "fixed":
            raise ValueError("FixedEngineReference models the fixed (bit-approximate) engine")
        self.rule = rule
        self.weights = (np.asarray(weights, dtype=np.int64) >> 1) << 1
        n_pre = self.weights.shape[1]
        self.tags = {k: np.zeros_like(self.weights) for k in rule.tag_products()}
        self._tag_terms = {k: [(m, e, prod.split("*")) for m, e, prod in terms]
                           for k, terms in rule.tag_products().items()}
        self.x = np.zeros((2, n_pre), dtype=np.int64)
        rng = np.random.default_rng
        self._rx = (rng(rng_seed), rng(rng_seed + 1))
        self._ry = (rng(rng_seed + 2), rng(rng_seed + 3))
        self._rc = rng(2)
        self._x_vals = self._draw(self._rx)
        self._y_vals = self._draw(self._ry)
        self._c_val = self._rc.random(1)[0]
        self._terms = [(m, e, prod.split("*")) for m, e, prod in rule.products()]
        self._taus = np.array([rule.x1_tau, rule.x2_tau])
        self._impulse = rule.x1_impulse

    def reset_traces(self) -> None:
        """Zero the pre traces (the fast LearningDense models do it at each sample's
        first step, before that step's learning phase)."""
        self.x[:] = 0

    @staticmethod
    def _draw(pair):
        return pair[0].random(1)[0], pair[1].integers(0, 2 ** 7, size=1, dtype=int)[0]

    @staticmethod
    def _decay(values: np.ndarray, tau: float, random: float) -> np.ndarray:
        real = np.exp(-1.0 / tau) * values
        frac = real % 1
        return (np.floor(real) + (random < frac)).astype(np.int64)

    def step(self, pre: np.ndarray, y1: np.ndarray, y2: np.ndarray, bap: np.ndarray,
             payload: np.ndarray | None = None):
        """One step: pre spikes (N_pre,), third factors y1, y2 (N_post,) int, bap bool;
        ``payload``: graded pre spikes (``GradedSpikeCfg.OVERWRITE``: a nonzero payload
        overwrites x1 with round(payload / 2) before the learning phase; ``pre`` is then
        ``payload != 0``). Returns the weights after the step's learning phase."""
        pre = np.asarray(pre).astype(bool)
        bap = np.asarray(bap).astype(bool)
        if payload is not None:
            pay = np.asarray(payload)
            pre = pay != 0
            self.x[0, pre] = np.round(pay[pre] / 2).astype(np.uint8)
        # spiking phase: the engine advances its trace random streams twice
        for _ in range(2):
            self._x_vals = self._draw(self._rx)
            self._y_vals = self._draw(self._ry)
        # learning phase
        self._c_val = self._rc.random(1)[0]
        x_new = np.zeros_like(self.x)
        for k in range(2):
            if self._taus[k] != 0:
                x_new[k] = self._decay(self.x[k], self._taus[k], self._x_vals[0])
        x_new[:, pre] = np.clip(x_new[:, pre] + self._impulse, 0, 2 ** 7 - 1)
        y = np.stack([np.asarray(y1, np.int64), np.asarray(y2, np.int64)])
        y_dec = self._decay(y, Y_TAU, self._y_vals[0])
        y_dec[:, bap] = np.clip(y_dec[:, bap], 0, 2 ** 7 - 1)
        self.x = x_new
        factors = {"x1": x_new[0][None, :], "x2": x_new[1][None, :],
                   "y1": y_dec[0][:, None], "y2": y_dec[1][:, None], **self.tags}
        deps = {"u0": np.int32(1), "y0": bap[:, None], "x0": pre[None, :]}
        # every synaptic variable is updated from the values before this learning phase
        new = {"w": self._apply("w", self.weights, self._terms, factors, deps)}
        for k, terms in self._tag_terms.items():
            new[k] = self._apply(k, self.tags[k], terms, factors, deps)
        self.weights = new["w"]
        self.tags = {k: new[k] for k in self.tags}
        return self.weights

    def _apply(self, name: str, var: np.ndarray, terms, factors: dict,
               deps: dict) -> np.ndarray:
        """The engine's update of synaptic variable ``name`` (w, t or d): accumulator of
        15 bits + sign, products right-shifted to fit, stochastic rounding, saturation."""
        acc = var << (self._W_ACC + 1 - (self._W_W + 1))
        lim = 2 ** self._W_ACC
        for m, e, (dep, *fs) in terms:
            cur = np.ones(self.weights.shape, dtype=np.int32) * deps[dep]
            width = 4
            for f in fs:
                w = self._WIDTH[f]
                width += w
                cur = cur * np.clip(factors[f], -(2 ** w), 2 ** w - 1).astype(np.int32)
            cur = cur * m
            shift = max(0, width - self._W_ACC)
            cur = np.left_shift(np.right_shift(cur, shift), e + 7)
            cur = np.clip(cur, -lim - 1, lim - 1)
            acc = np.clip(acc + cur, -lim - 1, lim - 1)
        if name == "d":
            acc = np.maximum(acc, 0)
        unit = 2 ** (self._W_ACC - self._W_W)
        real = acc / unit
        acc = ((np.floor(real) + (self._c_val < real % 1)) * unit).astype(np.int64)
        lo, hi = self._RANGE[name]
        return np.clip(acc >> (self._W_ACC + 1 - (self._W_W + 1)), lo, hi)
