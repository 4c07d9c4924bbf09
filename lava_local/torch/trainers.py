"""Batched trainers: S-TLLR (forward in time, no graph across steps) and BPTT.

Both minimise the same loss, the per-step softmax cross-entropy of the readout averaged
over the learning window ``t >= t_l`` and over the batch:

.. math::

    \\mathcal{L} = \\frac{1}{B\\,(T - T_l)} \\sum_b \\sum_{t=T_l}^{T-1} \\mathrm{CE}(o_b[t], c_b)

BPTT differentiates it exactly through time. S-TLLR replaces the temporal credit
assignment with its eligibility traces and the instantaneous learning signal δ[t]
(``bp``: back-propagated through the layers within step t only; ``dfa``: fixed random
feedback of the output error). The leaky readout is linear, so its gradient is exact
with a pre trace of decay κ: :math:`∂o[t]/∂W_{out} = \\sum_{t'} κ^{t-t'} y^L[t']`.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from ..functional.stllr import noncausal_trace, stllr_update
from ..functional.surrogates import get_surrogate
from ..functional.traces import post_trace_step, pre_trace_step
from ..rules.stllr import STLLRParams
from .model import DenseSNN, NetState, uniform_weight
from .spike import make_spike_fn

RULES = ("stllr", "tess", "tp", "solsa", "ttlbptt", "bptt")


class StateMeter(Protocol):
    """What a trainer reports its explicit learning state to (see ``accounting``)."""

    def set_state(self, name: str, tensors: list[torch.Tensor]) -> None: ...


def first_learning_step(n_steps: int, window: int | None) -> int:
    """T_l = T - window (``window`` learning steps at the end; None = all T steps)."""
    if window is None:
        return 0
    if not 1 <= window <= n_steps:
        raise ValueError(f"the learning window must be in [1, T={n_steps}], got {window}")
    return n_steps - window


class BPTTTrainer:
    """Surrogate-gradient back-propagation through time (the baseline).

    The autograd graph spans all T steps; its saved activations are the learning state
    that grows linearly with T.
    """

    rule = "bptt"

    def __init__(self, model: DenseSNN, optimizer: torch.optim.Optimizer,
                 window: int | None = None):
        self.model = model
        self.optimizer = optimizer
        self.window = window
        self.spike_fn = make_spike_fn(model.cfg.surrogate)

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor,
                    meter: StateMeter | None = None) -> float:
        """One optimiser step on a batch ``x`` (T, B, n_in); returns the loss."""
        n_steps, batch = x.shape[0], x.shape[1]
        t_l = first_learning_step(n_steps, self.window)
        state = self.model.init_state(batch)
        loss = x.new_zeros(())
        for t in range(n_steps):
            state = self.model.step(state, x[t], self.spike_fn)
            if t >= t_l:
                loss = loss + F.cross_entropy(state.o, labels)
        loss = loss / (n_steps - t_l)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


class STLLRTrainer:
    """S-TLLR on a :class:`DenseSNN`.

    At each step the network advances with every state from step t-1 detached, so the
    only autograd graph is the one of step t (used by the ``bp`` signal to propagate the
    output error through the layers of that step) and it is freed before step t+1. The
    learning state carried across steps is two traces per layer (pre trace ``q`` over the
    layer's inputs, post trace ``h`` over its neurons) and the readout's pre trace.
    """

    rule = "stllr"

    def __init__(self, model: DenseSNN, optimizer: torch.optim.Optimizer,
                 params: STLLRParams | None = None, window: int | None = None,
                 generator: torch.Generator | None = None):
        self.model = model
        self.optimizer = optimizer
        self.params = params = params if params is not None else STLLRParams()
        self.window = window
        self.spike_fn = make_spike_fn(model.cfg.surrogate)
        self.psi = get_surrogate(model.cfg.surrogate)
        self.feedback: list[torch.Tensor] = []
        if params.signal == "dfa":
            # Fixed random feedback B^l (N_l x C), Kaiming-uniform, never trained.
            w = model.readout
            for n in model.cfg.layer_sizes[1:-1]:
                b = torch.empty(n, model.cfg.n_out)
                bound = (6.0 / model.cfg.n_out) ** 0.5
                b.uniform_(-bound, bound, generator=generator)
                self.feedback.append(b.to(w.device, w.dtype))

    @staticmethod
    def _detach(state: NetState) -> NetState:
        return NetState([type(s)(s.u.detach(), s.y.detach()) for s in state.layers],
                        state.o.detach())

    @property
    def needs_step_graph(self) -> bool:
        """Whether the learning signal back-propagates through the layers of a step."""
        return self.params.signal == "bp"

    def step(self, state: NetState, x_t: torch.Tensor, learn: bool) -> NetState:
        """Advance one step with the graph cut at the step boundary."""
        with torch.set_grad_enabled(learn and self.needs_step_graph):
            return self.model.step(self._detach(state), x_t, self.spike_fn)

    def learning_signals(self, state: NetState, err: torch.Tensor, onehot: torch.Tensor,
                         scale: float) -> list[torch.Tensor]:
        """δ^l[t] = ∂L[t]/∂y^l[t] for every hidden layer, given the output error ``err``
        (already multiplied by ``scale`` = 1 / (batch · window))."""
        if self.params.signal == "dfa":
            return [(err @ b.T).reshape(s.y.shape) for b, s in zip(self.feedback, state.layers)]
        ys = [s.y for s in state.layers]
        return list(torch.autograd.grad(state.o, ys, grad_outputs=err))

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor,
                    meter: StateMeter | None = None) -> float:
        """Run a batch ``x`` (T, B, n_in) forward in time and apply the S-TLLR update."""
        p, cfg, model = self.params, self.model.cfg, self.model
        n_steps, batch = x.shape[0], x.shape[1]
        t_l = first_learning_step(n_steps, self.window)
        n_win = n_steps - t_l
        onehot = F.one_hot(labels, cfg.n_out).to(x.dtype)
        state = model.init_state(batch)
        # Learning state: q over each layer's inputs, h over its neurons (h holds the value
        # for the *next* step, λ_post h[t] + Ψ(u[t])), and the readout's κ-trace of y^L.
        q = [None] * len(model.hidden)           # shaped like each layer's input
        h = [torch.zeros_like(s.u) for s in state.layers]
        q_out = x.new_zeros(batch, model.readout.shape[1])
        # recurrent synapses: their input is the layer's own spikes of the previous step
        n_hidden, rec = len(model.hidden), len(model.recurrent) > 0
        q_rec = [x.new_zeros(batch, w.shape[0]) for w in model.recurrent]
        grads = [torch.zeros_like(w) for w in model.weights]
        total = 0.0
        for t in range(n_steps):
            learn = t >= t_l
            rec_in = [s.y.detach() for s in state.layers] if rec else []
            state = self.step(state, x[t], learn)
            with torch.no_grad():
                inputs = [model.layer_input(l, a) for l, a in
                          enumerate([x[t]] + [s.y.detach() for s in state.layers[:-1]])]
                q = [pre_trace_step(torch.zeros_like(xi) if qi is None else qi, xi, p.lam_pre)
                     for qi, xi in zip(q, inputs)]
                q_rec = [pre_trace_step(qi, xi, p.lam_pre) for qi, xi in zip(q_rec, rec_in)]
                q_out = pre_trace_step(q_out, model.readout_input(state.layers[-1].y.detach()),
                                       cfg.kappa)
                psi = [self.psi(s.u.detach(), cfg.v_th) for s in state.layers]
            if meter is not None:
                meter.set_state("traces", [*q, *h, *q_rec, q_out])
            if learn:
                o = state.o.detach()
                err = (torch.softmax(o, -1) - onehot) / (batch * n_win)
                total += float(F.cross_entropy(o, labels)) / n_win
                deltas = self.learning_signals(state, err, onehot, 1.0 / (batch * n_win))
                with torch.no_grad():
                    for l, (d, ps, ql, hl, xl) in enumerate(zip(deltas, psi, q, h, inputs)):
                        h_eff = noncausal_trace(hl, p.lam_post, p.post_form)
                        grads[l] += stllr_update(d, ps, ql, h_eff, xl, p.alpha_pre,
                                                 p.alpha_post, self._outer(l))
                        if rec:
                            grads[n_hidden + l] += stllr_update(d, ps, q_rec[l], h_eff,
                                                                rec_in[l], p.alpha_pre,
                                                                p.alpha_post)
                    grads[-1] += err.T @ q_out
                if p.online:
                    self._apply(grads)
                    grads = [torch.zeros_like(w) for w in model.weights]
            with torch.no_grad():
                h = [post_trace_step(hl, ps, p.lam_post) for hl, ps in zip(h, psi)]
            state = self._detach(state)  # free step t's graph now
        if not p.online:
            self._apply(grads)
        return total

    def _outer(self, l: int):
        model = self.model
        return lambda g, a: model.weight_grad(l, a, g)

    def _apply(self, grads: list[torch.Tensor]) -> None:
        for w, g in zip(self.model.weights, grads):
            w.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


class TESSTrainer(STLLRTrainer):
    """TESS: S-TLLR's traces and update with a layer-local learning signal.

    Every hidden layer l gets :math:`m^l[t] = B^{lT}(f(B^l y^l[t]) - y^*)` from its own
    spikes and a fixed square-wave projection :math:`B^l`
    (:func:`lava_local.functional.tess.tess_signal`), scaled like the output error
    (1 / (batch · window)). Nothing crosses a layer: no step graph is built and each
    layer's update depends only on its own input and output. The readout learns from its
    own per-step cross-entropy (exact, through its κ-trace), as in S-TLLR.
    """

    rule = "tess"

    def __init__(self, model: DenseSNN, optimizer: torch.optim.Optimizer,
                 params: STLLRParams | None = None, window: int | None = None,
                 f: str = "softmax", f_lo: float = 50.0, f_hi: float = 512.0,
                 pool: int = 0):
        from ..functional.tess import TESS_F, square_wave_projection

        if f not in TESS_F:
            raise ValueError(f"unknown TESS output function {f!r}; use one of {TESS_F}")
        if pool < 0:
            raise ValueError(f"pool must be >= 0 (0: no pooling), got {pool}")
        super().__init__(model, optimizer, params, window)
        self.f, self.pool = f, pool
        w = model.readout
        # conv layers: optional average pooling of the output to a×a before projecting
        # (the public code's choice; not in the paper), a = min(pool, map size)
        self.pool_sizes = []
        sizes = []
        for l, n in enumerate(model.cfg.layer_sizes[1:-1]):
            out = model.plan[l]["out"] if hasattr(model, "plan") else (n,)
            a = min(pool, out[1]) if pool and len(out) == 3 else 0
            self.pool_sizes.append(a)
            sizes.append(out[0] * a * a if a else n)
        self.projections = [
            torch.as_tensor(square_wave_projection(model.cfg.n_out, n, f_lo, f_hi),
                            dtype=w.dtype, device=w.device)
            for n in sizes]

    @property
    def needs_step_graph(self) -> bool:
        return False

    def learning_signals(self, state, err, onehot, scale):
        from ..functional.tess import tess_signal

        out = []
        for s, b, a in zip(state.layers, self.projections, self.pool_sizes):
            if not a:
                out.append((tess_signal(s.y.flatten(1), b, onehot, self.f) * scale)
                           .reshape(s.y.shape))
                continue
            y = s.y.detach().requires_grad_()
            with torch.enable_grad():
                z = F.adaptive_avg_pool2d(y, a).flatten(1)
            m = tess_signal(z.detach(), b, onehot, self.f) * scale
            out.append(torch.autograd.grad(z, y, grad_outputs=m)[0])  # pooling's adjoint
        return out


class TTLBPTTTrainer:
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
    UPDATES = ("window", "sample")

    def __init__(self, model: DenseSNN, optimizer: torch.optim.Optimizer | None = None,
                 window: int | None = None, trunc: int | None = None, block: int = 1,
                 update: str = "window", generator: torch.Generator | None = None):
        from torch import nn

        if trunc is not None and trunc < 1:
            raise ValueError(f"the truncation window K must be >= 1, got {trunc}")
        if block < 1:
            raise ValueError(f"the block size b must be >= 1, got {block}")
        if update not in self.UPDATES:
            raise ValueError(f"update must be one of {self.UPDATES}, got {update!r}")
        if len(model.recurrent):
            raise ValueError("TTL-BPTT does not support recurrent layers yet")
        self.model, self.optimizer, self.window = model, optimizer, window
        self.trunc, self.update = trunc, update
        n_hidden = len(model.hidden)
        b = min(block, n_hidden)
        self.blocks = [list(range(i, min(i + b, n_hidden))) for i in range(0, n_hidden, b)]
        self.spike_fn = make_spike_fn(model.cfg.surrogate)
        w = model.readout
        aux = []
        for blk in self.blocks[:-1]:
            n = model.cfg.layer_sizes[1 + blk[-1]]
            p = uniform_weight((model.cfg.n_out, n), (1.0 / n) ** 0.5, generator)
            aux.append(nn.Parameter(p.detach().to(w.device, w.dtype)))
        self.aux = nn.ParameterList(aux)

    def parameters(self):
        """Model and auxiliary-classifier parameters (what the optimiser must update)."""
        return [*self.model.parameters(), *self.aux.parameters()]

    def state_dict(self) -> dict:
        return {"aux": self.aux.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.aux.load_state_dict(state["aux"])

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor,
                    meter: StateMeter | None = None) -> float:
        from ..functional.lif import LIFState, leaky_readout_step, lif_step

        cfg, model = self.model.cfg, self.model
        n_steps, batch = x.shape[0], x.shape[1]
        t_l = first_learning_step(n_steps, self.window)
        n_win = n_steps - t_l
        k = n_steps if self.trunc is None else min(self.trunc, n_steps)
        state = model.init_state(batch)
        layers = list(state.layers)
        outs = [torch.zeros_like(state.o) for _ in self.aux] + [state.o]
        total = 0.0
        self.optimizer.zero_grad(set_to_none=True)
        for start in range(0, n_steps, k):
            layers = [LIFState(s.u.detach(), s.y.detach()) for s in layers]
            outs = [o.detach() for o in outs]
            loss = x.new_zeros(())
            for t in range(start, min(start + k, n_steps)):
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
                    if t >= t_l:
                        loss = loss + F.cross_entropy(outs[bi], labels) / n_win
                if t >= t_l:
                    total += float(F.cross_entropy(outs[-1].detach(), labels)) / n_win
            if loss.requires_grad:
                loss.backward()
                if self.update == "window":
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
        if self.update == "sample":
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return total


class TPTrainer:
    """Traces Propagation (Pes et al. 2025) on a :class:`DenseSNN`.

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

    def __init__(self, model: DenseSNN, optimizer: torch.optim.Optimizer,
                 window: int | None = None, beta: float = 0.9,
                 generator: torch.Generator | None = None):
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"the TP trace decay β must lie in [0, 1], got {beta}")
        self.rec = len(model.recurrent) > 0  # V^l y^l[t-1] on both paths, learned like W
        self.model, self.optimizer, self.window, self.beta = model, optimizer, window, beta
        self.spike_fn = make_spike_fn(model.cfg.surrogate)
        w = model.readout
        c = model.cfg.n_out
        bound = (6.0 / c) ** 0.5
        n1 = model.cfg.layer_sizes[1]  # S projects the label onto every neuron of layer 1
        self.label_proj = ((torch.rand(c, n1, generator=generator) * 2 - 1) * bound
                           ).to(w.device, w.dtype)
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]

    def start_epoch(self, epoch: int, n_epochs: int) -> None:
        """Cosine annealing from lr to 0.25·lr over ``n_epochs``."""
        import math

        f = 0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * epoch / max(1, n_epochs)))
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = lr * f

    def state_dict(self) -> dict:
        return {"label_proj": self.label_proj}

    def load_state_dict(self, state: dict) -> None:
        self.label_proj = state["label_proj"].to(self.label_proj.device)

    def layer_gradients(self, states, x_t, onehot, learn: bool):
        """One step of both paths; returns (new states, per-layer gradients or None)."""
        from ..functional.lif import LIFState, lif_step
        from ..functional.tp import tp_contrastive_loss, tp_soft_targets

        cfg, beta = self.model.cfg, self.beta
        st, stt, eps, eps_t, eps0_t = states
        eps0_t = beta * eps0_t + onehot
        below, inp, inp_t = eps0_t, x_t, None
        grads = []
        new = ([], [], [], [])
        model = self.model
        for l, w in enumerate(model.hidden):
            with torch.set_grad_enabled(learn):
                cur = model.layer_current(l, model.layer_input(l, inp.detach()))
                if l == 0:
                    cur_t = (onehot @ self.label_proj).reshape(cur.shape)
                else:
                    cur_t = model.layer_current(l, model.layer_input(l, inp_t.detach()))
                if self.rec:
                    v = model.recurrent[l]
                    cur = cur + st[l].y.detach() @ v.T
                    cur_t = cur_t + stt[l].y.detach() @ v.T
                s_in = lif_step(LIFState(st[l].u.detach(), st[l].y.detach()), cur,
                                cfg.gamma, cfg.v_th, self.spike_fn)
                s_tg = lif_step(LIFState(stt[l].u.detach(), stt[l].y.detach()), cur_t,
                                cfg.gamma, cfg.v_th, self.spike_fn)
                e = beta * eps[l] + s_in.y
                e_t = beta * eps_t[l] + s_tg.y
                if learn:
                    loss = tp_contrastive_loss(e, e_t,
                                               tp_soft_targets(below.detach().flatten(1)))
                    params = [w, model.recurrent[l]] if self.rec else [w]
                    grads.append(torch.autograd.grad(loss, params))
            for lst, v in zip(new, (LIFState(s_in.u.detach(), s_in.y.detach()),
                                    LIFState(s_tg.u.detach(), s_tg.y.detach()),
                                    e.detach(), e_t.detach())):
                lst.append(v)
            below, inp, inp_t = e_t.detach(), s_in.y.detach(), s_tg.y.detach()
        return (*new, eps0_t), inp, (grads if learn else None)

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor,
                    meter: StateMeter | None = None) -> float:
        from ..functional.lif import LIFState, leaky_readout_step

        n_steps, batch = x.shape[0], x.shape[1]
        if batch < 2:
            raise ValueError("Traces Propagation contrasts the samples of a batch and needs "
                             "a batch size >= 2; use --batch-size 2 or more")
        cfg, model = self.model.cfg, self.model
        t_l = first_learning_step(n_steps, self.window)
        onehot = F.one_hot(labels, cfg.n_out).to(x.dtype)
        zeros = [torch.zeros_like(s.u) for s in model.init_state(batch).layers]
        states = ([LIFState(z, z) for z in zeros], [LIFState(z, z) for z in zeros],
                  list(zeros), list(zeros), x.new_zeros(batch, cfg.n_out))
        o = x.new_zeros(batch, cfg.n_out)
        total = 0.0
        for t in range(n_steps):
            learn = t >= t_l
            states, y_last, grads = self.layer_gradients(states, x[t], onehot, learn)
            if meter is not None:
                meter.set_state("traces", [*states[2], *states[3], states[4]])
            with torch.no_grad():
                o = leaky_readout_step(o, model.readout_input(y_last) @ model.readout.T,
                                       cfg.kappa)
            if learn:
                total += float(F.cross_entropy(o, labels)) / (n_steps - t_l)
                err = torch.softmax(o, -1) - onehot
                g_out = err.T @ model.readout_input(states[2][-1]) / batch
                ordered = [g[0] for g in grads] + [g[1] for g in grads if len(g) > 1]
                for w, g in zip(model.weights, [*ordered, g_out]):
                    w.grad = g
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        return total
