"""Dense multi-layer SNN: LIF hidden layers (soft reset) and a non-spiking leaky readout."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..functional._backend import add_outer_, outer_batched
from ..functional.lif import LIFState, leaky_readout_step, standardise_weight
from ..functional.surrogates import SURROGATES
from .fused import fused_lif_step


@dataclass(frozen=True, kw_only=True)
class LayerFeatureOptions:
    """The optional layer features of the published setups (all off by default), one
    set of keyword-only fields shared by :class:`NetConfig`, the conv nets' config and
    the run configuration; what each does: :class:`LayerFeatures`."""

    weight_std: bool = False
    bias: bool = False
    learn_leak: bool = False
    learn_threshold: bool = False
    v_th_min: float = 0.0
    dropout: float = 0.0


@dataclass(frozen=True)
class NetConfig(LayerFeatureOptions):
    """Architecture and neuron parameters of :class:`DenseSNN`.

    Attributes
    ----------
    n_in, n_out : int
        Input channels and classes.
    hidden : tuple of int
        Widths of the LIF layers.
    gamma, v_th : float
        LIF leak γ and threshold (S-TLLR form, soft reset).
    kappa : float
        Leak of the non-spiking readout, :math:`o[t] = κ o[t-1] + W_{out} y^L[t]`.
    surrogate : str
        Name of Ψ (surrogate derivative and S-TLLR secondary activation).
    init_gain : float
        Hidden weights ~ U(-a, a), a = init_gain·sqrt(3 / fan_in).
    recurrent : bool
        Give every hidden layer recurrent weights V^l (N_l × N_l): its input current is
        :math:`W^l x[t] + V^l y^l[t-1]` (SHD-style recurrent nets).
    weight_std, bias, learn_leak, learn_threshold, v_th_min, dropout
        The published codes' layer features (all off by default; see
        :class:`LayerFeatures`).
    """

    n_in: int
    n_out: int
    hidden: tuple[int, ...] = (128, 128)
    gamma: float = 0.5
    v_th: float = 0.8
    kappa: float = 0.9
    surrogate: str = "triangle"
    init_gain: float = 1.0
    recurrent: bool = False

    def __post_init__(self) -> None:
        check_features(self)
        if self.n_in < 1 or self.n_out < 2:
            raise ValueError("n_in must be >= 1 and n_out >= 2")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be positive integers, got {self.hidden}")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.kappa <= 1.0:
            raise ValueError("gamma and kappa are leaks and must lie in [0, 1]")
        if self.v_th <= 0:
            raise ValueError(f"v_th must be > 0, got {self.v_th}")
        if self.surrogate not in SURROGATES:
            raise ValueError(
                f"unknown surrogate {self.surrogate!r}; choose one of {sorted(SURROGATES)}"
            )

    @property
    def layer_sizes(self) -> list[int]:
        """[N_0 (inputs), N_1, ..., N_L, C]."""
        return [self.n_in, *map(int, self.hidden), self.n_out]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def check_features(cfg) -> None:
    """The layer features of a net configuration are consistent (``ValueError``)."""
    if cfg.learn_leak and not 0.0 < cfg.gamma < 1.0:
        raise ValueError(f"a learnable leak σ(ℓ) starts at γ = {cfg.gamma}; it needs "
                         "0 < gamma < 1")
    if not (cfg.v_th_min >= 0 and math.isfinite(cfg.v_th_min)):
        raise ValueError(f"v_th_min (the threshold clamp) must be >= 0, got {cfg.v_th_min}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {cfg.dropout}")


class LayerFeatures:
    r"""Optional features of the hidden LIF layers, as the published codes use them.

    - **weight standardisation** (``weight_std``): every hidden weight W^l (and recurrent
      V^l, with its own gain) is used as :math:`\hat W = g ⊙ \mathrm{std}(W)`
      (:func:`~lava_local.functional.lif.standardise_weight`), recomputed from the raw
      weights at every step; the gains g (init 1) are learned. The readout is not
      standardised.
    - **bias** (``bias``): a bias b_i per neuron (per channel in conv layers) added to
      the input current, and one per readout unit; init 0.
    - **learnable leak** (``learn_leak``): γ_l = σ(ℓ_l), one ℓ per layer, init logit γ.
    - **learnable threshold** (``learn_threshold``): θ_l per layer, init ``v_th``.
    - **threshold clamp** (``v_th_min``): firing, reset and Ψ use
      :math:`\max(θ_l, θ_{min})` (the public S-TLLR code clamps at 0.5).
    - **dropout** (``dropout`` = p): in training, each hidden layer's output spikes are
      multiplied by a 0/1 mask drawn once per sample and batch (kept with probability
      1 − p, *not* rescaled, the same at every step; the public S-TLLR code's
      ``DropoutLIF``); the layer's own reset and traces use its unmasked spikes. The masks
      live in the net's state (``NetState.masks``); evaluation has none.

    Rules that learn forward in time learn b, ℓ, θ and g by the gradient of the current
    step with every state of step t-1 detached (what the public code's autograd
    computes); the weights' own estimates are taken with respect to :math:`\hat W` and
    chained into W and g by :meth:`param_grads`.
    """

    def _init_features(self, cfg) -> None:
        dt = self.readout.dtype
        ones = lambda n: nn.Parameter(torch.ones(n, dtype=dt))  # noqa: E731
        zeros = lambda n: nn.Parameter(torch.zeros(n, dtype=dt))  # noqa: E731
        self.gain = nn.ParameterList([ones(w.shape[0]) for w in self.hidden]
                                     if cfg.weight_std else [])
        self.gain_rec = nn.ParameterList([ones(v.shape[0]) for v in self.recurrent]
                                         if cfg.weight_std else [])
        self.bias = nn.ParameterList([zeros(w.shape[0]) for w in self.hidden]
                                     if cfg.bias else [])
        self.readout_bias = zeros(self.readout.shape[0]) if cfg.bias else None
        logit = math.log(cfg.gamma / (1 - cfg.gamma)) if cfg.learn_leak else 0.0
        self.leak = nn.ParameterList([nn.Parameter(torch.tensor(logit, dtype=dt))
                                      for _ in self.hidden] if cfg.learn_leak else [])
        self.threshold = nn.ParameterList([nn.Parameter(torch.tensor(cfg.v_th, dtype=dt))
                                           for _ in self.hidden]
                                          if cfg.learn_threshold else [])

    @property
    def has_features(self) -> bool:
        c = self.cfg
        return bool(c.weight_std or c.bias or c.learn_leak or c.learn_threshold)

    @property
    def needs_previous_state(self) -> bool:
        """Whether the one-step gradients need step t-1's states (a learned leak or
        threshold)."""
        return bool(len(self.leak) or len(self.threshold))

    def extras(self) -> list[nn.Parameter]:
        """The feature parameters a local rule learns beside the weights, in the order
        of :meth:`extra_grads`: biases, readout bias, leaks, thresholds (gains are
        learned through the weights' estimates, :meth:`param_grads`)."""
        out = [*self.bias]
        if self.readout_bias is not None:
            out.append(self.readout_bias)
        return [*out, *self.leak, *self.threshold]

    def w(self, l: int) -> torch.Tensor:
        """The weight layer l uses: W^l, or its standardised form."""
        w = self.hidden[l]
        return standardise_weight(w, self.gain[l]) if len(self.gain) else w

    def v(self, l: int) -> torch.Tensor:
        """The recurrent weight layer l uses: V^l, or its standardised form."""
        v = self.recurrent[l]
        return standardise_weight(v, self.gain_rec[l]) if len(self.gain_rec) else v

    def gamma_of(self, l: int):
        """γ of layer l: the configured leak or σ(ℓ_l)."""
        return torch.sigmoid(self.leak[l]) if len(self.leak) else self.cfg.gamma

    def v_th_of(self, l: int):
        """θ of layer l as used for firing, reset and Ψ (clamped at ``v_th_min``)."""
        if len(self.threshold):
            return self.threshold[l].clamp(min=self.cfg.v_th_min)
        return max(self.cfg.v_th, self.cfg.v_th_min)

    def draw_masks(self, state, generator: torch.Generator | None = None):
        """``state`` with a dropout mask per hidden layer (shape of its spikes, 1 with
        probability 1 − p), or as it is without dropout."""
        p = self.cfg.dropout
        if not p:
            return state
        masks = tuple((torch.rand(l.y.shape, generator=generator) >= p).to(
            l.y.device, l.y.dtype) for l in state.layers)
        return state._replace(masks=masks)

    def bias_current(self, l: int, current: torch.Tensor) -> torch.Tensor:
        """``current`` plus the bias of layer l (broadcast over conv maps)."""
        if not len(self.bias):
            return current
        b = self.bias[l]
        return current + b.reshape(-1, *([1] * (current.dim() - 2)))

    def lif(self, l: int, s: LIFState, current: torch.Tensor, spike_fn) -> LIFState:
        """Step of hidden layer l (reset by the detached previous spikes)."""
        return fused_lif_step(LIFState(s.u, s.y.detach()), self.bias_current(l, current),
                              self.gamma_of(l), self.v_th_of(l), spike_fn)

    def readout_current(self, y: torch.Tensor) -> torch.Tensor:
        o = self.readout_input(y) @ self.readout.T
        return o if self.readout_bias is None else o + self.readout_bias

    def extra_grads(self, prev: list, err: torch.Tensor,
                    dpsi: list[torch.Tensor]) -> list[torch.Tensor]:
        r"""One-step gradient estimates of :meth:`extras` (summed over the batch).

        With δ^l the learning signal at layer l's spikes and Ψ its secondary activation
        (``dpsi[l]`` = δ^l ⊙ Ψ(u^l[t])), and every state of step t-1 detached:

        .. math::

            ∂_{b_i} = δ_iΨ_i, \quad ∂_{b^{out}} = e, \quad
            ∂_{ℓ} = σ'(ℓ) \sum_i δ_iΨ_i\,(u_i[t-1] - θ y_i[t-1]), \quad
            ∂_{θ} = \mathbb 1[θ ≥ θ_{min}] \sum_i δ_iΨ_i\,(-γ y_i[t-1] - 1)

        with e the output error. ``prev[l]`` is layer l's state of step t-1.
        """
        out = []
        if len(self.bias):
            for d in dpsi:          # conv: summed over the map, one bias per channel
                s = d.sum(0)
                out.append(s.sum(tuple(range(1, s.dim()))) if s.dim() > 1 else s)
        if self.readout_bias is not None:
            out.append(err.sum(0))
        for l in range(len(self.leak)):
            p = prev[l]
            z = self.leak[l].detach()
            sg = torch.sigmoid(z)
            out.append((dpsi[l] * (p.u - self.v_th_of(l) * p.y)).sum() * sg * (1 - sg))
        for l in range(len(self.threshold)):
            p = prev[l]
            th = self.threshold[l].detach()
            live = (th >= self.cfg.v_th_min).to(th.dtype)
            out.append(live * (dpsi[l] * (-self.gamma_of(l) * p.y - 1.0)).sum())
        return [o.detach() if isinstance(o, torch.Tensor) else o for o in out]

    def param_grads(self, tensors: list, grads: list) -> list[tuple]:
        r"""(parameter, gradient) pairs from estimates with respect to the weights as
        used: for standardised layers the estimate for :math:`\hat W` is chained into W
        and the gain g (the standardisation's vector-Jacobian product)."""
        if not (len(self.gain) or len(self.gain_rec)):   # no standardised layer
            return list(zip(tensors, grads))
        std = {id(w): (w, g) for w, g in zip(self.hidden, self.gain)}
        std.update({id(v): (v, g) for v, g in zip(self.recurrent, self.gain_rec)})
        out = []
        for t, g in zip(tensors, grads):
            if id(t) in std and g is not None:
                w, gain = std[id(t)]
                with torch.enable_grad():
                    w_ = w.detach().requires_grad_(True)
                    g_ = gain.detach().requires_grad_(True)
                    gw, gg = torch.autograd.grad(standardise_weight(w_, g_), (w_, g_),
                                                 g.reshape(w.shape))
                out += [(w, gw), (gain, gg)]
            else:
                out.append((t, g))
        return out


def uniform_weight(shape: tuple[int, ...], bound: float,
                   generator: torch.Generator | None = None) -> nn.Parameter:
    """A weight drawn from U(-bound, bound) (the one initialisation of every net here)."""
    return nn.Parameter((torch.rand(*shape, generator=generator) * 2 - 1) * bound)


class NetState(NamedTuple):
    """State after a step: one :class:`LIFState` per hidden layer, the readout ``o``, and
    the dropout masks of the batch (None: no dropout)."""

    layers: list[LIFState]
    o: torch.Tensor
    masks: tuple | None = None


class ReadoutPrediction:
    """Prediction rule shared by the nets with a leaky readout."""

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor, t_l: int) -> torch.Tensor:
        """Sum of readout outputs over steps ``t >= t_l`` for input ``x`` (T, B, n_in)."""
        from ..functional.lif import heaviside

        state = self.init_state(x.shape[1])
        acc = torch.zeros_like(state.o)
        for t in range(x.shape[0]):
            state = self.step(state, x[t], heaviside)
            if t >= t_l:
                acc += state.o
        return acc


