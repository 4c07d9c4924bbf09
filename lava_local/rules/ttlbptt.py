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
from .base import Costs, GraphLearning, GraphParts, Rule, RuleParams, option, positive_int

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
                    total += F.cross_entropy(outs[-1].detach(), labels) / b.n_win
            if loss.requires_grad:
                loss.backward()
                if self.params.update == "window":
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
        if self.params.update == "sample":
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return float(total)          # the batch's one host sync


class TTLBPTTRule(Rule):
    name = "ttlbptt"
    title = "TTL-BPTT"
    paper = "Guo et al., Front. Neurosci. 2023"
    Params = TTLBPTTParams
    layers = frozenset({"dense", "conv"})

    def trainer_class(self):
        return TTLBPTTTrainer

    @property
    def graph(self):
        return TTLGraph()

    def memory_values(self, c: Costs, params) -> int:
        return min(params.trunc or c.n_steps, c.n_steps) * c.neurons

    def learning_macs(self, c: Costs, params) -> int:
        """The backward pass of BPTT (truncation cuts memory, not per-step work)."""
        return 2 * c.n_steps * c.synapses

    def memory_formula(self) -> str:
        return "K Σ N_l"

    def macs_formula(self) -> str:
        return "2 T Σ N_l N_{l-1}"



# -- on the Lava graph ---------------------------------------------------------------------

class TTLParts(GraphParts):
    """TTL-BPTT's graph: one :class:`~lava_local.processes.ttl_block.TTLBlock` per block,
    fed by the dataloader and by the block before it; no Dense, no learning engine."""

    def __init__(self, params: TTLBPTTParams, record: dict, aux: list):
        super().__init__(record)
        self.params, self.aux = params, aux

    def build_graph(self, net, dataset, backend, eta, n_samples, rng_seed):
        import numpy as np
        from lava.proc.io.dataloader import SpikeDataloader

        from ..fixed import quantize_input
        from ..networks.graph import GraphContext, LavaGraph, SpikeAdapter
        from ..processes.ttl_block import TTLBlock

        if getattr(dataset, "graded", False):
            raise ValueError("TTL-BPTT's on-graph blocks take spike inputs; this data set "
                             "has graded features")
        fixed = backend != "sim-float"
        data = SpikeAdapter(dataset, n_samples, quantize_input if fixed and
                            getattr(dataset, "graded", False) else None)
        n = len(data)
        n_steps = net.n_steps
        interval = n_steps + 2
        k = n_steps if self.params.trunc is None else min(self.params.trunc, n_steps)
        blocks = self.blocks(net.n_hidden)
        ctx = GraphContext(net, backend, interval, [0] * len(net.weights), 7, eta)
        ctx.loader = SpikeDataloader(dataset=data, interval=interval, offset=0)
        procs, src = [], ctx.loader.s_out
        for bi, blk in enumerate(blocks):
            last = bi == len(blocks) - 1
            classifier = net.weights[-1] if last else self.aux[bi]
            proc = TTLBlock(weights=[net.weights[li] for li in blk] + [classifier],
                            gamma=net.gamma, v_th=net.v_th, kappa=net.kappa,
                            surrogate=net.surrogate, trunc=k, n_steps=n_steps,
                            window_start=net.window_start, update=self.params.update,
                            eta=eta, interval=interval, offset=2, last=last, n_samples=n,
                            rng_seed=rng_seed + bi, name=f"ttl_block{bi}")
            src.connect(proc.s_in)
            ctx.loader.ground_truth.connect(proc.label_in)
            src = proc.s_out
            procs.append(proc)
        ctx.readout = procs[-1]

        def read_learned() -> dict:
            weights, aux = [], dict(net.matrices)
            for bi, proc in enumerate(procs):
                *layers, classifier = proc.learned_weights()
                weights += layers
                if bi < len(procs) - 1:
                    aux[f"aux.{bi}"] = classifier
                else:
                    weights.append(classifier)
            return {"weights": weights, "matrices": aux}

        record = {**self.record(), "eta": eta, "reset_traces": True, "idle_steps": 0,
                  "frozen": [], "blocks": blocks, "window": k}
        return LavaGraph(ctx, [], record, n, np.asarray(dataset.labels[:n]), True,
                         read_learned=read_learned)

    def blocks(self, n_hidden: int) -> list[list[int]]:
        b = min(self.params.block, n_hidden)
        return [list(range(i, min(i + b, n_hidden))) for i in range(0, n_hidden, b)]


