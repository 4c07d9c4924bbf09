"""SOLSA: the rule, its hyper-parameters and its batched trainer.

Equations: :mod:`lava_local.functional.solsa`; network:
:class:`lava_local.torch.solsa.SOLSANet`. The trainer keeps a per-synapse eligibility
per layer and sample (memory O(B · synapses), independent of T), computes the per-step
learning signal through the layers of that step, accumulates ΔW at the scheduled steps
and applies it once per batch; it also learns the synaptic filters (α, β per layer, or
per input channel) and skips samples the network already classifies correctly with
confidence >= ``confidence`` (early stop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..fixed import GRADED_MAX, TRACE_MAX
from ..functional.solsa import solsa_eligibility_step, solsa_output_signal
from ..torch.loop import Batch, LocalTrainer
from .base import Costs, GraphLearning, GraphParts, Rule, RuleParams, option, positive_int
from .stllr_loihi import series_string

#: Fixed point: the filtered input psp travels as 8-bit payloads in units of 2^-PSP_BITS
#: (and the synapses' eligibility tag counts in the same units).
PSP_BITS = 6
PSP_TYPICAL_MAX = 2.0


@dataclass(frozen=True, kw_only=True)
class SOLSAParams(RuleParams):
    """Hyper-parameters of SOLSA.

    Attributes
    ----------
    sigma : float
        Width σ > 0 of the Gaussian surrogate ε.
    topk : int
        Scheduled weight update: apply ΔW only at the top-k steps by accumulated |ΔW|,
        re-ranked every ``rerank`` epochs; the first ranking starts from the last step
        alone. 0 applies every step of the learning window.
    rerank : int
        Epochs between re-rankings (>= 1).
    early_stop : bool
        Stop learning on a sample once its normalised output spike-count confidence is
        >= ``confidence`` and the prediction is correct.
    confidence : float
        Early-stop threshold in (0, 1].
    per_channel : bool
        One synaptic filter (α, β) per input channel instead of per layer.
    tag_quant : bool
        Round the eligibility to the fixed-point graph's tag after every step:
        ``clip(round(e / u), -257, 255) · u`` with u = :func:`tag_unit` (λ) (its 8 bits +
        sign), so a batched run measures what the on-chip tag costs.
    """

    sigma: float = option(0.5, "SOLSA Gaussian surrogate width σ", key="solsa_sigma",
                          type=float)
    topk: int = option(8, "SOLSA scheduled update: top-k steps (0 = all)",
                       key="solsa_topk", type=int)
    rerank: int = option(2, "SOLSA: re-rank the steps every N epochs", key="solsa_rerank",
                         type=positive_int)
    early_stop: bool = option(True, "SOLSA: keep learning on confident, correct samples",
                              key="solsa_early_stop", flag="--solsa-no-early-stop",
                              action="store_false")
    confidence: float = option(0.9, "SOLSA early-stop confidence", key="solsa_confidence",
                               type=float)
    per_channel: bool = option(False, "SOLSA: one synaptic filter (α, β) per input channel",
                               key="solsa_per_channel", action="store_true")
    tag_quant: bool = option(False, "SOLSA: keep the eligibility as the learning engine's "
                             "tag holds it (9-bit signed integers in units 2^-6), to "
                             "measure what the on-chip tag costs", key="solsa_tag_quant",
                             action="store_true")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sigma <= 0 or self.topk < 0 or self.rerank < 1:
            raise ValueError("SOLSA needs solsa_sigma > 0, solsa_topk >= 0, solsa_rerank >= 1")
        if not 0 < self.confidence <= 1:
            raise ValueError(f"solsa_confidence must lie in (0, 1], got {self.confidence}")


class SOLSALearning(NamedTuple):
    """SOLSA's learning state: the network's state and what its last step used, the
    per-synapse eligibilities (feed-forward, recurrent), ε of the previous step, output
    spike counts and which samples still learn (early stop)."""

    net: object
    used: object
    elig: list
    elig_rec: list
    eps_prev: list
    counts: torch.Tensor
    active: torch.Tensor


class SOLSATrainer(LocalTrainer):
    """SOLSA learning (see module doc)."""

    rule = "solsa"
    state_name = "eligibility"

    def __init__(self, model, optimizer, params: SOLSAParams | None = None,
                 window: int | None = None, generator: torch.Generator | None = None):
        super().__init__(model, optimizer, params if params is not None else SOLSAParams(),
                         window)
        self.schedule: list[int] | None = None      # None: set from T on first batch
        self.step_norms: dict[int, float] = {}

    def learned(self) -> list[torch.Tensor]:
        m = self.model
        return [*m.layers, *m.alpha, *m.beta, *m.recurrent, *m.alpha_rec, *m.beta_rec]

    def after_apply(self) -> None:
        with torch.no_grad():
            for a in [*self.model.alpha, *self.model.alpha_rec]:
                a.clamp_(0.0, 1.0)

    def start_epoch(self, epoch: int, n_epochs: int) -> None:
        p = self.params
        if p.topk and epoch > 0 and epoch % p.rerank == 0 and self.step_norms:
            ranked = sorted(self.step_norms, key=lambda t: -self.step_norms[t])
            self.schedule = sorted(ranked[:p.topk])
            self.step_norms = {}

    def state_dict(self) -> dict:
        return {"schedule": self.schedule, "step_norms": dict(self.step_norms)}

    def load_state_dict(self, state: dict) -> None:
        self.schedule, self.step_norms = state["schedule"], dict(state["step_norms"])

    def init_state(self, x: torch.Tensor, b: Batch) -> SOLSALearning:
        model = self.model
        if self.schedule is None:
            self.schedule = ([b.n_steps - 1] if self.params.topk
                             else list(range(b.t_l, b.n_steps)))
        return SOLSALearning(
            model.init_state(b.size), None,
            [x.new_zeros(b.size, *w.shape) for w in model.layers],
            [x.new_zeros(b.size, *v.shape) for v in model.recurrent],
            [x.new_zeros(b.size, w.shape[0]) for w in model.layers],
            x.new_zeros(b.size, model.cfg.n_out), x.new_ones(b.size))

    def advance(self, s: SOLSALearning, x_t, learn: bool, b: Batch) -> SOLSALearning:
        lam, theta = self.model.cfg.gamma, self.model.cfg.v_th
        with torch.no_grad():
            net, used = self.model.step(s.net, x_t)
            elig = [solsa_eligibility_step(e, ep, p, lam, theta)
                    for e, ep, p in zip(s.elig, s.eps_prev, net.psp)]
            elig_rec = [solsa_eligibility_step(e, ep, p, lam, theta)
                        for e, ep, p in zip(s.elig_rec, s.eps_prev, net.psp_rec)]
            if self.params.tag_quant:
                elig = [tag_quantise(e, lam) for e in elig]
                elig_rec = [tag_quantise(e, lam) for e in elig_rec]
            counts = s.counts + net.s[-1]
        return SOLSALearning(net, used, elig, elig_rec, used.eps, counts, s.active)

    def traces(self, s: SOLSALearning) -> list[torch.Tensor]:
        return [*s.elig, *s.elig_rec, *s.eps_prev, *s.net.psp, *s.net.psp_rec]

    def learn(self, s: SOLSALearning, t: int, b: Batch):
        model, net, used = self.model, s.net, s.used
        sched = set(self.schedule) if self.params.topk else set(range(b.t_l, b.n_steps))
        n_layers, n_rec = len(model.layers), len(model.recurrent)
        g_w, g_a, g_b = [None] * n_layers, [None] * n_layers, [None] * n_layers
        g_v, g_ar, g_br = [None] * n_rec, [None] * n_rec, [None] * n_rec
        with torch.no_grad():
            s_out = net.s[-1]
            loss = float(((s_out - b.onehot) ** 2).mean()) / b.n_win
            delta = solsa_output_signal(s_out, b.onehot, used.eps[-1])
            delta = delta * s.active[:, None] / b.size
            norm = 0.0
            for l in range(n_layers - 1, -1, -1):
                dw = torch.einsum("bi,bij->ij", delta, s.elig[l])
                back = delta @ model.layers[l]             # (B, N_in) = δ W
                ga, gb = back * used.psp_prev[l], back * used.inp[l]
                g_w[l] = dw
                g_a[l] = ga.sum(0) if model.alpha[l].numel() > 1 else ga.sum()
                g_b[l] = gb.sum(0) if model.beta[l].numel() > 1 else gb.sum()
                norm += float(dw.abs().sum())
                if l < n_rec:
                    dv = torch.einsum("bi,bij->ij", delta, s.elig_rec[l])
                    back_r = delta @ model.recurrent[l]
                    gar, gbr = back_r * used.psp_rec_prev[l], back_r * used.s_prev[l]
                    g_v[l] = dv
                    g_ar[l] = gar.sum(0) if model.alpha_rec[l].numel() > 1 else gar.sum()
                    g_br[l] = gbr.sum(0) if model.beta_rec[l].numel() > 1 else gbr.sum()
                    norm += float(dv.abs().sum())
                if l > 0:
                    delta = back * model.beta[l] * used.eps[l - 1]
            self.step_norms[t] = self.step_norms.get(t, 0.0) + norm
            if self.params.early_stop:
                c = s.counts
                conf = c.max(-1).values / c.sum(-1).clamp(min=1)
                done = (c.argmax(-1) == b.labels) & (conf >= self.params.confidence) \
                    & (c.sum(-1) > 0)
                # samples done stop learning for the rest of the batch (state kept in
                # place: ``active`` belongs to this batch's learning state)
                s.active.mul_((~done).to(s.active.dtype))
        grads = [*g_w, *g_a, *g_b, *g_v, *g_ar, *g_br] if t in sched else None
        return loss, grads


def tag_unit(lam: float) -> float:
    """Fixed point: the value of one unit of the eligibility tag (8 bits + sign). The
    eligibility sums psp over about 1/(1 - λ) steps, so with psp up to PSP_TYPICAL_MAX
    (β / (1 - α) for α = 0.5, β = 1) it reaches PSP_TYPICAL_MAX / (1 - λ): the unit is the
    psp payload unit times the power of two that keeps that below 255 units."""
    e_max = PSP_TYPICAL_MAX / max(1.0 - lam, 1e-3)
    k = max(0, math.ceil(math.log2(e_max / (255 * 2.0 ** -PSP_BITS))))
    return 2.0 ** (k - PSP_BITS)


def tag_quantise(e: torch.Tensor, lam: float) -> torch.Tensor:
    """The eligibility as the fixed-point graph's tag holds it (see ``tag_quant``)."""
    unit = tag_unit(lam)
    return torch.clamp(torch.round(e / unit), -257, 255) * unit


