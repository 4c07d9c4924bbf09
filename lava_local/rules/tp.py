"""Traces Propagation: the rule, its hyper-parameters, its batched trainer and its
graph parts.

Equations: :mod:`lava_local.functional.tp`. The paper's layer loss contrasts the samples
of a batch; the on-chip variant contrasts each sample with per-class prototypes made by
the label path (``--tp-contrast prototype`` batched, ``run --learn tp`` on the Lava
graph). On the graph, per hidden layer l::

    STLLRNeuron_l ─s_out─> TPUnit_l (ε_l, prototypes P_l[t], targets Y_l[t]) <─ label
          ^                     │ m = Pᵀ(softmax(Pε) − y)·s    (dataloader)
          └─ a_third_factor_in ─┘   one step late; psi_lag = 1 pairs it with Ψ(u[t])

and the synapses run :class:`OnChipTP` (the pre spike of step t kept in the tags). The
prototypes are the label path of the net as the graph is built (the batched trainer
recomputes them from the current weights every step; on the graph they stay fixed while
it runs: a new graph, e.g. the next ``run --learn``, takes the learned weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..fixed import TRACE_MAX
from ..functional.lif import LIFState, heaviside, leaky_readout_step, lif_step
from ..functional.tp import (
    tp_contrastive_loss,
    tp_prototype_signal,
    tp_prototype_targets,
)
from ..torch.fused import (
    fused_contrastive_signal,
    fused_lif_step,
    fused_soft_targets,
    fused_surrogate,
)
from ..torch.loop import Batch, LocalTrainer, detach_lif
from ..torch.spike import make_spike_fn
from .base import Costs, GraphLearning, GraphParts, Rule, RuleParams, option
from .stllr_loihi import series_string

CONTRASTS = ("batch", "prototype")


#: Bounds of the label projection's uniform draw: √(6/C) or 1/√C.
LABEL_BOUNDS = ("kaiming", "linear")


@dataclass(frozen=True, kw_only=True)
class TPParams(RuleParams):
    """Hyper-parameters of Traces Propagation.

    Attributes
    ----------
    beta : float
        Trace decay β in [0, 1] of both paths (flat key ``tp_beta``).
    contrast : {"batch", "prototype"}
        What a sample's layer trace is contrasted with (flat key ``tp_contrast``): the
        other samples of its batch (the paper; needs B >= 2) or the C per-class
        prototypes of the label path (the on-chip variant, any batch size; see
        :mod:`lava_local.functional.tp`).
    label_bound : {"kaiming", "linear"}
        The fixed label projection S ~ U(−a, a) with a = √(6/C) (kaiming; lava-local's
        default) or 1/√C (linear: PyTorch's nn.Linear default, the public TP code's MLPs)
        (flat key ``tp_label_bound``).
    """

    beta: float = option(0.9, "Traces Propagation trace decay β", key="tp_beta", type=float)
    contrast: str = option("batch", "Traces Propagation: contrast a sample's layer trace "
                           "with the other samples of its batch (the paper) or with the "
                           "per-class prototypes of the label path (the on-chip variant)",
                           key="tp_contrast", choices=CONTRASTS)
    label_bound: str = option("kaiming", "Traces Propagation: bound of the fixed label "
                              "projection S ~ U(-a, a): sqrt(6/C) (kaiming) or 1/sqrt(C) "
                              "(linear, the public code's)", key="tp_label_bound",
                              choices=LABEL_BOUNDS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"tp_beta (the TP trace decay β) must lie in [0, 1], got "
                             f"{self.beta}")


class TPState(NamedTuple):
    """Both paths' LIF states and β-traces per hidden layer, the label trace, the readout
    and the step's per-layer one-step gradients. The two paths run as one batch: rows
    ``[:n]`` are the input path (one per sample), rows ``[n:]`` the target path (one per
    sample for the batch contrast, one per class for the prototype contrast: its traces
    are the prototypes)."""

    lif: list
    eps_all: list
    n: int
    eps0_t: torch.Tensor
    o: torch.Tensor
    grads: list | None

    @property
    def inp(self) -> list:
        """The input path's LIF states."""
        return [LIFState(s.u[:self.n], s.y[:self.n]) for s in self.lif]

    @property
    def tgt(self) -> list:
        """The target path's LIF states."""
        return [LIFState(s.u[self.n:], s.y[self.n:]) for s in self.lif]

    @property
    def eps(self) -> list:
        """The input path's traces ε_l (n rows)."""
        return [e[:self.n] for e in self.eps_all]

    @property
    def eps_t(self) -> list:
        """The target path's traces ε̃_l (the prototypes with the prototype contrast)."""
        return [e[self.n:] for e in self.eps_all]


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

    With ``contrast="prototype"`` the target path runs once per class (the label path's
    prototypes, through the current weights) and each sample's trace is contrasted with
    them (:func:`lava_local.functional.tp.tp_prototype_loss`); the one-layer, one-step
    gradient is computed in closed form, :math:`(m ⊙ Ψ(u))^T x` with
    :math:`m = ∂E_l/∂ε_l` (:func:`~lava_local.functional.tp.tp_prototype_signal`): no
    autograd graph is built.
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
        bound = (6.0 / c) ** 0.5 if params.label_bound == "kaiming" else c ** -0.5
        n1 = model.cfg.layer_sizes[1]  # S projects the label onto every neuron of layer 1
        self.label_proj = ((torch.rand(c, n1, generator=generator) * 2 - 1) * bound
                           ).to(w.device, w.dtype)
        self.prototype = params.contrast == "prototype"
        self.psi = fused_surrogate(model.cfg.surrogate)
        # dense layers: the batch contrast's one-step gradient in closed form; conv maps
        # (contrasted per location) go through autograd of the layer's loss
        self.closed_form = not hasattr(model, "plan")

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

    def target_onehot(self, b: Batch) -> torch.Tensor:
        """What drives the target path: the batch's labels, or every class once."""
        if not self.prototype:
            return b.onehot
        c = self.model.cfg.n_out
        return torch.eye(c, dtype=b.onehot.dtype, device=b.onehot.device)

    def init_state(self, x: torch.Tensor, b: Batch) -> TPState:
        if b.size < 2 and not self.prototype:
            raise ValueError("Traces Propagation contrasts the samples of a batch and needs "
                             "a batch size >= 2; use --batch-size 2 or more (or "
                             "--tp-contrast prototype, which learns from one sample)")
        n_t = self.target_onehot(b).shape[0]
        zeros = [torch.zeros_like(s.u) for s in self.model.init_state(b.size + n_t).layers]
        c = self.model.cfg.n_out
        return TPState([LIFState(z, z) for z in zeros], list(zeros), b.size,
                       x.new_zeros(n_t, c), x.new_zeros(b.size, c), None)

    def advance(self, s: TPState, x_t: torch.Tensor, learn: bool, b: Batch) -> TPState:
        """One step of both paths (one batch) through every layer, with each layer's
        one-step gradient when learning, then the readout."""
        model, cfg, beta, n = self.model, self.model.cfg, self.params.beta, s.n
        onehot_t = self.target_onehot(b)
        eps0_t = beta * s.eps0_t + onehot_t
        below, y = eps0_t, None
        grads = [] if learn else None
        autograd = learn and not (self.prototype or self.closed_form)
        lifs, epss = [], []
        for l in range(len(model.hidden)):
            prev = s.lif[l]
            with torch.set_grad_enabled(autograd):
                if l == 0:
                    a = model.layer_input(0, x_t)
                    cur = model.layer_current(0, a)
                    cur_t = (onehot_t @ self.label_proj).reshape(onehot_t.shape[0],
                                                                  *cur.shape[1:])
                    cur = torch.cat([cur, cur_t])
                else:
                    a = model.layer_input(l, y)
                    cur = model.layer_current(l, a)
                if self.rec:
                    cur = cur + prev.y @ model.recurrent[l].T
                new = fused_lif_step(prev, cur, cfg.gamma, cfg.v_th,
                                     self.spike_fn if autograd else heaviside)
                e = beta * s.eps_all[l] + new.y
                if learn:
                    grads.append(self._layer_grads(l, a, prev, new, e, below, b, autograd))
            lifs.append(detach_lif(new))
            epss.append(e.detach())
            below, y = e[n:].detach(), new.y.detach()
        with torch.no_grad():
            o = leaky_readout_step(s.o, model.readout_input(y[:n]) @ model.readout.T,
                                   cfg.kappa)
        return TPState(lifs, epss, n, eps0_t, o, grads)

    def _layer_grads(self, l: int, a, prev: LIFState, new: LIFState, e, below, b: Batch,
                     autograd: bool) -> tuple:
        """Layer l's one-layer, one-step gradient (W, and V for recurrent layers).

        Batch contrast, dense layers, in closed form: with :math:`m, \tilde m` =
        ∂E_l/∂ε, ∂E_l/∂ε̃ (:func:`~lava_local.functional.tp.tp_contrastive_signal`, its
        coefficients in one compiled pass:
        :func:`~lava_local.torch.fused.fused_contrastive_signal`),
        :math:`ΔW = (m ⊙ Ψ(u))^T x + (\tilde m ⊙ Ψ(\tilde u))^T \tilde x` (the second
        term from layer 2 on: layer 1's target path goes through S, not W), i.e. one
        product over both paths' rows. Prototype contrast: the input path only, with
        :func:`~lava_local.functional.tp.tp_prototype_signal`. Conv maps with the batch
        contrast (contrasted per location): autograd of the layer's loss.
        """
        model, cfg, n = self.model, self.model.cfg, b.size
        if autograd:
            loss = tp_contrastive_loss(e[:n], e[n:], fused_soft_targets(below.flatten(1)))
            params = [model.hidden[l], model.recurrent[l]] if self.rec else \
                [model.hidden[l]]
            return torch.autograd.grad(loss, params)
        if self.prototype:
            m = tp_prototype_signal(e[:n], e[n:], tp_prototype_targets(below, b.labels))
            g = m * self.psi(new.u[:n], cfg.v_th)
            gw = model.weight_grad(l, a[:n], g)
            return (gw, g.T @ prev.y[:n]) if self.rec else (gw,)
        m, m_t = fused_contrastive_signal(e[:n], e[n:], fused_soft_targets(below.flatten(1)),
                                          target=l > 0 or self.rec)
        if l == 0 and not self.rec:     # the target path's rows would be dropped here
            return (model.weight_grad(0, a, m * self.psi(new.u[:n], cfg.v_th)),)
        g = torch.cat([m, m_t]) * self.psi(new.u, cfg.v_th)
        gw = model.weight_grad(l, a, g) if l > 0 else model.weight_grad(0, a, g[:n])
        return (gw, g.T @ prev.y) if self.rec else (gw,)

    def traces(self, s: TPState) -> list[torch.Tensor]:
        return [*s.eps_all, s.eps0_t]

    def learn(self, s: TPState, t: int, b: Batch):
        model = self.model
        loss = F.cross_entropy(s.o.detach(), b.labels) / b.n_win   # no host sync per step
        err = torch.softmax(s.o, -1) - b.onehot
        g_out = err.T @ model.readout_input(s.eps_all[-1][:s.n]) / b.size
        ordered = [g[0] for g in s.grads] + [g[1] for g in s.grads if len(g) > 1]
        return loss, [*ordered, g_out]


