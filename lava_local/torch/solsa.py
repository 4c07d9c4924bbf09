"""SOLSA on a network of current-based LIF layers (all spiking, output included).

See :mod:`lava_local.functional.solsa` for the equations. The trainer keeps a per-synapse
eligibility per layer and sample (memory O(B · synapses), independent of T), computes
the per-step learning signal through the layers of that step, accumulates ΔW at the
scheduled steps and applies it once per batch; it also learns the synaptic filters
(α, β per layer, or per input channel) and skips samples the network already classifies
correctly with confidence >= ``confidence`` (early stop).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..functional.solsa import (
    gaussian_surrogate,
    psp_step,
    solsa_eligibility_step,
    solsa_output_signal,
)
from .model import NetConfig, uniform_weight


class SOLSANet(nn.Module):
    """Dense layers of current-based LIF neurons with learnable synaptic filters.

    Uses ``cfg.gamma`` as the membrane leak λ and ``cfg.v_th`` as threshold θ (also the
    soft-reset amount); the output layer has ``n_out`` spiking neurons and the
    prediction is the argmax of their spike counts in the window (ties broken by the
    mean membrane potential). With ``cfg.recurrent`` every hidden layer also receives
    its own previous spikes through recurrent weights V^l and a synaptic filter of its
    own (α_rec, β_rec): :math:`v = λ v + W psp + V psp_{rec} - θ s[t-1]`, with
    :math:`psp_{rec}[t] = α_{rec} psp_{rec}[t-1] + β_{rec} s[t-1]` (reconstruction).
    The eligibility of V follows the membrane and the reset but takes the recurrent
    input spikes as given (their own dependence on V is not followed, as in e-prop).
    """

    def __init__(self, cfg: NetConfig, per_channel: bool = False, sigma: float = 0.5,
                 generator: torch.Generator | None = None):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"the surrogate width σ must be > 0, got {sigma}")
        self.cfg, self.sigma = cfg, sigma
        sizes = cfg.layer_sizes
        self.layers = nn.ParameterList()
        self.alpha = nn.ParameterList()
        self.beta = nn.ParameterList()
        for n_pre, n_post in zip(sizes[:-1], sizes[1:]):
            self.layers.append(uniform_weight(
                (n_post, n_pre), cfg.init_gain * math.sqrt(3.0 / n_pre), generator))
            n = n_pre if per_channel else 1
            self.alpha.append(nn.Parameter(torch.full((n,), 0.5)))
            self.beta.append(nn.Parameter(torch.ones(n)))
        self.recurrent = nn.ParameterList()
        self.alpha_rec = nn.ParameterList()
        self.beta_rec = nn.ParameterList()
        if cfg.recurrent:
            for n in sizes[1:-1]:
                self.recurrent.append(uniform_weight(
                    (n, n), 0.5 * cfg.init_gain * math.sqrt(3.0 / n), generator))
                k = n if per_channel else 1
                self.alpha_rec.append(nn.Parameter(torch.full((k,), 0.5)))
                self.beta_rec.append(nn.Parameter(torch.ones(k)))

    @property
    def weights(self) -> list[nn.Parameter]:
        """Feed-forward weights (hidden layers, output layer), then the recurrent V^l."""
        return [*self.layers, *self.recurrent]

    def init_state(self, batch: int):
        w = self.layers[0]
        z = lambda n: torch.zeros(batch, n, dtype=w.dtype, device=w.device)  # noqa: E731
        return {"psp": [z(l.shape[1]) for l in self.layers],
                "v": [z(l.shape[0]) for l in self.layers],
                "s": [z(l.shape[0]) for l in self.layers],
                "psp_rec": [z(v.shape[0]) for v in self.recurrent]}

    @torch.no_grad()
    def step(self, state: dict, x_t: torch.Tensor) -> dict:
        """One step; returns the new state with the inputs/psp needed by the learner."""
        lam, theta = self.cfg.gamma, self.cfg.v_th
        inp = x_t
        new = {"psp": [], "v": [], "s": [], "psp_prev": [], "inp": [], "eps": [],
               "psp_rec": [], "psp_rec_prev": [], "s_prev": []}
        for l, w in enumerate(self.layers):
            psp = psp_step(state["psp"][l], inp, self.alpha[l], self.beta[l])
            v = lam * state["v"][l] + psp @ w.T - theta * state["s"][l]
            if l < len(self.recurrent):
                pr = psp_step(state["psp_rec"][l], state["s"][l], self.alpha_rec[l],
                              self.beta_rec[l])
                v = v + pr @ self.recurrent[l].T
                for k, val in (("psp_rec", pr), ("psp_rec_prev", state["psp_rec"][l]),
                               ("s_prev", state["s"][l])):
                    new[k].append(val)
            s = (v > theta).to(v.dtype)
            for k, val in (("psp_prev", state["psp"][l]), ("inp", inp), ("psp", psp),
                           ("v", v), ("s", s),
                           ("eps", gaussian_surrogate(v, theta, self.sigma))):
                new[k].append(val)
            inp = s
        return new

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor, t_l: int) -> torch.Tensor:
        state = self.init_state(x.shape[1])
        counts = torch.zeros_like(state["s"][-1])
        vsum = torch.zeros_like(counts)
        for t in range(x.shape[0]):
            state = self.step(state, x[t])
            if t >= t_l:
                counts += state["s"][-1]
                vsum += state["v"][-1]
        return counts + 1e-3 * torch.tanh(vsum / max(1, x.shape[0] - t_l))


class SOLSATrainer:
    """SOLSA learning (see module doc).

    Parameters
    ----------
    topk : int
        Scheduled weight update: apply ΔW only at the top-k steps by accumulated |ΔW|,
        re-ranked every ``rerank`` epochs; the first ranking starts from the last step
        alone. 0 applies every step of the learning window.
    early_stop : bool
        Stop learning on a sample once its normalised output spike-count confidence is
        >= ``confidence`` and the prediction is correct.
    """

    rule = "solsa"

    def __init__(self, model: SOLSANet, optimizer: torch.optim.Optimizer,
                 window: int | None = None, topk: int = 8, rerank: int = 2,
                 early_stop: bool = True, confidence: float = 0.9):
        if topk < 0 or rerank < 1:
            raise ValueError("topk must be >= 0 and rerank >= 1")
        self.model, self.optimizer, self.window = model, optimizer, window
        self.topk, self.rerank = topk, rerank
        self.early_stop, self.confidence = early_stop, confidence
        self.schedule: list[int] | None = None      # None: set from T on first batch
        self.step_norms: dict[int, float] = {}

    def start_epoch(self, epoch: int, n_epochs: int) -> None:
        if self.topk and epoch > 0 and epoch % self.rerank == 0 and self.step_norms:
            ranked = sorted(self.step_norms, key=lambda t: -self.step_norms[t])
            self.schedule = sorted(ranked[:self.topk])
            self.step_norms = {}

    def state_dict(self) -> dict:
        return {"schedule": self.schedule, "step_norms": dict(self.step_norms)}

    def load_state_dict(self, state: dict) -> None:
        self.schedule, self.step_norms = state["schedule"], dict(state["step_norms"])

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor, meter=None) -> float:
        from .trainers import first_learning_step

        model = self.model
        lam, theta = model.cfg.gamma, model.cfg.v_th
        n_steps, batch = x.shape[0], x.shape[1]
        t_l = first_learning_step(n_steps, self.window)
        if self.schedule is None:
            self.schedule = [n_steps - 1] if self.topk else list(range(t_l, n_steps))
        sched = set(self.schedule) if self.topk else set(range(t_l, n_steps))
        onehot = torch.nn.functional.one_hot(labels, model.cfg.n_out).to(x.dtype)
        state = model.init_state(batch)
        elig = [x.new_zeros(batch, *w.shape) for w in model.layers]
        elig_rec = [x.new_zeros(batch, *v.shape) for v in model.recurrent]
        eps_prev = [x.new_zeros(batch, w.shape[0]) for w in model.layers]
        g_w = [torch.zeros_like(w) for w in model.layers]
        g_v = [torch.zeros_like(v) for v in model.recurrent]
        g_a = [torch.zeros_like(a) for a in model.alpha]
        g_b = [torch.zeros_like(b) for b in model.beta]
        g_ar = [torch.zeros_like(a) for a in model.alpha_rec]
        g_br = [torch.zeros_like(b) for b in model.beta_rec]
        counts = x.new_zeros(batch, model.cfg.n_out)
        active = x.new_ones(batch)
        total = 0.0
        with torch.no_grad():
            for t in range(n_steps):
                state = model.step(state, x[t])
                elig = [solsa_eligibility_step(e, ep, p, lam, theta)
                        for e, ep, p in zip(elig, eps_prev, state["psp"])]
                elig_rec = [solsa_eligibility_step(e, ep, p, lam, theta)
                            for e, ep, p in zip(elig_rec, eps_prev, state["psp_rec"])]
                eps_prev = state["eps"]
                if meter is not None:
                    meter.set_state("eligibility", [*elig, *elig_rec, *eps_prev,
                                                    *state["psp"], *state["psp_rec"]])
                s_out = state["s"][-1]
                counts += s_out
                if t < t_l:
                    continue
                total += float(((s_out - onehot) ** 2).mean()) / (n_steps - t_l)
                delta = solsa_output_signal(s_out, onehot, state["eps"][-1])
                delta = delta * active[:, None] / batch
                norm = 0.0
                for l in range(len(model.layers) - 1, -1, -1):
                    dw = torch.einsum("bi,bij->ij", delta, elig[l])
                    back = delta @ model.layers[l]             # (B, N_in) = δ W
                    ga = (back * state["psp_prev"][l])
                    gb = (back * state["inp"][l])
                    if t in sched:
                        g_w[l] += dw
                        g_a[l] += ga.sum(0) if g_a[l].numel() > 1 else ga.sum()
                        g_b[l] += gb.sum(0) if g_b[l].numel() > 1 else gb.sum()
                    norm += float(dw.abs().sum())
                    if l < len(model.recurrent):
                        dv = torch.einsum("bi,bij->ij", delta, elig_rec[l])
                        back_r = delta @ model.recurrent[l]
                        gar = back_r * state["psp_rec_prev"][l]
                        gbr = back_r * state["s_prev"][l]
                        if t in sched:
                            g_v[l] += dv
                            g_ar[l] += gar.sum(0) if g_ar[l].numel() > 1 else gar.sum()
                            g_br[l] += gbr.sum(0) if g_br[l].numel() > 1 else gbr.sum()
                        norm += float(dv.abs().sum())
                    if l > 0:
                        delta = back * model.beta[l] * state["eps"][l - 1]
                self.step_norms[t] = self.step_norms.get(t, 0.0) + norm
                if self.early_stop:
                    conf = counts.max(-1).values / counts.sum(-1).clamp(min=1)
                    done = (counts.argmax(-1) == labels) & (conf >= self.confidence) \
                        & (counts.sum(-1) > 0)
                    active = active * (~done).to(x.dtype)
        params = [*model.layers, *model.alpha, *model.beta, *model.recurrent,
                  *model.alpha_rec, *model.beta_rec]
        for p, g in zip(params, [*g_w, *g_a, *g_b, *g_v, *g_ar, *g_br]):
            p.grad = g.reshape(p.shape)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for a in [*model.alpha, *model.alpha_rec]:
                a.clamp_(0.0, 1.0)
        return total