class SOLSARule(Rule):
    name = "solsa"
    title = "SOLSA"
    paper = "Zhang, Jin, Fang, Qiu (arXiv 2307.11314)"
    Params = SOLSAParams
    layers = frozenset({"dense", "recurrent"})

    def trainer_class(self):
        return SOLSATrainer

    @property
    def graph(self):
        return SOLSAGraph()

    def export_layers(self, state) -> dict:
        """SOLSA's current-based layers (output included) with their synaptic filters."""
        if "recurrent.0" in state:
            from ..torch.train import RunError

            raise RunError("recurrent SOLSA nets have no Lava model yet (their recurrent "
                           "synaptic filter and eligibility); feed-forward SOLSA runs export")
        n = len([k for k in state if k.startswith("layers.")])
        return {"weights": [state[f"layers.{i}"].double().cpu().numpy() for i in range(n)],
                "neuron": "cuba", "surrogate": "gaussian",
                "filters": [(state[f"alpha.{i}"].double().cpu().numpy(),
                             state[f"beta.{i}"].double().cpu().numpy()) for i in range(n)]}

    def import_layers(self, state, net) -> dict:
        """The inverse of :meth:`export_layers`: weights and synaptic filters."""
        from .base import _put

        out = dict(state)
        for i, (w, (alpha, beta)) in enumerate(zip(net.weights, net.filters)):
            _put(out, state, f"layers.{i}", w)
            _put(out, state, f"alpha.{i}", alpha)
            _put(out, state, f"beta.{i}", beta)
        return out

    def build_model(self, cfg, n_in, n_out, frame_shape, generator):
        """Its own current-based, all-spiking network."""
        from ..torch.solsa import SOLSANet

        return SOLSANet(cfg.net_config(n_in, n_out), cfg.params.per_channel,
                        cfg.params.sigma, generator=generator)

    def memory_values(self, c: Costs, params) -> int:
        """Per-synapse eligibility + psp of the inputs + ε of the neurons."""
        s = c.layer_sizes
        synapses = sum(a * b for a, b in zip(s[:-1], s[1:]))
        hidden = c.hidden if c.recurrent else []
        return (synapses + sum(n * n for n in hidden) + sum(s[:-1]) + sum(hidden)
                + c.neurons)

    def learning_macs(self, c: Costs, params) -> int:
        """Eligibility update, ΔW, back-signal."""
        return 3 * c.learning_steps * c.synapses

    def memory_formula(self) -> str:
        return "Σ N_l N_{l-1} (+ Σ N_l² recurrent) + Σ N_{l-1} + Σ N_l"

    def macs_formula(self) -> str:
        return "3 (T - T_l) Σ N_l N_{l-1}"