class TPRule(Rule):
    name = "tp"
    title = "Traces Propagation"
    paper = "Pes, Yin, Stuijk, Corradi (arXiv 2509.13053)"
    Params = TPParams
    own_lr_schedule = "cosine annealing from lr to 0.25·lr over the epochs, as the paper"
    layers = frozenset({"dense", "recurrent", "conv"})
    min_batch = 2

    @property
    def graph(self):
        return TPGraph()

    def trainer_class(self):
        return TPTrainer

    def min_batch_of(self, params) -> int:
        return 1 if params.contrast == "prototype" else 2

    def memory_values(self, c: Costs, params) -> int:
        """Batch contrast: ε and ε̃ per hidden neuron, plus the label trace. Prototype
        contrast (batch 1): ε per hidden neuron, the C prototypes of every layer and the
        C label traces (shared by the samples of a batch)."""
        h, n_c = sum(c.hidden), c.layer_sizes[-1]
        if params.contrast == "prototype":
            return h + n_c * h + n_c * n_c
        return 2 * h + n_c

    def learning_macs(self, c: Costs, params) -> int:
        """Batch contrast: one-layer weight gradients of both paths, every learning step.
        Prototype contrast: the input path's weight gradient, the C similarities and the
        back projection of every layer (the label path's forward pass, C rows shared by a
        batch, is not counted)."""
        if params.contrast == "prototype":
            return c.learning_steps * (c.synapses + 2 * c.layer_sizes[-1] * sum(c.hidden))
        return 2 * c.learning_steps * c.synapses

    def memory_formula(self) -> str:
        return "2 Σ_hidden N_l + C (prototype: Σ_hidden N_l + C Σ_hidden N_l + C²)"

    def macs_formula(self) -> str:
        return "2 (T - T_l) Σ N_l N_{l-1} (prototype: (T - T_l)(Σ N_l N_{l-1} + 2 C Σ_hidden N_l))"