class TTLEngineParts(GraphParts):
    """TTL-BPTT with K = 1, b = 1 on the common graph and the learning engine: per layer
    a :class:`~lava_local.processes.ttl_aux.TTLAuxUnit` (its classifier's error projected
    back, one step late) and :class:`~lava_local.rules.tp.OnChipTP` on its synapses; the
    readout learns e[t] ⊗ y_L[t] (a one-step window) with OnChipTP's one-stage form."""

    def __init__(self, params: TTLBPTTParams, record: dict, aux: list):
        super().__init__(record)
        self.params, self.aux = params, aux

    def _classifier(self, ctx, l: int):
        return self.aux[l] if l < len(self.aux) else ctx.net.weights[-1]

    def hidden_rule(self, ctx, l: int):
        from .tp import OnChipTP

        return OnChipTP(eta=ctx.eta, mode=ctx.mode, weight_precision=ctx.precs[l],
                        delta_max=1.0 / ctx.n_win)

    def delta_unit(self, ctx, l: int) -> float:
        from ..fixed import PROB_BITS, weight_precision

        return 2.0 ** -(weight_precision(self._classifier(ctx, l)) + PROB_BITS) / ctx.n_win

    def neuron_options(self, ctx, l: int) -> dict:
        return {"psi_lag": 1}

    def readout_rule(self, ctx):
        from .tp import OnChipTP

        return OnChipTP(eta=ctx.eta, mode=ctx.mode, weight_precision=ctx.precs[-1],
                        delta_max=1.0 / ctx.n_win, psi_max=1.0, stages=1)

    def trace_decays(self, net) -> list[float]:
        return []

    def attach(self, ctx) -> None:
        from ..processes.ttl_aux import TTLAuxUnit

        for l, neuron in enumerate(ctx.neurons):
            if not ctx.learns[l]:       # frozen (graded inputs, conv)
                continue
            unit = TTLAuxUnit(classifier=self._classifier(ctx, l), kappa=ctx.net.kappa,
                              eta=ctx.eta, interval=ctx.interval, offset=ctx.layer_offset(l),
                              window_start=ctx.window_start, n_steps=ctx.n_steps,
                              name=f"ttl_aux{l}")
            neuron.s_out.connect(unit.s_in)
            ctx.loader.ground_truth.connect(unit.label_in)
            unit.m_out.connect(neuron.a_third_factor_in)


@dataclass(frozen=True, kw_only=True)
class TTLGraphOptions(RuleParams):
    """Options of ``run --learn ttlbptt``."""

    form: str = option("auto", "TTL-BPTT on the graph: one Process per block (any K, b), "
                       "or the learning engine (K = 1, b = 1); auto: the engine when the "
                       "run has K = 1 and b = 1", key="ttl_form",
                       choices=("auto", "blocks", "engine"))


class TTLGraph(GraphLearning):
    mode = "ttlbptt"
    rule = "ttlbptt"
    neuron = "inside TTLBlock (LIF layers of the block, soft reset)"
    signal = ("per block: its auxiliary classifier (the readout for the last block); BPTT "
              "through the block's K-step window at every window end")
    product_series = ("K = 1, b = 1: OnChipTP (the pre spike of the step in the tags) with "
                      "the classifier's error as third factor; other (K, b): none, a "
                      "Python process per block (BPTT is not a product series)")
    backends = ("sim-float", "sim-fixed", "loihi2")
    Options = TTLGraphOptions
    default_eta = 2.0 ** -7

    def bind(self, net, backend, rng_seed=0, options=None):
        import numpy as np

        opts = TTLGraphOptions.from_flat(options or {})
        params = TTLBPTTParams.from_flat(net.params, strict=False)
        if net.conv:
            raise ValueError("TTL-BPTT's on-graph forms are built for dense nets; learn a "
                             "conv net's dense head with --learn stllr-dfa or tess")
        one_step = (params.trunc == 1 or net.n_steps == 1) and (
            params.block == 1 or net.n_hidden == 1)
        form = opts.form if opts.form != "auto" else ("engine" if one_step else "blocks")
        if form == "engine" and not one_step:
            raise ValueError(f"the learning-engine form of TTL-BPTT is its K = 1, b = 1 case; "
                             f"this run has K = {params.trunc}, b = {params.block}: use "
                             "--ttl-form blocks")
        if backend == "loihi2" and form == "blocks":
            raise ValueError("TTL-BPTT's block form is a Python process per block (BPTT "
                             "within a window); it runs on sim-float and sim-fixed")
        n_blocks = -(-net.n_hidden // min(params.block, net.n_hidden))
        aux = []
        for bi in range(n_blocks - 1):
            m = net.matrices.get(f"aux.{bi}")
            if m is None:
                raise ValueError(f"this net has no auxiliary classifier {bi}: --learn "
                                 "ttlbptt needs a net trained with --rule ttlbptt")
            aux.append(np.asarray(m, dtype=np.float64))
        if form == "engine":
            record = {"mode": self.mode, "params": params.to_flat(), "form": "engine",
                      "classifiers": "TTLAuxUnit per layer (the readout's working copy "
                                     "for the last)"}
            return TTLEngineParts(params, record, aux)
        record = {"mode": self.mode, "params": params.to_flat(), "form": "blocks"}
        return TTLParts(params, record, aux)


TTLBPTT = TTLBPTTRule()