# -- on the Lava graph ---------------------------------------------------------------------

#: Fixed point: y2 = round(Y2_SCALE · (1 - λ + θ ε)).
Y2_SCALE = 64


@dataclass(frozen=True)
class OnChipSOLSA:
    r"""SOLSA's per-synapse eligibility and update as a Loihi 2 product series
    (``Loihi3FLearningRule``, t_epoch = 1) on synapses fed with the graded psp.

    The synapse receives psp[t+1] as a graded spike (``GradedSpikeCfg.OVERWRITE``:
    x1 = payload / 2, no decay to speak of: τ huge) while its neuron is at step t and
    writes ``y2 = (1 - λ + θ ε[t]) S2``; the tag t holds the eligibility

    .. code-block:: text

        dt = 2·u0·x1 − u0·y2·t / S2        (t ← (λ − θ ε[t]) t + psp[t+1] = e[t+1])
        dw = c·u0·t·y1 − 2c·y0·t·y1        (Δw = −η δ e, y1 = |δ| / S1, bap = δ > 0)

    both from the values before the learning phase, so dw pairs the neuron's δ of step t
    with e[t]. At the last step before a sample the neuron sends the full decay
    (``y2 = S2``), so each sample's eligibility starts from zero (a chip has no other tag
    reset).

    Float engine: S2 = 1, c = 1, S1 = 1/η, the tag in real units. Fixed engine: payloads
    in units u = 2^-PSP_BITS (x1 loses the payload's lowest bit), the tag in units
    u_t = :func:`tag_unit` (λ) = u 2^k (8 bits + sign: |e| < 256 u_t; the x1 term is
    2^(1-k) x1), S2 = 64 (literal 2^-1 after the engine's 5-bit shift of a 7 × 9-bit
    product), c = 2^e chosen so that ``delta_max`` fills y1, and S1 = 2^(e-5) / (η u_t 2^p).
    """

    eta: float
    lam: float
    theta: float
    mode: str = "float"
    weight_precision: int = 0
    delta_max: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("float", "fixed"):
            raise ValueError(f"mode must be float or fixed, got {self.mode!r}")
        if not self.eta > 0:
            raise ValueError(f"the learning rate must be > 0, got {self.eta}")

    @property
    def x1_tau(self) -> float:
        """A decay the engine needs but the rule does not want (x1 is overwritten)."""
        return 2.0 ** 40 if self.mode == "float" else float(2 ** 20)

    x2_tau = 1.0
    x1_impulse = 0
    alpha_post = 0.0

    @property
    def psp_unit(self) -> float:
        return 1.0 if self.mode == "float" else 2.0 ** -PSP_BITS

    @property
    def tag_unit(self) -> float:
        """Value of one unit of the tag t (:func:`tag_unit`; 1 in float mode)."""
        return 1.0 if self.mode == "float" else tag_unit(self.lam)

    @property
    def e(self) -> int:
        if self.mode == "float":
            return 0
        target = 32 * self.eta * self.tag_unit * 2.0 ** self.weight_precision * self.delta_max
        e = round(math.log2(target / TRACE_MAX)) if target > 0 else 0
        return int(min(max(e, -7), 7))

    @property
    def s1(self) -> float:
        """Value of one y1 unit: y1 = |δ| / S1."""
        if self.mode == "float":
            return 1.0 / self.eta
        return 2.0 ** (self.e - 5) / (self.eta * self.tag_unit * 2.0 ** self.weight_precision)

    @property
    def s2(self) -> float:
        return 1.0 if self.mode == "float" else float(Y2_SCALE)

    def products(self) -> list[tuple[int, int, str]]:
        return [(1, self.e, "u0*t*y1"), (-2, self.e, "y0*t*y1")]

    def tag_products(self) -> dict[str, list[tuple[int, int, str]]]:
        """t ← t + 2 x1 (in tag units) − y2 t / S2."""
        if self.mode == "float":
            return {"t": [(1, 1, "u0*x1"), (-1, 0, "u0*y2*t")]}
        k = int(round(math.log2(self.tag_unit / self.psp_unit)))
        return {"t": [(1, 1 - k, "u0*x1"), (-1, -1, "u0*y2*t")]}

    def learning_rule(self, rng_seed: int = 0):
        from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

        return Loihi3FLearningRule(dw=series_string(self.products()),
                                   dt=series_string(self.tag_products()["t"]),
                                   x1_impulse=self.x1_impulse, x1_tau=self.x1_tau,
                                   x2_impulse=0, x2_tau=self.x2_tau, t_epoch=1,
                                   rng_seed=rng_seed)

    def decay_factor(self, eps):
        """1 - λ + θ ε: what the tag loses per step (the reset path included)."""
        return 1.0 - self.lam + self.theta * eps

    def third_factors(self, delta, eps):
        """Real-valued (y1, y2, bap) for signal δ and the neuron's ε of this step."""
        import numpy as np

        mag = np.abs(delta)
        return mag / self.s1, self.decay_factor(eps) * self.s2, delta > 0