class DenseSNN(LayerFeatures, ReadoutPrediction, nn.Module):
    """LIF layers ``W^l`` followed by a leaky readout ``W_out`` (no bias unless
    ``cfg.bias``; the other optional features: :class:`LayerFeatures`)."""

    def __init__(self, cfg: NetConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        sizes = cfg.layer_sizes
        self.hidden = nn.ParameterList()
        for n_pre, n_post in zip(sizes[:-2], sizes[1:-1]):
            self.hidden.append(uniform_weight(
                (n_post, n_pre), cfg.init_gain * math.sqrt(3.0 / n_pre), generator))
        self.readout = uniform_weight((sizes[-1], sizes[-2]), math.sqrt(1.0 / sizes[-2]),
                                      generator)
        self.recurrent = nn.ParameterList()
        if cfg.recurrent:
            for n in sizes[1:-1]:
                self.recurrent.append(uniform_weight(
                    (n, n), 0.5 * cfg.init_gain * math.sqrt(3.0 / n), generator))
        self._init_features(cfg)

    @property
    def weights(self) -> list[nn.Parameter]:
        """All weight matrices: hidden W^l first, then the recurrent V^l (if any), the
        readout last."""
        return [*self.hidden, *self.recurrent, self.readout]

    # -- per-layer hooks shared with ConvSNN ----------------------------------------------
    def layer_input(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """What layer l integrates (dense: the input as it is)."""
        return a

    def layer_current(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """Feed-forward synaptic current of layer l (recurrence is added in ``step``)."""
        return a @ self.w(l).T

    def weight_grad(self, l: int, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Σ_batch g ⊗ a: the weight gradient of a dense layer."""
        return outer_batched(g, a)

    def add_weight_grad(self, l: int, acc: torch.Tensor, a: torch.Tensor, g: torch.Tensor,
                        alpha: float = 1.0) -> None:
        """``acc += alpha · Σ_batch g ⊗ a`` in place (one fused matrix product)."""
        add_outer_(acc, g, a, alpha)

    def readout_input(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def step_deltas(self, err: torch.Tensor, psi: list[torch.Tensor],
                    masks: tuple | None = None) -> list[torch.Tensor]:
        r"""Same-step back-propagation of the readout error in closed form.

        With every state of step t-1 detached (reset and recurrent inputs carry no
        gradient), the gradient of :math:`e^T o[t]` with respect to each layer's spikes
        :math:`y^l[t]` is

        .. math::

            δ^L = e\,W_{out}, \qquad δ^{l} = (δ^{l+1} ⊙ Ψ(u^{l+1}[t]))\,W^{l+1}

        (:func:`~lava_local.functional.stllr.bp_signal`); what autograd computes
        through the step, without building the step's graph. With dropout ``masks`` m^l,
        each δ^l is taken at the unmasked spikes: δ^l ⊙ m^l.
        """
        from ..functional.stllr import bp_signal

        def masked(d, l):
            return d if masks is None else d * masks[l]

        last = len(self.hidden) - 1
        d = masked(err @ self.readout, last)
        out = [d]
        for l in range(last, 0, -1):
            d = masked(bp_signal(d, psi[l], self.w(l)), l - 1)
            out.append(d)
        return out[::-1]

    def init_state(self, batch: int) -> NetState:
        dev, dt = self.readout.device, self.readout.dtype
        layers = [
            LIFState(torch.zeros(batch, w.shape[0], device=dev, dtype=dt),
                     torch.zeros(batch, w.shape[0], device=dev, dtype=dt))
            for w in self.hidden
        ]
        return NetState(layers, torch.zeros(batch, self.cfg.n_out, device=dev, dtype=dt))

    def step(
        self,
        state: NetState,
        x_t: torch.Tensor,
        spike_fn: Callable[[torch.Tensor], torch.Tensor],
    ) -> NetState:
        """Advance one step. The reset term uses the previous spikes detached (the papers'
        reset carries no gradient); the recurrent input does not."""
        cfg = self.cfg
        inp = x_t
        layers = []
        masks = state.masks
        for l, s in enumerate(state.layers):
            current = inp @ self.w(l).T
            if cfg.recurrent:
                current = current + s.y @ self.v(l).T
            s = self.lif(l, s, current, spike_fn)
            layers.append(s)
            inp = s.y if masks is None else s.y * masks[l]
        o = leaky_readout_step(state.o, self.readout_current(inp), cfg.kappa)
        return NetState(layers, o, masks)


def build_net(cfg, n_in: int, n_out: int, frame_shape: tuple[int, ...] | None = None,
              generator: torch.Generator | None = None):
    """The network of a run configuration (``preset``: ``mlp``/``rec-mlp`` dense nets of
    ``hidden`` widths, or a conv preset of :mod:`lava_local.torch.conv`, which needs
    image-like ``frame_shape`` (C, H, W)); a ``ValueError`` names what does not fit."""
    from .conv import CONV_SPECS, ConvNetConfig, ConvSNN, conv_spec

    if cfg.preset in CONV_SPECS:
        if frame_shape is None or len(frame_shape) != 3:
            raise ValueError(f"the {cfg.preset} preset needs image-like frames (C, H, W); "
                             "this data set has none")
        ccfg = ConvNetConfig(tuple(frame_shape), n_out, conv_spec(cfg.preset, cfg.width),
                             cfg.gamma, cfg.v_th, cfg.kappa, cfg.surrogate, cfg.init_gain,
                             **cfg.features, pooling=cfg.pooling)
        return ConvSNN(ccfg, generator=generator)
    return DenseSNN(cfg.net_config(n_in, n_out), generator=generator)