# -- on the Lava graph ---------------------------------------------------------------------

#: The tag d holds TAG · x (x the pre spike of two steps before): after the engine's
#: 5-bit right shift of a product of a 9-bit tag and a 7-bit trace, TAG · x · y1 >> 5
#: is x · y1 exactly.
TAG = 32


@dataclass(frozen=True)
class OnChipTP:
    r"""Traces Propagation's prototype-contrast update as a Loihi 2 product series
    (``Loihi3FLearningRule``, t_epoch = 1).

    The update of hidden layer l is :math:`Δw_{ij} = -η\, m_i[t]\, Ψ(u_i[t])\, x_j[t]`:
    a graded third factor times the pre-synaptic spike of the *same* step (TP's gradient
    stops at one step). The signal m[t] is computed from the layer's spikes of step t,
    so it reaches the neuron at step t + 1 (it sends ``y1 = |m| Ψ(u[t]) / S1`` and
    ``bap = m > 0`` then), when the synapse has already seen x[t+1] and x[t+2] is
    arriving. The synapse keeps x[t] in its tags, as a two-stage shift register updated
    from the values before each learning phase:

    .. code-block:: text

        dt = 2^5·x0 − u0·t          (t ← 32 x[σ])
        dd = u0·t − u0·d            (d ← t: 32 x[σ-1])
        dw = c·u0·d·y1 − 2c·y0·d·y1 (d = 32 x[σ-2] = 32 x[t] at σ = t + 2)

    (the y0 term flips the sign for neurons with m > 0, as in
    :class:`~lava_local.rules.stllr_loihi.OnChipSTLLR`). Float engine: c = 1 and
    S1 = 32 / η. Fixed engine: the product (4 + 9 + 7 bits) is shifted right by 5, so
    Δw_int = c · x · y1 exactly, c = 2^e with e chosen so that ``delta_max · psi_max``
    fills the 7-bit y1, and S1 = 2^(e - p) / η (p the weight precision).

    Parameters
    ----------
    eta : float
        SGD step.
    mode : {"float", "fixed"}
    weight_precision : int
        p (fixed mode).
    delta_max, psi_max : float
        Expected largest |m| and Ψ (fixed mode: the y1 scale).
    """

    eta: float
    mode: str = "float"
    weight_precision: int = 0
    delta_max: float = 1.0
    psi_max: float = 0.3
    #: 2: the signal arrives one step after its step (hidden layers); 1: in its step
    #: (a readout whose error unit sees its own step): dw uses t instead of d
    stages: int = 2
    # unused x traces (the engine still runs them: tau > 0 keeps the float engine finite)
    x1_tau: float = 1.0
    x2_tau: float = 1.0
    x1_impulse: int = 0
    alpha_post: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("float", "fixed"):
            raise ValueError(f"mode must be float or fixed, got {self.mode!r}")
        if not self.eta > 0:
            raise ValueError(f"the learning rate must be > 0, got {self.eta}")
        if self.stages not in (1, 2):
            raise ValueError(f"stages must be 1 or 2, got {self.stages}")

    @property
    def e(self) -> int:
        """Exponent of the literal c = 2^e (0 in float mode)."""
        if self.mode == "float":
            return 0
        target = self.delta_max * self.psi_max * self.eta * 2.0 ** self.weight_precision
        e = round(math.log2(target / TRACE_MAX)) if target > 0 else 0
        return int(min(max(e, -7), 7))

    @property
    def s1(self) -> float:
        """Value of one y1 unit: y1 = |m| Ψ / S1."""
        if self.mode == "float":
            return TAG / self.eta
        return 2.0 ** (self.e - self.weight_precision) / self.eta

    s2 = 0.0

    def products(self) -> list[tuple[int, int, str]]:
        """dw as ``(mantissa, exponent, product)`` terms."""
        tag = "d" if self.stages == 2 else "t"
        return [(1, self.e, f"u0*{tag}*y1"), (-2, self.e, f"y0*{tag}*y1")]

    def tag_products(self) -> dict[str, list[tuple[int, int, str]]]:
        """The tag updates: t ← 32 x0 (and d ← t with two stages)."""
        tags = {"t": [(1, 5, "x0"), (-1, 0, "u0*t")]}
        if self.stages == 2:
            tags["d"] = [(1, 0, "u0*t"), (-1, 0, "u0*d")]
        return tags

    def learning_rule(self, rng_seed: int = 0):
        from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

        tags = self.tag_products()
        dd = series_string(tags["d"]) if "d" in tags else None
        return Loihi3FLearningRule(dw=series_string(self.products()),
                                   dt=series_string(tags["t"]), dd=dd,
                                   x1_impulse=self.x1_impulse, x1_tau=self.x1_tau,
                                   x2_impulse=self.x1_impulse, x2_tau=self.x2_tau, t_epoch=1,
                                   rng_seed=rng_seed)

    def third_factors(self, delta, psi, h_eff):
        """Real-valued (y1, y2, bap) for signal m (``delta``) and Ψ of its step."""
        import numpy as np

        mag = np.abs(delta)
        return mag * psi / self.s1, np.zeros_like(mag), delta > 0


