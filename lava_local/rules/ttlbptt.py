"""Temporally-truncated, locally supervised BPTT (TTL-BPTT): the rule, its
hyper-parameters and its batched trainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..functional.lif import LIFState, leaky_readout_step, lif_step
from ..torch.loop import Trainer
from ..torch.model import uniform_weight
from ..torch.spike import make_spike_fn
from .base import Costs, Rule, RuleParams, option, positive_int

UPDATES = ("window", "sample")


@dataclass(frozen=True, kw_only=True)
class TTLBPTTParams(RuleParams):
    """Hyper-parameters of TTL-BPTT.

    Attributes
    ----------
    trunc : int or None
        Truncation window K (None: the whole sequence).
    block : int
        Hidden layers per block b.
    update : {"window", "sample"}
        Optimiser step after every window or once per sample.
    """

    trunc: int | None = option(5, "TTL-BPTT truncation window K", key="ttl_trunc",
                               type=positive_int, metavar="K")
    block: int = option(1, "TTL-BPTT block size b (hidden layers per block)",
                        key="ttl_block", type=positive_int, metavar="B")
    update: str = option("window", "TTL-BPTT update per window or per sample",
                         key="ttl_update", choices=UPDATES)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.trunc is not None and self.trunc < 1:
            raise ValueError(f"the TTL-BPTT truncation window K must be >= 1, got {self.trunc}")
        if self.block < 1:
            raise ValueError(f"the TTL-BPTT block size b must be >= 1, got {self.block}")
        if self.update not in UPDATES:
            raise ValueError(f"ttl_update must be one of {UPDATES}, got {self.update!r}")


class TTLBPTTTrainer(Trainer):
    """Temporally-truncated, locally supervised BPTT (Guo et al., Front. Neurosci. 2023).

    The T steps are cut into windows of ``trunc`` (K) steps and the hidden layers into
    blocks of ``block`` (b) layers. Each block but the last has an auxiliary leaky
    classifier (``aux``, trained with it); the last block uses the network's readout.
    A block's input is detached (no gradient crosses blocks) and every state is detached
    at a window boundary (no gradient crosses windows); neuron states still carry across
    windows. Each window back-propagates the block losses of its steps (per-step
    cross-entropy over the learning window, averaged as in BPTT) and the optimiser steps
    after every window (``update="window"``) or once per sample (``"sample"``).

    K = T with one block is BPTT; K = 1 with b = 1 is a per-step, layer-local rule.
    Memory is O(K · N_block) instead of O(T · N).
    """

    rule = "ttlbptt"

    def __init__(self, model, optimizer=None, params: TTLBPTTParams | None = None,
                 window: int | None = None, generator: torch.Generator | None = None):
        params = params if params is not None else TTLBPTTParams()
        if len(model.recurrent):
            raise ValueError("TTL-BPTT does not support recurrent layers yet")
        super().__init__(model, None, params, window)
        n_hidden = len(model.hidden)
        b = min(params.block, n_hidden)
        self.blocks = [list(range(i, min(i + b, n_hidden))) for i in range(0, n_hidden, b)]
        self.spike_fn = make_spike_fn(model.cfg.surrogate)
        w = model.readout
        aux = []
        for blk in self.blocks[:-1]:
            n = model.cfg.layer_sizes[1 + blk[-1]]
            p = uniform_weight((model.cfg.n_out, n), (1.0 / n) ** 0.5, generator)
            aux.append(nn.Parameter(p.detach().to(w.device, w.dtype)))
        self.aux = nn.ParameterList(aux)
        if optimizer is not None:
            self.attach_optimizer(optimizer)

    def parameters(self):
        """Model and auxiliary-classifier parameters (what the optimiser must update)."""
        return [*self.model.parameters(), *self.aux.parameters()]

    def state_dict(self) -> dict:
        return {"aux": self.aux.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.aux.load_state_dict(state["aux"])

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor, meter=None) -> float:
        cfg, model = self.model.cfg, self.model
        b = self.batch(x, labels)
        k = b.n_steps if self.params.trunc is None else min(self.params.trunc, b.n_steps)
        state = model.init_state(b.size)
        layers = list(state.layers)
        outs = [torch.zeros_like(state.o) for _ in self.aux] + [state.o]
        total = 0.0
        self.optimizer.zero_grad(set_to_none=True)
        for start in range(0, b.n_steps, k):
            layers = [LIFState(s.u.detach(), s.y.detach()) for s in layers]
            outs = [o.detach() for o in outs]
            loss = x.new_zeros(())
            for t in range(start, min(start + k, b.n_steps)):
                inp = x[t]
                for bi, blk in enumerate(self.blocks):
                    inp = inp.detach()
                    for li in blk:
                        s = layers[li]
                        cur = model.layer_current(li, model.layer_input(li, inp))
                        layers[li] = lif_step(LIFState(s.u, s.y.detach()), cur, cfg.gamma,
                                              cfg.v_th, self.spike_fn)
                        inp = layers[li].y
                    if bi < len(self.aux):
                        o_in, w_out = inp.flatten(1), self.aux[bi]
                    else:
                        o_in, w_out = model.readout_input(inp), model.readout
                    outs[bi] = leaky_readout_step(outs[bi], o_in @ w_out.T, cfg.kappa)
                    if t >= b.t_l:
                        loss = loss + F.cross_entropy(outs[bi], labels) / b.n_win
                if t >= b.t_l:
                    total += float(F.cross_entropy(outs[-1].detach(), labels)) / b.n_win
            if loss.requires_grad:
                loss.backward()
                if self.params.update == "window":
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
        if self.params.update == "sample":
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return total


class TTLBPTTRule(Rule):
    name = "ttlbptt"
    title = "TTL-BPTT"
    paper = "Guo et al., Front. Neurosci. 2023"
    Params = TTLBPTTParams
    layers = frozenset({"dense", "conv"})
    no_graph_reason = ("each K-step window back-propagates through time and through a "
                       "block with autograd (an offline method by design); its on-graph "
                       "form (K = 1, b = 1) is not built yet")

    def trainer_class(self):
        return TTLBPTTTrainer

    def memory_values(self, c: Costs, params) -> int:
        return min(params.trunc or c.n_steps, c.n_steps) * c.neurons

    def learning_macs(self, c: Costs, params) -> int:
        """The backward pass of BPTT (truncation cuts memory, not per-step work)."""
        return 2 * c.n_steps * c.synapses

    def memory_formula(self) -> str:
        return "K Σ N_l"

    def macs_formula(self) -> str:
        return "2 T Σ N_l N_{l-1}"


TTLBPTT = TTLBPTTRule()
