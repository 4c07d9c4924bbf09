"""SOLSA's network: current-based LIF layers (all spiking, output included) with
learnable synaptic filters. Its learning rule is :mod:`lava_local.rules.solsa`; the
equations are :mod:`lava_local.functional.solsa`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..functional.solsa import gaussian_surrogate, psp_step
from .model import NetConfig, uniform_weight


class SOLSAState(NamedTuple):
    """State after a step, per layer: synaptic filters of the inputs ``psp``, membranes
    ``v``, spikes ``s``, and (recurrent layers) the filters of their own spikes."""

    psp: list
    v: list
    s: list
    psp_rec: list


class SOLSAStep(NamedTuple):
    """What a step used, per layer (for the learner): the filters before the step, the
    layer's input spikes, the Gaussian ε(v), and for recurrent layers the recurrent
    filters before the step and the spikes of t-1."""

    psp_prev: list
    inp: list
    eps: list
    psp_rec_prev: list
    s_prev: list


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

    def init_state(self, batch: int) -> SOLSAState:
        w = self.layers[0]
        z = lambda n: torch.zeros(batch, n, dtype=w.dtype, device=w.device)  # noqa: E731
        return SOLSAState([z(l.shape[1]) for l in self.layers],
                          [z(l.shape[0]) for l in self.layers],
                          [z(l.shape[0]) for l in self.layers],
                          [z(v.shape[0]) for v in self.recurrent])

    @torch.no_grad()
    def step(self, state: SOLSAState, x_t: torch.Tensor) -> tuple[SOLSAState, SOLSAStep]:
        """One step: the new state, and what the step used (for the learner)."""
        lam, theta = self.cfg.gamma, self.cfg.v_th
        inp = x_t
        new, used = SOLSAState([], [], [], []), SOLSAStep([], [], [], [], [])
        for l, w in enumerate(self.layers):
            psp = psp_step(state.psp[l], inp, self.alpha[l], self.beta[l])
            v = lam * state.v[l] + psp @ w.T - theta * state.s[l]
            if l < len(self.recurrent):
                pr = psp_step(state.psp_rec[l], state.s[l], self.alpha_rec[l],
                              self.beta_rec[l])
                v = v + pr @ self.recurrent[l].T
                new.psp_rec.append(pr)
                used.psp_rec_prev.append(state.psp_rec[l])
                used.s_prev.append(state.s[l])
            s = (v > theta).to(v.dtype)
            new.psp.append(psp)
            new.v.append(v)
            new.s.append(s)
            used.psp_prev.append(state.psp[l])
            used.inp.append(inp)
            used.eps.append(gaussian_surrogate(v, theta, self.sigma))
            inp = s
        return new, used

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor, t_l: int) -> torch.Tensor:
        state = self.init_state(x.shape[1])
        counts = torch.zeros_like(state.s[-1])
        vsum = torch.zeros_like(counts)
        for t in range(x.shape[0]):
            state, _ = self.step(state, x[t])
            if t >= t_l:
                counts += state.s[-1]
                vsum += state.v[-1]
        return counts + 1e-3 * torch.tanh(vsum / max(1, x.shape[0] - t_l))