def label_path_tables(net, label_proj, beta: float, fixed: bool = False,
                      precision: int = 7):
    r"""The prototypes and soft targets of every hidden layer, from the label path of
    ``net`` (its current weights): per layer ``(P, Y)`` with P (T, C, H_l) the label
    path's traces of the C classes at each sample step and Y (T, C, C) the soft targets
    (row k: label k) from the layer below (:func:`~lava_local.functional.tp
    .tp_prototype_targets`; the label traces below layer 1).

    The label path is the batched prototype trainer's target path: class c drives layer
    1 with the constant current S[c] (``label_proj`` (C, H_1)); layer l > 1 integrates
    the label path's spikes of layer l-1 at the same step through W_l (and a recurrent
    layer its own label-path spikes of the step before through V_l). ``fixed``: in the
    fixed-point graph's integers (precision P: currents in units 2^-P, membranes as
    :func:`~lava_local.fixed.lif_step_int`, weights as the graph quantises them, S as a
    constant current round(S · 2^P)); P and the traces in units 2^-7, Y in Q7.
    """
    import numpy as np

    from ..fixed import (
        decay,
        decay_to_int,
        lif_step_int,
        quantize_weights,
        to_membrane,
        weight_precision,
    )
    from ..functional.tp import tp_prototype_targets

    c, n_steps = net.layer_sizes[-1], net.n_steps
    hidden = net.weights[:-1]
    rec = list(net.recurrent) if net.recurrent else []
    labels = np.arange(c)
    tables = [(np.zeros((n_steps, c, w.shape[0])), np.zeros((n_steps, c, c)))
              for w in hidden]
    if fixed:
        precs = [weight_precision(w) for w in net.weights]
        for l, v in enumerate(rec):     # as the graph quantises a recurrent layer
            precs[l] = min(precs[l], weight_precision(v))
        ws = [quantize_weights(w, p).astype(np.int64) for w, p in zip(hidden, precs)]
        vs = [quantize_weights(v, precs[l]).astype(np.int64) for l, v in enumerate(rec)]
        exps = [precision - p for p in precs]
        cur0 = np.rint(np.asarray(label_proj, dtype=np.float64) * 2.0 ** precision
                       ).astype(np.int64)
        d_gamma, d_beta = decay_to_int(net.gamma), decay_to_int(beta)
        vth = int(to_membrane(net.v_th, precision))
        u = [np.zeros((c, w.shape[0]), dtype=np.int64) for w in hidden]
        y = [np.zeros_like(a) for a in u]
        eps = [np.zeros_like(a) for a in u]
        eps0 = np.zeros((c, c), dtype=np.int64)
        for t in range(n_steps):
            eps0 = decay(eps0, d_beta) + (np.eye(c, dtype=np.int64) << 7)
            cur, below = cur0, eps0
            for l in range(len(hidden)):
                if l < len(vs):
                    a = y[l] @ vs[l].T
                    cur = cur + (a << exps[l] if exps[l] >= 0 else a >> -exps[l])
                u[l], y[l] = lif_step_int(u[l], y[l], cur, d_gamma, vth)
                eps[l] = decay(eps[l], d_beta) + (y[l] << 7)
                tables[l][0][t] = eps[l]
                tables[l][1][t] = np.rint(128 * tp_prototype_targets(below * 2.0 ** -7,
                                                                     labels))
                below = eps[l]
                if l + 1 < len(hidden):
                    a = y[l] @ ws[l + 1].T
                    cur = a << exps[l + 1] if exps[l + 1] >= 0 else a >> -exps[l + 1]
        return [(p.astype(np.int64), t.astype(np.int64)) for p, t in tables]
    from ..functional.lif import LIFState

    states = [LIFState(np.zeros((c, w.shape[0])), np.zeros((c, w.shape[0]))) for w in hidden]
    eps = [np.zeros((c, w.shape[0])) for w in hidden]
    eps0 = np.zeros((c, c))
    for t in range(n_steps):
        eps0 = beta * eps0 + np.eye(c)
        cur, below = np.asarray(label_proj, dtype=np.float64), eps0
        for l in range(len(hidden)):
            if l < len(rec):
                cur = cur + states[l].y @ rec[l].T
            states[l] = lif_step(states[l], cur, net.gamma, net.v_th)
            eps[l] = beta * eps[l] + states[l].y
            tables[l][0][t] = eps[l]
            tables[l][1][t] = tp_prototype_targets(below, labels)
            below = eps[l]
            if l + 1 < len(hidden):
                cur = states[l].y @ hidden[l + 1].T
    return tables