class SOLSAParts(GraphParts):
    """SOLSA on a cuba net's graph (built by :mod:`lava_local.networks.cuba_graph`):
    the schedule and early stop of the run, and :class:`OnChipSOLSA` on every layer."""

    def __init__(self, params: SOLSAParams, record: dict, schedule):
        super().__init__(record)
        self.params, self.schedule = params, schedule

    def layer_rule(self, ctx, l: int) -> OnChipSOLSA:
        du = delta_unit(ctx.net.layer_sizes[-1], self.params.sigma)
        return OnChipSOLSA(eta=ctx.eta, lam=ctx.net.gamma, theta=ctx.net.v_th,
                           mode=ctx.mode, weight_precision=ctx.precs[l],
                           delta_max=GRADED_MAX * du)


def delta_unit(n_classes: int, sigma: float) -> float:
    """Fixed point: the power of two that one unit of δ is worth, so that the output
    layer's largest |δ| = 2/C · ε_max fills an 8-bit payload (|δ_int| <= 127)."""
    eps_max = 1.0 / (math.sqrt(2 * math.pi) * sigma)
    return 2.0 ** -math.floor(math.log2(GRADED_MAX / (2.0 / n_classes * eps_max)))


class SOLSAGraph(GraphLearning):
    mode = "solsa"
    rule = "solsa"
    net_kind = "cuba"
    neuron = ("SOLSANeuron: current-based LIF, Gaussian ε; writes (1 − λ + θε), |δ|, "
              "sign δ into y2, y1, bap; the output layer makes δ from the label")
    signal = ("δ^L = 2/C (s − y) ε at the scheduled steps until early stop; back through "
              "fixed Dense(W^lᵀ) into the layer's SynapticFilter (α/β adaptation), which "
              "forwards δW ⊙ β to the layer below (3 steps per layer)")
    backends = ("sim-float", "sim-fixed")
    product_series = ("OnChipSOLSA: the eligibility e_ij in the tag "
                      "(dt = 2·x1 − y2·t, psp as graded x1), dw = ±t·y1")
    default_eta = 2.0 ** -7

    def bind(self, net, backend, rng_seed=0, options=None):
        import numpy as np

        if options:
            raise ValueError(f"{self.mode} takes no options, got {sorted(options)}")
        params = SOLSAParams.from_flat(net.params, strict=False)
        sched = net.matrices.get("schedule")
        t_l, n_steps = net.window_start, net.n_steps
        schedule = (sorted(int(t) for t in np.asarray(sched).ravel() if t_l <= t < n_steps)
                    if sched is not None and params.topk else list(range(t_l, n_steps)))
        record = {"mode": self.mode, "params": params.to_flat(), "schedule": schedule,
                  "early_stop": params.early_stop,
                  "filters": "α, β adapted in the SynapticFilter compartments (SGD, η)"}
        return SOLSAParts(params, record, schedule)


SOLSA = SOLSARule()
