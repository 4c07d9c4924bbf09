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

from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..functional.solsa import solsa_eligibility_step, solsa_output_signal
from ..torch.loop import Batch, LocalTrainer
from .base import Costs, Rule, RuleParams, option, positive_int


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


class SOLSARule(Rule):
    name = "solsa"
    title = "SOLSA"
    paper = "Zhang, Jin, Fang, Qiu (arXiv 2307.11314)"
    Params = SOLSAParams
    layers = frozenset({"dense", "recurrent"})
    lava_inference = ("no Lava model of its current-based neuron with learnable synaptic "
                      "filters yet")
    no_graph_reason = ("no Lava model of its neuron and per-synapse eligibility yet (the "
                       "learning engine's tag is the planned home of e_ij)")

    def trainer_class(self):
        return SOLSATrainer

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


SOLSA = SOLSARule()