def default_label_proj(layer_sizes: list[int], seed: int):
    """A label projection S (C, N_1), Kaiming-uniform as the trainer draws it, for nets
    trained without one."""
    import numpy as np

    c, n1 = layer_sizes[-1], layer_sizes[1]
    bound = math.sqrt(6.0 / c)
    return np.random.default_rng([seed, 13]).uniform(-bound, bound, size=(c, n1))


class TPParts(GraphParts):
    """Per hidden layer: the learning neuron with ``psi_lag = 1``, the prototype unit
    (:class:`~lava_local.processes.TPUnit`) fed by its spikes and the label, and
    :class:`OnChipTP` on its synapses; the readout learns from its β-trace of the last
    layer's spikes (TP's readout update)."""

    def __init__(self, params: TPParams, record: dict, label_proj):
        super().__init__(record)
        self.params, self.label_proj = params, label_proj

    def _scale(self, ctx) -> float:
        return 1.0 / ctx.n_win

    def hidden_rule(self, ctx, l: int):
        return OnChipTP(eta=ctx.eta, mode=ctx.mode, weight_precision=ctx.precs[l],
                        delta_max=self._scale(ctx) / (1.0 - self.params.beta))

    def delta_unit(self, ctx, l: int) -> float:
        from ..processes.tp_unit import EPS_BITS

        return 2.0 ** (-2 * EPS_BITS) * self._scale(ctx)

    def neuron_options(self, ctx, l: int) -> dict:
        return {"psi_lag": 1}

    def readout_decay(self, net) -> float:
        return self.params.beta

    def _tables(self, ctx) -> list:
        """The label path's prototypes and soft targets of every hidden layer (made once
        per graph)."""
        cached = getattr(self, "_tables_of", None)
        if cached is None or cached[0] is not ctx:
            cached = self._tables_of = (ctx, label_path_tables(
                ctx.net, self.label_proj, self.params.beta, ctx.fixed, ctx.big_p))
        return cached[1]

    def prototype_unit(self, ctx, l: int) -> dict:
        protos, targets = self._tables(ctx)[l]
        return {"prototypes": protos, "targets": targets, "beta": self.params.beta,
                "interval": ctx.interval, "offset": ctx.layer_offset(l),
                "window_start": ctx.window_start, "scale": self._scale(ctx)}

    def attach(self, ctx) -> None:
        from ..processes import TPUnit

        for l in range(len(self._tables(ctx))):
            if not ctx.learns[l]:       # frozen (graded inputs, conv)
                continue
            layer = ctx.neurons[l]
            if getattr(layer, "proc_params", {}).get("prototype_unit") is not None:
                ctx.loader.ground_truth.connect(layer.label_in)    # the unit is built in
                continue
            pu = self.prototype_unit(ctx, l)
            unit = TPUnit(shape=(pu["prototypes"].shape[2],), **pu, name=f"tp_unit{l}")
            ctx.neurons[l].s_out.connect(unit.s_in)
            ctx.loader.ground_truth.connect(unit.label_in)
            unit.m_out.connect(ctx.neurons[l].a_third_factor_in)


