"""Dense multi-layer SNN: LIF hidden layers (soft reset) and a non-spiking leaky readout."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..functional._backend import add_outer_, outer_batched
from ..functional.lif import LIFState, leaky_readout_step, lif_step
from ..functional.surrogates import SURROGATES


@dataclass(frozen=True)
class NetConfig:
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


def uniform_weight(shape: tuple[int, ...], bound: float,
                   generator: torch.Generator | None = None) -> nn.Parameter:
    """A weight drawn from U(-bound, bound) (the one initialisation of every net here)."""
    return nn.Parameter((torch.rand(*shape, generator=generator) * 2 - 1) * bound)


class NetState(NamedTuple):
    """State after a step: one :class:`LIFState` per hidden layer and the readout ``o``."""

    layers: list[LIFState]
    o: torch.Tensor


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


class DenseSNN(ReadoutPrediction, nn.Module):
    """LIF layers ``W^l`` (no bias) followed by a leaky readout ``W_out`` (no bias)."""

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
        return a @ self.hidden[l].T

    def weight_grad(self, l: int, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Σ_batch g ⊗ a: the weight gradient of a dense layer."""
        return outer_batched(g, a)

    def add_weight_grad(self, l: int, acc: torch.Tensor, a: torch.Tensor, g: torch.Tensor,
                        alpha: float = 1.0) -> None:
        """``acc += alpha · Σ_batch g ⊗ a`` in place (one fused matrix product)."""
        add_outer_(acc, g, a, alpha)

    def readout_input(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def step_deltas(self, err: torch.Tensor, psi: list[torch.Tensor]) -> list[torch.Tensor]:
        r"""Same-step back-propagation of the readout error in closed form.

        With every state of step t-1 detached (reset and recurrent inputs carry no
        gradient), the gradient of :math:`e^T o[t]` with respect to each layer's spikes
        :math:`y^l[t]` is

        .. math::

            δ^L = e\,W_{out}, \qquad δ^{l} = (δ^{l+1} ⊙ Ψ(u^{l+1}[t]))\,W^{l+1}

        (:func:`~lava_local.functional.stllr.bp_signal`); what autograd computes
        through the step, without building the step's graph.
        """
        from ..functional.stllr import bp_signal

        d = err @ self.readout
        out = [d]
        for l in range(len(self.hidden) - 1, 0, -1):
            d = bp_signal(d, psi[l], self.hidden[l])
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
        for l, (w, s) in enumerate(zip(self.hidden, state.layers)):
            current = inp @ w.T
            if cfg.recurrent:
                current = current + s.y @ self.recurrent[l].T
            s = lif_step(LIFState(s.u, s.y.detach()), current, cfg.gamma, cfg.v_th, spike_fn)
            layers.append(s)
            inp = s.y
        o = leaky_readout_step(state.o, inp @ self.readout.T, cfg.kappa)
        return NetState(layers, o)


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
                             cfg.gamma, cfg.v_th, cfg.kappa, cfg.surrogate, cfg.init_gain)
        return ConvSNN(ccfg, generator=generator)
    return DenseSNN(cfg.net_config(n_in, n_out), generator=generator)
