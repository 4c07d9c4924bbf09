"""Traces Propagation: the rule, its hyper-parameters and its batched trainer.

Equations: :mod:`lava_local.functional.tp`. No on-graph form yet: its layer loss
contrasts the samples of a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..functional.lif import LIFState, leaky_readout_step, lif_step
from ..functional.tp import tp_contrastive_loss, tp_soft_targets
from ..torch.loop import Batch, LocalTrainer, detach_lif
from ..torch.spike import make_spike_fn
from .base import Costs, Rule, RuleParams, option


@dataclass(frozen=True, kw_only=True)
class TPParams(RuleParams):
    """Hyper-parameters of Traces Propagation.

    Attributes
    ----------
    beta : float
        Trace decay β in [0, 1] of both paths (flat key ``tp_beta``).
    """

    beta: float = option(0.9, "Traces Propagation trace decay β", key="tp_beta", type=float)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"tp_beta (the TP trace decay β) must lie in [0, 1], got "
                             f"{self.beta}")


class TPState(NamedTuple):
    """Both paths' LIF states and β-traces per hidden layer, the label trace, the readout
    and the step's values (last layer's spikes, per-layer one-step gradients)."""

    inp: list
    tgt: list
    eps: list
    eps_t: list
    eps0_t: torch.Tensor
    o: torch.Tensor
    grads: list | None


class TPTrainer(LocalTrainer):
    """Traces Propagation (Pes et al. 2025) on a dense, recurrent or conv net.

    The batch runs through every hidden layer twice: the input path (spikes of the data)
    and the target path (the one-hot label projected into layer 1 by a fixed matrix
    ``S`` (C, H_1) through LIF neurons of the same kind, then through the SAME weights
    W_l). Each layer keeps the β-traces of both paths and minimises its contrastive loss
    (:func:`lava_local.functional.tp.tp_contrastive_loss`) with soft targets from the
    layer below's target trace; the gradient goes through one layer and one step only
    (inputs and earlier states detached). The readout learns from
    ``(softmax(o) - onehot)ᵀ ε_L / B``. Updates are applied every step (Adam); the
    learning rate follows a cosine from lr to 0.25·lr over the epochs.
    """

    rule = "tp"

    def __init__(self, model, optimizer, params: TPParams | None = None,
                 window: int | None = None, generator: torch.Generator | None = None):
        params = params if params is not None else TPParams()
        super().__init__(model, optimizer, params, window)
        self.rec = len(model.recurrent) > 0  # V^l y^l[t-1] on both paths, learned like W
        self.spike_fn = make_spike_fn(model.cfg.surrogate)
        w = model.readout
        c = model.cfg.n_out
        bound = (6.0 / c) ** 0.5
        n1 = model.cfg.layer_sizes[1]  # S projects the label onto every neuron of layer 1
        self.label_proj = ((torch.rand(c, n1, generator=generator) * 2 - 1) * bound
                           ).to(w.device, w.dtype)

    @property
    def update_every_step(self) -> bool:
        return True

    def start_epoch(self, epoch: int, n_epochs: int) -> None:
        """Cosine annealing from lr to 0.25·lr over ``n_epochs``."""
        f = 0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * epoch / max(1, n_epochs)))
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = lr * f

    def state_dict(self) -> dict:
        return {"label_proj": self.label_proj}

    def load_state_dict(self, state: dict) -> None:
        self.label_proj = state["label_proj"].to(self.label_proj.device)

    def init_state(self, x: torch.Tensor, b: Batch) -> TPState:
        if b.size < 2:
            raise ValueError("Traces Propagation contrasts the samples of a batch and needs "
                             "a batch size >= 2; use --batch-size 2 or more")
        zeros = [torch.zeros_like(s.u) for s in self.model.init_state(b.size).layers]
        return TPState([LIFState(z, z) for z in zeros], [LIFState(z, z) for z in zeros],
                       list(zeros), list(zeros), x.new_zeros(b.size, self.model.cfg.n_out),
                       x.new_zeros(b.size, self.model.cfg.n_out), None)

    def advance(self, s: TPState, x_t: torch.Tensor, learn: bool, b: Batch) -> TPState:
        """One step of both paths through every layer (with each layer's one-step
        gradient when learning), then the readout."""
        model, cfg, beta = self.model, self.model.cfg, self.params.beta
        eps0_t = beta * s.eps0_t + b.onehot
        below, inp, inp_t = eps0_t, x_t, None
        grads = [] if learn else None
        new_inp, new_tgt, new_eps, new_eps_t = [], [], [], []
        for l, w in enumerate(model.hidden):
            with torch.set_grad_enabled(learn):
                cur = model.layer_current(l, model.layer_input(l, inp.detach()))
                if l == 0:
                    cur_t = (b.onehot @ self.label_proj).reshape(cur.shape)
                else:
                    cur_t = model.layer_current(l, model.layer_input(l, inp_t.detach()))
                if self.rec:
                    v = model.recurrent[l]
                    cur = cur + s.inp[l].y.detach() @ v.T
                    cur_t = cur_t + s.tgt[l].y.detach() @ v.T
                s_in = lif_step(detach_lif(s.inp[l]), cur, cfg.gamma, cfg.v_th, self.spike_fn)
                s_tg = lif_step(detach_lif(s.tgt[l]), cur_t, cfg.gamma, cfg.v_th,
                                self.spike_fn)
                e = beta * s.eps[l] + s_in.y
                e_t = beta * s.eps_t[l] + s_tg.y
                if learn:
                    loss = tp_contrastive_loss(e, e_t,
                                               tp_soft_targets(below.detach().flatten(1)))
                    params = [w, model.recurrent[l]] if self.rec else [w]
                    grads.append(torch.autograd.grad(loss, params))
            new_inp.append(detach_lif(s_in))
            new_tgt.append(detach_lif(s_tg))
            new_eps.append(e.detach())
            new_eps_t.append(e_t.detach())
            below, inp, inp_t = e_t.detach(), s_in.y.detach(), s_tg.y.detach()
        with torch.no_grad():
            o = leaky_readout_step(s.o, model.readout_input(inp) @ model.readout.T, cfg.kappa)
        return TPState(new_inp, new_tgt, new_eps, new_eps_t, eps0_t, o, grads)

    def traces(self, s: TPState) -> list[torch.Tensor]:
        return [*s.eps, *s.eps_t, s.eps0_t]

    def learn(self, s: TPState, t: int, b: Batch):
        model = self.model
        loss = float(F.cross_entropy(s.o, b.labels)) / b.n_win
        err = torch.softmax(s.o, -1) - b.onehot
        g_out = err.T @ model.readout_input(s.eps[-1]) / b.size
        ordered = [g[0] for g in s.grads] + [g[1] for g in s.grads if len(g) > 1]
        return loss, [*ordered, g_out]


class TPRule(Rule):
    name = "tp"
    title = "Traces Propagation"
    paper = "Pes, Yin, Stuijk, Corradi (arXiv 2509.13053)"
    Params = TPParams
    layers = frozenset({"dense", "recurrent", "conv"})
    min_batch = 2
    no_graph_reason = ("its layer loss contrasts the samples of a batch (B >= 2), which a "
                       "chip learning one sample at a time does not have; the per-class "
                       "prototype variant is its planned on-chip form")

    def trainer_class(self):
        return TPTrainer

    def memory_values(self, c: Costs, params) -> int:
        """ε and ε̃ per hidden neuron, plus the label trace."""
        return 2 * sum(c.hidden) + c.layer_sizes[-1]

    def learning_macs(self, c: Costs, params) -> int:
        """One-layer weight gradients of both paths, every learning step."""
        return 2 * c.learning_steps * c.synapses

    def memory_formula(self) -> str:
        return "2 Σ_hidden N_l + C"

    def macs_formula(self) -> str:
        return "2 (T - T_l) Σ N_l N_{l-1}"


TP = TPRule()