class TPGraph(GraphLearning):
    mode = "tp"
    rule = "tp"
    neuron = "STLLRNeuron with psi_lag 1: writes |m|Ψ(u[t]), sign m into y1, bap"
    signal = ("per layer: TPUnit (layer trace ε vs the label path's C prototypes: "
              "m = Pᵀ(softmax(Pε) − y)) into the third-factor port; 1 step late")
    product_series = ("OnChipTP: dw = ±c·d·y1 with the pre spike of the signal's step "
                      "kept in the tags (dt, dd: a two-stage shift register)")
    # SGD of batch 1 on the prototype signal (see benchmarks/README.md)
    default_eta = 2.0 ** -7

    def bind(self, net, backend, rng_seed=0, options=None):
        import numpy as np

        if options:
            raise ValueError(f"{self.mode} takes no options, got {sorted(options)}")
        params = TPParams.from_flat(net.params, strict=False)
        if net.conv:
            raise ValueError("--learn tp needs the label path through every layer, and "
                             "its on-graph tables are built for dense and recurrent nets; "
                             "learn a conv net's dense head with --learn stllr-dfa or tess")
        if not params.beta > 0:
            raise ValueError("tp_beta = 0 leaves the readout synapses no trace to learn "
                             "from on the graph; use a run with tp_beta > 0")
        trained = net.matrices.get("label_proj")
        s = trained if trained is not None else default_label_proj(net.layer_sizes, rng_seed)
        record = {"mode": self.mode, "contrast": "prototype",
                  "prototypes": "the label path of the net as the graph was built "
                                "(fixed while it runs)",
                  "label_proj": "trained run's" if trained is not None else "drawn (seeded)",
                  "params": params.to_flat()}
        return TPParts(params, record, np.asarray(s, dtype=np.float64))


TP = TPRule()
