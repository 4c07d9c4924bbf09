"""Back-propagation through time with surrogate gradients: the baseline every rule is
compared with."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..torch.loop import Trainer
from ..torch.spike import make_spike_fn
from .base import ALL_FEATURES, Costs, Rule, RuleParams


@dataclass(frozen=True, kw_only=True)
class BPTTParams(RuleParams):
    """BPTT has no hyper-parameters of its own (the learning window is the run's)."""


class BPTTTrainer(Trainer):
    """Surrogate-gradient back-propagation through time.

    Minimises the per-step softmax cross-entropy of the readout averaged over the
    learning window ``t >= T_l`` and the batch, differentiated exactly through time;
    the autograd graph spans all T steps and its saved activations are the learning
    state that grows linearly with T.
    """

    rule = "bptt"

    def __init__(self, model, optimizer, params: BPTTParams | None = None,
                 window: int | None = None, generator: torch.Generator | None = None):
        super().__init__(model, optimizer, params if params is not None else BPTTParams(),
                         window)
        self.spike_fn = make_spike_fn(model.cfg.surrogate)

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor, meter=None) -> float:
        b = self.batch(x, labels)
        state = self.net_state(b.size)
        loss = x.new_zeros(())
        for t in range(b.n_steps):
            state = self.model.step(state, x[t], self.spike_fn)
            if t >= b.t_l:
                loss = loss + F.cross_entropy(state.o, labels)
        loss = loss / b.n_win
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


class BPTTRule(Rule):
    name = "bptt"
    title = "BPTT (baseline)"
    paper = "surrogate-gradient back-propagation through time"
    Params = BPTTParams
    features = ALL_FEATURES
    layers = frozenset({"dense", "recurrent", "conv"})
    no_graph_reason = ("back-propagation through time needs the whole history of every "
                       "neuron: it has no local, forward-in-time form (the baseline)")

    def trainer_class(self):
        return BPTTTrainer

    def memory_values(self, c: Costs, params) -> int:
        return c.n_steps * c.neurons

    def learning_macs(self, c: Costs, params) -> int:
        return 2 * c.n_steps * c.synapses

    def memory_formula(self) -> str:
        return "T Σ N_l"

    def macs_formula(self) -> str:
        return "2 T Σ N_l N_{l-1}"


BPTT = BPTTRule()
