r"""S-TLLR: the rule, its hyper-parameters, its batched trainer and its graph parts.

Equations: :mod:`lava_local.functional.stllr`. The eligibility machinery here (pre trace
over each layer's input, post trace over its neurons, the update of
:func:`~lava_local.functional.stllr.stllr_update`, the readout's exact local gradient)
is shared with TESS, which differs only in its learning signal; on the Lava graph both
run the same learning neuron and product-series rule
(:mod:`lava_local.rules.stllr_loihi`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..functional._backend import add_outer_
from ..functional.lif import heaviside
from ..functional.stllr import POST_FORMS, noncausal_trace
from ..functional.traces import post_trace_step, pre_trace_step
from ..torch.fused import fused_surrogate
from ..torch.loop import Batch, LocalTrainer
from ..torch.model import NetState
from ..torch.spike import make_spike_fn
from ..torch.subnormal import flush_subnormal_
from .base import ALL_FEATURES, Costs, GraphLearning, GraphParts, Rule, RuleParams, option

SIGNALS = ("bp", "dfa")
#: Bounds of the DFA matrices' uniform draw: sqrt(6/C) or sqrt(6/N_l).
DFA_BOUNDS = ("classes", "layer")

#: Paper presets (λ_post, λ_pre, α_post, α_pre) from S-TLLR Table/Section 5.
PRESETS = {
    "dvsgesture": dict(lam_post=0.2, lam_pre=0.75, alpha_post=-1.0, alpha_pre=1.0),
    "dvscifar10": dict(lam_post=0.2, lam_pre=0.5, alpha_post=-1.0, alpha_pre=1.0),
    "shd": dict(lam_post=0.5, lam_pre=1.0, alpha_post=1.0, alpha_pre=1.0),
}


@dataclass(frozen=True, kw_only=True)
class EligibilityParams(RuleParams):
    r"""S-TLLR's eligibility traces (shared by S-TLLR and TESS).

    Attributes
    ----------
    lam_pre, lam_post : float
        Trace decays λ_pre, λ_post in [0, 1].
    alpha_pre, alpha_post : float
        Weights of the causal (LTP-like) and non-causal terms; α_post < 0 makes the
        non-causal term LTD-like, α_post = 0 drops the post trace.
    post_form : {"paper", "code"}
        Non-causal trace as in the paper's closed form (extra λ_post) or as in the public
        code's recurrence; see :mod:`lava_local.functional.stllr`.
    online : bool
        Apply the update every step instead of once per sample/batch.
    merge_terms : bool
        Batched trainer only: one outer product per layer and step instead of two. With
        :math:`x[t] = q[t] - λ_{pre} q[t-1]` the non-causal term regroups onto the pre
        trace,

        .. math::

            \sum_t a_1[t] ⊗ q[t] + a_2[t] ⊗ x[t]
            = \sum_t (a_1[t] + a_2[t] - λ_{pre} a_2[t+1]) ⊗ q[t]

        (:math:`a_1 = α_{pre} δ ⊙ Ψ`, :math:`a_2 = α_{post} c\,δ ⊙ h`, :math:`q[-1] = 0`,
        :math:`a_2[T] = 0`), so step t's coefficient is completed at step t+1 and its
        product taken then. The same update up to float rounding, a third fewer products
        per learning step, and one more value per hidden neuron of learning state (the
        pending coefficient). Needs the update once per batch (not ``online``); without a
        non-causal term (α_post = 0) there is nothing to merge and it changes nothing.
    """

    lam_pre: float = option(0.5, "pre-trace decay λ_pre")
    lam_post: float = option(0.2, "post-trace decay λ_post")
    alpha_pre: float = option(1.0, "weight α_pre of the causal term")
    alpha_post: float = option(-1.0, "weight α_post of the non-causal term; 0 drops the "
                               "post trace")
    post_form: str = option("paper", "non-causal trace: the paper's closed form or the "
                            "public code's recurrence", choices=POST_FORMS)
    online: bool = option(False, "apply the update every step instead of once per batch",
                          action="store_true")
    merge_terms: bool = option(False, "batched trainer: one outer product per layer and "
                               "step (the non-causal term regrouped onto the pre trace, "
                               "x[t] = q[t] - lam_pre q[t-1]): a third fewer products, one "
                               "more value of state per hidden neuron", action="store_true")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("lam_pre", "lam_post"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.merge_terms and self.online:
            raise ValueError("merge_terms completes a step's update at the next step, so it "
                             "needs the update once per batch: drop online or merge_terms")

    @property
    def merges(self) -> bool:
        """Whether the batched trainer regroups the non-causal term (:attr:`merge_terms`
        with a non-causal term to merge)."""
        return self.merge_terms and self.alpha_post != 0


@dataclass(frozen=True, kw_only=True)
class STLLRParams(EligibilityParams):
    """Hyper-parameters of S-TLLR: the eligibility traces and the learning signal.

    Attributes
    ----------
    signal : {"bp", "dfa"}
        Learning signal: same-step back-propagation (paper default) or direct feedback
        alignment through fixed random matrices (the variant a chip can compute).
    """

    signal: str = option("bp", "S-TLLR learning signal: same-step back-propagation or "
                         "direct feedback alignment", choices=SIGNALS)
    dfa_bound: str = option("classes", "S-TLLR DFA matrices B^l ~ U(-a, a) with a = "
                            "sqrt(6/C) (classes) or sqrt(6/N_l) (layer: the public code's)",
                            choices=DFA_BOUNDS)



# -- batched trainer -----------------------------------------------------------------------

class EligibilityState(NamedTuple):
    """S-TLLR's learning state after step t, and the step's own values.

    ``q``: pre traces over each layer's input; ``h``: post traces over its neurons (the
    value for the *next* step, λ_post h[t] + Ψ(u[t]), after :meth:`finish`); ``q_rec``:
    pre traces over each recurrent layer's own spikes of t-1; ``q_out``: the readout's
    κ-trace of y^L. ``inputs``, ``rec_in``, ``psi``: step t's layer inputs, recurrent
    inputs y[t-1] and Ψ(u[t]). With :attr:`~EligibilityParams.merge_terms`: ``pend``, each
    layer's coefficient of step t-1 (of step t after the step's learning), whose product
    with the pre traces of t-1 is taken at step t, and ``q_last``, ``q_rec_last``, the
    pre traces of t-1, kept until step t has learned.
    """

    net: NetState
    q: list
    h: list
    q_rec: list
    q_out: torch.Tensor
    inputs: list
    rec_in: list
    psi: list
    prev: list = []
    pend: list = []
    q_last: list = []
    q_rec_last: list = []


def _zero_subnormals(*tensors) -> None:
    """Subnormal values of the update products' operands to zero, in place
    (:mod:`lava_local.torch.subnormal`): a trace that is not driven decays through the
    subnormal range, and a coefficient made from it (δ ⊙ h, scaled by 1 / (B (T - T_l)))
    falls into it; one such value slows every vector instruction of the product that
    touches it. A pre trace is flushed where it is (it may be the trace carried on);
    every value flushed is below 1.2e-38 in float32 (2.2e-308 in float64)."""
    for t in tensors:
        if t is not None:
            flush_subnormal_(t)


class EligibilityTrainer(LocalTrainer):
    """S-TLLR's traces and update under a learning signal given by a subclass.

    At each step the network advances with every state from step t-1 detached, so the
    only autograd graph is the one of step t (used by a signal that propagates the
    output error through the layers of that step) and it is freed before step t+1. The
    readout learns with its exact gradient through its κ-trace:
    :math:`∂o[t]/∂W_{out} = \\sum_{t'} κ^{t-t'} y^L[t']`.
    """

    def __init__(self, model, optimizer, params: EligibilityParams,
                 window: int | None = None, generator: torch.Generator | None = None):
        super().__init__(model, optimizer, params, window)
        self.spike_fn = make_spike_fn(model.cfg.surrogate)
        self.psi = fused_surrogate(model.cfg.surrogate)

    @property
    def update_every_step(self) -> bool:
        return self.params.online

    @property
    def needs_step_graph(self) -> bool:
        """Whether the learning signal back-propagates through the layers of a step."""
        return False

    def learning_signals(self, s: EligibilityState, err: torch.Tensor, onehot: torch.Tensor,
                         scale: float) -> list[torch.Tensor]:
        """δ^l[t] for every hidden layer of step state ``s``, given the output error
        ``err`` multiplied by ``scale`` (the trainer passes softmax(o) − onehot and 1,
        and folds 1 / (batch · window) into the update's products)."""
        raise NotImplementedError

    @staticmethod
    def _detach(state: NetState) -> NetState:
        return NetState([type(s)(s.u.detach(), s.y.detach()) for s in state.layers],
                        state.o.detach(), state.masks)

    def step(self, state: NetState, x_t: torch.Tensor, learn: bool) -> NetState:
        """Advance one step with the graph cut at the step boundary (no graph at all
        when the learning signal does not back-propagate through the step)."""
        if learn and self.needs_step_graph:
            with torch.enable_grad():
                return self.model.step(self._detach(state), x_t, self.spike_fn)
        with torch.no_grad():       # states of earlier steps carry no graph (finish)
            return self.model.step(state, x_t, heaviside)

    def init_state(self, x: torch.Tensor, b: Batch) -> EligibilityState:
        model = self.model
        net = self.net_state(b.size)
        return EligibilityState(
            net, [None] * len(model.hidden), [torch.zeros_like(s.u) for s in net.layers],
            [x.new_zeros(b.size, w.shape[0]) for w in model.recurrent],
            x.new_zeros(b.size, model.readout.shape[1]), [], [], [],
            pend=[None] * len(model.hidden) if self.params.merges else [])

    def advance(self, s: EligibilityState, x_t, learn: bool, b: Batch) -> EligibilityState:
        p, model, cfg = self.params, self.model, self.model.cfg
        rec_in = [l.y.detach() for l in s.net.layers] if len(model.recurrent) else []
        # step t-1's states, kept one step longer only for a learnable leak or threshold
        prev = s.net.layers if getattr(model, "needs_previous_state", False) else []
        net = self.step(s.net, x_t, learn)
        with torch.no_grad():
            outs = [(l.y if net.masks is None else l.y * m).detach()   # dropout-masked
                    for l, m in zip(net.layers, net.masks or net.layers)]
            inputs = [model.layer_input(l, a) for l, a in enumerate([x_t] + outs[:-1])]
            q = [pre_trace_step(torch.zeros_like(xi) if qi is None else qi, xi, p.lam_pre)
                 for qi, xi in zip(s.q, inputs)]
            q_rec = [pre_trace_step(qi, xi, p.lam_pre) for qi, xi in zip(s.q_rec, rec_in)]
            q_out = pre_trace_step(s.q_out, model.readout_input(outs[-1]), cfg.kappa)
            psi = [self.psi(l.u.detach(), self._v_th(i)) for i, l in enumerate(net.layers)]
        last = self.params.merges and learn       # the pre traces of t-1, for learn_into
        return EligibilityState(net, q, s.h, q_rec, q_out, inputs, rec_in, psi, prev, s.pend,
                                s.q if last else [], s.q_rec if last else [])

    def _v_th(self, l: int):
        """Layer l's threshold as Ψ sees it (the net's own, e.g. clamped or learned)."""
        v = self.model.v_th_of(l)
        return v.detach() if isinstance(v, torch.Tensor) else v

    def learned(self) -> list[torch.Tensor]:
        """The weights, then the net's learnable feature parameters (biases, leaks,
        thresholds; :meth:`~lava_local.torch.model.LayerFeatures.extras`)."""
        return [*self.model.weights, *self.model.extras()]

    def traces(self, s: EligibilityState) -> list[torch.Tensor]:
        return [*s.q, *s.h, *s.q_rec, s.q_out, *(p for p in s.pend if p is not None)]

    def learn(self, s: EligibilityState, t: int, b: Batch):
        acc = [torch.zeros_like(w) for w in self.learned()]
        loss, _ = self.learn_into(s, t, b, acc)
        return loss, acc

    def learn_into(self, s: EligibilityState, t: int, b: Batch, acc: list):
        r"""Add the step's update of every weight to ``acc`` in place: for each layer
        :math:`α_{pre}\,(δ ⊙ Ψ)^T q + α_{post}\,c\,(δ ⊙ h)^T x` (c = λ_post for the
        paper's non-causal form, 1 for the code's; the batch/window scale folded into
        the products), the recurrent V^l alike over y[t-1], the readout
        :math:`e^T q_{out}` (:func:`~lava_local.functional.stllr.stllr_update`, fused)."""
        p, model = self.params, self.model
        o = s.net.o.detach()
        scale = 1.0 / (b.size * b.n_win)
        err = torch.softmax(o, -1) - b.onehot
        loss = F.cross_entropy(o, b.labels) / b.n_win     # a tensor: no host sync per step
        deltas = self.learning_signals(s, err, b.onehot, 1.0)
        n_hidden = len(model.hidden)
        c_pre = p.alpha_pre * scale
        c_post = noncausal_trace(p.alpha_post * scale, p.lam_post, p.post_form)
        with torch.no_grad():
            for l, (d, ps, ql, hl, xl) in enumerate(zip(deltas, s.psi, s.q, s.h, s.inputs)):
                dp = d * ps
                if s.pend:
                    self._merged_update(s, l, acc, dp, d * hl, c_pre, c_post)
                    continue
                dh = d * hl if p.alpha_post != 0 else None
                _zero_subnormals(dp, dh, ql, s.q_rec[l] if s.rec_in else None)
                model.add_weight_grad(l, acc[l], ql, dp, c_pre)
                if dh is not None:
                    model.add_weight_grad(l, acc[l], xl, dh, c_post)
                if s.rec_in:
                    add_outer_(acc[n_hidden + l], dp, s.q_rec[l], c_pre)
                    if dh is not None:
                        add_outer_(acc[n_hidden + l], dh, s.rec_in[l], c_post)
            n_w = len(model.weights)
            add_outer_(acc[n_w - 1], err, s.q_out, scale)
            if len(acc) > n_w:      # biases, leaks, thresholds: one-step gradients
                dpsi = [d * ps for d, ps in zip(deltas, s.psi)]
                for a, g in zip(acc[n_w:], model.extra_grads(s.prev, err, dpsi)):
                    a.add_(g, alpha=scale)
        return loss, True

    def _merged_update(self, s: EligibilityState, l: int, acc: list, dp: torch.Tensor,
                       dh: torch.Tensor, c_pre: float, c_post: float) -> None:
        r"""Layer l's update with the terms merged (:attr:`EligibilityParams.merge_terms`):
        the pending coefficient of t-1 gets :math:`-λ_{pre} a_2[t]` and its product with
        the pre traces of t-1 is taken; :math:`a_1[t] + a_2[t]` becomes pending."""
        lam, rec = self.params.lam_pre, bool(s.rec_in)
        last = s.pend[l]
        if s.q_last[l] is not None and lam != 0:       # q[t-1] = 0 at t = 0
            if last is None:
                last = dh * (-lam * c_post)
            else:
                last.add_(dh, alpha=-lam * c_post)
        if last is not None:
            self._pending_product(l, acc, last, s.q_last[l], s.q_rec_last[l] if rec else None)
        s.pend[l] = torch.mul(dp, c_pre).add_(dh, alpha=c_post)

    def _pending_product(self, l: int, acc: list, c: torch.Tensor, q: torch.Tensor,
                         q_rec: torch.Tensor | None) -> None:
        """Layer l's completed coefficient ``c`` times its pre traces ``q`` (and the
        recurrent ones, ``q_rec``), added to the accumulators."""
        _zero_subnormals(c, q, q_rec)
        self.model.add_weight_grad(l, acc[l], q, c)
        if q_rec is not None:
            add_outer_(acc[len(self.model.hidden) + l], c, q_rec)

    def flush(self, s: EligibilityState, acc: list) -> None:
        """The pending coefficients' products with the last pre traces (merged terms)."""
        with torch.no_grad():
            for l, c in enumerate(s.pend):
                if c is not None:
                    self._pending_product(l, acc, c, s.q[l], s.q_rec[l] if s.q_rec else None)
                    s.pend[l] = None

    def finish(self, s: EligibilityState) -> EligibilityState:
        with torch.no_grad():
            h = [post_trace_step(hl, ps, self.params.lam_post) for hl, ps in zip(s.h, s.psi)]
        # free step t's graph now; the pre traces of t-1 are no longer needed
        return s._replace(net=self._detach(s.net), h=h, q_last=[], q_rec_last=[])



class STLLRTrainer(EligibilityTrainer):
    """S-TLLR on a dense, recurrent or conv net (``bp`` or ``dfa`` learning signal)."""

    rule = "stllr"

    def __init__(self, model, optimizer, params: STLLRParams | None = None,
                 window: int | None = None, generator: torch.Generator | None = None):
        params = params if params is not None else STLLRParams()
        super().__init__(model, optimizer, params, window)
        self.feedback: list[torch.Tensor] = []
        if params.signal == "dfa":
            # Fixed random feedback B^l (N_l x C), Kaiming-uniform, never trained; bound
            # sqrt(6/C) (default) or sqrt(6/N_l) (the public code's)
            w = model.readout
            for n in model.cfg.layer_sizes[1:-1]:
                fb = torch.empty(n, model.cfg.n_out)
                fan = model.cfg.n_out if params.dfa_bound == "classes" else n
                bound = (6.0 / fan) ** 0.5
                fb.uniform_(-bound, bound, generator=generator)
                self.feedback.append(fb.to(w.device, w.dtype))

    @property
    def needs_step_graph(self) -> bool:
        """The bp signal of a net without a closed form (conv nets: pooling and
        transposed convolutions) back-propagates through the step's autograd graph."""
        return self.params.signal == "bp" and not hasattr(self.model, "step_deltas")

    def learning_signals(self, s, err, onehot, scale):
        net = s.net
        if self.params.signal == "dfa":
            out = [(err @ fb.T).reshape(l.y.shape) for fb, l in zip(self.feedback, net.layers)]
            return out if net.masks is None else [d * m for d, m in zip(out, net.masks)]
        if not self.needs_step_graph:
            with torch.no_grad():
                return self.model.step_deltas(err, s.psi, net.masks)
        ys = [l.y for l in net.layers]
        return list(torch.autograd.grad(net.o, ys, grad_outputs=err))

    def state_dict(self) -> dict:
        return {"feedback": self.feedback} if self.feedback else {}

    def load_state_dict(self, state: dict) -> None:
        if state.get("feedback") is not None:
            dev = self.model.readout.device
            self.feedback = [fb.to(dev) for fb in state["feedback"]]


# -- costs ---------------------------------------------------------------------------------

def eligibility_memory(c: Costs, params: EligibilityParams) -> int:
    """Two traces per neuron (one without the post trace, α_post = 0), plus one pre trace
    per recurrent neuron (over the layer's own previous spikes), plus the pending
    coefficient per hidden neuron with the terms merged
    (:attr:`EligibilityParams.merge_terms`)."""
    rec = sum(c.hidden) if c.recurrent else 0
    pending = sum(c.hidden) if params.merges else 0
    return (c.neurons if params.alpha_post == 0 else 2 * c.neurons) + rec + pending


#: The formula of :func:`eligibility_memory`.
ELIGIBILITY_MEMORY = ("2 Σ N_l (Σ N_l with α_post = 0) + Σ N_l of recurrent layers "
                      "+ Σ N_l of hidden layers with merge_terms")


# -- on the Lava graph ---------------------------------------------------------------------

class EligibilityParts(GraphParts):
    """S-TLLR's eligibility on a Lava graph, bound to one net and backend: the learning
    neuron (:class:`~lava_local.processes.STLLRNeuron`) and the product-series rule
    (:class:`~lava_local.rules.stllr_loihi.OnChipSTLLR`) of every hidden layer. A
    subclass adds the learning signal (:meth:`attach`)."""

    def __init__(self, params: EligibilityParams, record: dict):
        super().__init__(record)
        self.params = params

    def hidden_rule(self, ctx, l: int):
        from .stllr_loihi import OnChipSTLLR

        p = self.params
        return OnChipSTLLR(eta=ctx.eta, alpha_pre=p.alpha_pre, alpha_post=p.alpha_post,
                           lam_pre=p.lam_pre, lam_post=p.lam_post, post_form=p.post_form,
                           mode=ctx.mode, weight_precision=ctx.precs[l], delta_max=1.0)

    def neuron_options(self, ctx, l: int) -> dict:
        return {"lam_post": self.params.lam_post, "post_form": self.params.post_form}

    def trace_decays(self, net) -> list[float]:
        return [self.params.lam_pre, self.readout_decay(net)]


class DFAParts(EligibilityParts):
    """The output error (readout error unit) through fixed random matrices B^l into
    every hidden layer's third-factor port."""

    def __init__(self, params, record, feedback):
        super().__init__(params, record)
        self.feedback = feedback

    def signal_weights(self, ctx, l: int):
        return self.feedback[l]

    def attach(self, ctx) -> None:
        for l, fb in enumerate(self.feedback):
            if not ctx.learns[l]:       # frozen (graded inputs, conv)
                continue
            ctx.send_signal(ctx.error.err_out, l, fb, f"feedback{l}")


class STLLRGraph(GraphLearning):
    mode = "stllr-dfa"
    rule = "stllr"
    neuron = "STLLRNeuron: LIF, Ψ(u), post trace; writes |δ|Ψ, |δ|h̃, sign δ into y1, y2, bap"
    signal = ("ErrorUnit (softmax(o) - onehot(label)) through fixed random Dense B^l "
              "(DFA); reaches layer l L+2-l steps late")
    product_series = "OnChipSTLLR (Loihi3FLearningRule, t_epoch 1)"

    def bind(self, net, backend, rng_seed=0, options=None):
        import numpy as np

        if options:
            raise ValueError(f"{self.mode} takes no options, got {sorted(options)}")
        params = STLLRParams.from_flat(net.params, strict=False)
        feedback = net.feedback or default_feedback(net.layer_sizes, rng_seed)
        record = {"mode": self.mode, "params": params.to_flat(),
                  "feedback": "trained run's" if net.feedback else "drawn (seeded)"}
        return DFAParts(params, record, [np.asarray(b, dtype=float) for b in feedback])


def default_feedback(layer_sizes: list[int], seed: int):
    """Fixed random DFA matrices B^l (N_l, C), Kaiming-uniform, for nets trained without
    them (e.g. with the ``bp`` signal)."""
    import math

    import numpy as np

    rng = np.random.default_rng([seed, 7])
    c = layer_sizes[-1]
    bound = math.sqrt(6.0 / c)
    return [rng.uniform(-bound, bound, size=(n, c)) for n in layer_sizes[1:-1]]


class STLLRRule(Rule):
    name = "stllr"
    title = "S-TLLR"
    paper = "Apolinario & Roy, TMLR (arXiv 2306.15220)"
    Params = STLLRParams
    features = ALL_FEATURES
    layers = frozenset({"dense", "recurrent", "conv"})

    def trainer_class(self):
        return STLLRTrainer

    @property
    def graph(self):
        return STLLRGraph()

    def memory_values(self, c: Costs, params) -> int:
        return eligibility_memory(c, params)

    def learning_macs(self, c: Costs, params) -> int:
        return 3 * c.learning_steps * c.synapses

    def memory_formula(self) -> str:
        return ELIGIBILITY_MEMORY

    def macs_formula(self) -> str:
        return "3 (T - T_l) Σ N_l N_{l-1}"


STLLR = STLLRRule()
