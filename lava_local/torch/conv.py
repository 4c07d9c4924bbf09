"""Convolutional SNNs (Conv2d 3×3 + LIF, average pooling, dense LIF, leaky readout) and
the named architecture presets.

A :class:`ConvSNN` exposes the same interface as :class:`~lava_local.torch.model.DenseSNN`
(``hidden``, ``readout``, ``weights``, ``init_state``, ``step``, ``predict_logits``) plus
the per-layer hooks the trainers use: ``layer_input`` (pooling/flattening of a layer's
input), ``layer_current`` and ``weight_grad`` (the weight gradient of a layer from an
input-shaped array and an output-shaped array: ``conv2d_weight`` for convolutions).

Presets (channels scaled by ``width``):

- ``vgg9``: 64, 128, P, 256, 256, P, 512, 512, P, 512, 512, P, F1024 + readout
  (8 conv and 1 dense LIF layers, as the VGG-9 of S-TLLR/TESS/TP);
- ``alexnet-snn``: 96, P, 256, P, 384, 384, 256, P, F1024, F1024 + readout (AlexNet's
  layer plan with 3×3 kernels, for 32–48 px event frames, as used by TTL-BPTT);
- ``vgg9-gap``: 64, 128, P, 256, 256, P, 512, 512, P, 512, 512, G1 + readout (the public
  S-TLLR/TESS code's VGG-9: 8 conv layers, global average pooling into the readout);
- ``vgg9-gap2``: the same with G2 (the public Traces Propagation code's VGG-9: a 2×2
  adaptive average pooling, readout over 4 × 512 inputs).

``P`` is a 2×2 pooling of the spikes before the next layer (average, or max with
``pooling="max"``), ``M`` a 2×2 max pooling, ``G<k>`` an adaptive average pooling to a
k×k map, ``F<n>`` a dense LIF layer. The dense presets ``mlp`` and ``rec-mlp`` are
DenseSNNs (``--hidden``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..functional.lif import LIFState, leaky_readout_step
from ..functional.surrogates import SURROGATES
from .model import (
    LayerFeatureOptions,
    LayerFeatures,
    NetState,
    ReadoutPrediction,
    check_features,
    uniform_weight,
)

PRESETS = ("mlp", "rec-mlp", "vgg9", "alexnet-snn", "vgg9-gap", "vgg9-gap2")
CONV_SPECS = {
    "vgg9": (64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P", "F1024"),
    "alexnet-snn": (96, "P", 256, "P", 384, 384, 256, "P", "F1024", "F1024"),
    "vgg9-gap": (64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "G1"),
    "vgg9-gap2": (64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "G2"),
}
#: How the spikes are pooled before a layer: op ("avg" | "max" | "adaptive") and k (the
#: factor, or the output size of an adaptive pooling).
POOL_OPS = ("avg", "max", "adaptive")


def pool_map(a: torch.Tensor, op: str, k: int) -> torch.Tensor:
    """Pool (B, C, H, W) spikes: k×k average or max, or adaptive average to k×k."""
    if op == "adaptive":
        return F.adaptive_avg_pool2d(a, k)
    if k <= 1:
        return a
    return F.max_pool2d(a, k) if op == "max" else F.avg_pool2d(a, k)


@dataclass(frozen=True)
class ConvNetConfig(LayerFeatureOptions):
    """Architecture of a :class:`ConvSNN`.

    Attributes
    ----------
    input_shape : (C, H, W)
    n_out : int
    spec : tuple
        Conv layers (int: output channels, 3×3, padding 1), "P" (2×2 pooling of the spikes
        before the next layer: average, or max with ``pooling="max"``), "M" (2×2 max
        pooling), "G<k>" (adaptive average pooling to k×k) and "F<n>" (dense LIF layer of n
        neurons).
    pooling : {"avg", "max"}
        What "P" does.
    gamma, v_th, kappa, surrogate, init_gain
    weight_std, bias, learn_leak, learn_threshold, v_th_min, dropout
        As in :class:`~lava_local.torch.model.NetConfig`.
    """

    input_shape: tuple[int, int, int]
    n_out: int
    spec: tuple
    gamma: float = 0.5
    v_th: float = 0.8
    kappa: float = 0.9
    surrogate: str = "triangle"
    init_gain: float = 1.0
    recurrent: bool = False
    pooling: str = "avg"

    def __post_init__(self) -> None:
        check_features(self)
        if self.surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {self.surrogate!r}")
        if self.pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be avg or max, got {self.pooling!r}")
        self.plan()  # validates the shapes

    def _pooled(self, shape, op: str, k: int):
        """The (C, H, W) map after pooling ``op`` with ``k``."""
        c, h, w = shape
        if op == "adaptive":
            if k > min(h, w):
                raise ValueError(f"adaptive pooling to {k}×{k} does not fit a {h}×{w} map in "
                                 f"{self.spec}")
            return c, k, k
        if k > 1 and (h % k or w % k):
            raise ValueError(
                f"pooling {k}×{k} does not fit a {h}×{w} map in {self.spec}; "
                "use a larger input (e.g. 32×32 event frames) or another preset")
        return c, h // k, w // k

    def _pool_items(self, items: list) -> tuple[str, int]:
        """One pooling (op, k) from consecutive pooling items (2×2 ones multiply)."""
        ops = {"P": self.pooling, "M": "max"}
        if not items:
            return "avg", 1
        if any(i.startswith("G") for i in items):
            if len(items) > 1:
                raise ValueError(f"an adaptive pooling G<k> stands alone in {self.spec}")
            return "adaptive", int(items[0][1:])
        kinds = {ops[i] for i in items}
        if len(kinds) > 1:
            raise ValueError(f"consecutive poolings of different kinds in {self.spec}")
        return kinds.pop(), 2 ** len(items)

    @staticmethod
    def _is_pool(item) -> bool:
        return isinstance(item, str) and (item in ("P", "M") or item.startswith("G"))

    def plan(self) -> list[dict]:
        """Per spiking layer: kind, pooling before it (``pool_op``, ``pool``), input and
        output shapes."""
        shape, pending, out = tuple(self.input_shape), [], []
        for item in self.spec:
            if self._is_pool(item):
                pending.append(item)
                continue
            op, k = self._pool_items(pending)
            if len(shape) == 3:
                c, h, w = self._pooled(shape, op, k)
            else:
                if pending:
                    raise ValueError(f"pooling after a dense layer in {self.spec}")
                c, h, w = shape[0], 1, 1
            if isinstance(item, str) and item.startswith("F"):
                n_in = c * h * w if len(shape) == 3 else shape[0]
                three = len(shape) == 3
                out.append({"kind": "fc", "pool": k if three else 1,
                            "pool_op": op if three else "avg",
                            "in": (n_in,), "out": (int(item[1:]),), "flatten": three})
                shape = (int(item[1:]),)
            else:
                if len(shape) != 3:
                    raise ValueError("a conv layer cannot follow a dense one")
                out.append({"kind": "conv", "pool": k, "pool_op": op, "in": (c, h, w),
                            "out": (int(item), h, w), "flatten": False})
                shape = (int(item), h, w)
            pending = []
        if not out:
            raise ValueError("the spec has no layer")
        return out

    def readout_pooling(self) -> tuple[str, int]:
        """(op, k) of the pooling before the readout (the spec's trailing pool items)."""
        tail = []
        for item in reversed(self.spec):
            if not self._is_pool(item):
                break
            tail.insert(0, item)
        return self._pool_items(tail)

    def readout_in(self) -> tuple[int, int]:
        """(pooling factor or adaptive size before the readout, number of readout
        inputs)."""
        last = self.plan()[-1]["out"]
        op, k = self.readout_pooling()
        if len(last) == 3:
            c, h, w = self._pooled(last, op, k)
            return k, c * h * w
        return 1, last[0]

    @property
    def layer_sizes(self) -> list[int]:
        """[inputs, neurons of each spiking layer..., classes] (flattened counts)."""
        return ([math.prod(self.input_shape)] + [math.prod(p["out"]) for p in self.plan()]
                + [self.n_out])

    @property
    def forward_macs(self) -> list[int]:
        """MACs of one forward step per weight layer (spiking layers, then the readout)."""
        macs = []
        for p in self.plan():
            if p["kind"] == "conv":
                c_out, h, w = p["out"]
                macs.append(c_out * h * w * p["in"][0] * 9)
            else:
                macs.append(p["out"][0] * p["in"][0])
        macs.append(self.n_out * self.readout_in()[1])
        return macs


def conv_spec(preset: str, width: float = 1.0) -> tuple:
    """A preset's spec with channel counts scaled by ``width`` (at least 1 each)."""
    if preset not in CONV_SPECS:
        raise ValueError(f"unknown conv preset {preset!r}; choose one of {sorted(CONV_SPECS)}")
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    out = []
    for item in CONV_SPECS[preset]:
        if isinstance(item, int):
            out.append(max(1, round(item * width)))
        elif item.startswith("F"):
            out.append(f"F{max(1, round(int(item[1:]) * width))}")
        else:
            out.append(item)
    return tuple(out)


class ConvSNN(LayerFeatures, ReadoutPrediction, nn.Module):
    """Spiking conv net with a leaky readout (see module doc)."""

    def __init__(self, cfg: ConvNetConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.plan = cfg.plan()
        self.hidden = nn.ParameterList()
        for p in self.plan:
            fan_in = p["in"][0] * 9 if p["kind"] == "conv" else p["in"][0]
            shape = (p["out"][0], p["in"][0], 3, 3) if p["kind"] == "conv" \
                else (p["out"][0], p["in"][0])
            self.hidden.append(uniform_weight(shape, cfg.init_gain * math.sqrt(3.0 / fan_in),
                                              generator))
        self._ro_pool = cfg.readout_pooling()
        n_ro = cfg.readout_in()[1]
        self.readout = uniform_weight((cfg.n_out, n_ro), math.sqrt(1.0 / n_ro), generator)
        self.recurrent = nn.ParameterList()
        self._init_features(cfg)

    @property
    def weights(self) -> list[nn.Parameter]:
        return [*self.hidden, self.readout]

    def init_state(self, batch: int) -> NetState:
        w = self.readout
        z = lambda s: torch.zeros(batch, *s, device=w.device, dtype=w.dtype)  # noqa: E731
        layers = [LIFState(z(p["out"]), z(p["out"])) for p in self.plan]
        return NetState(layers, z((self.cfg.n_out,)))

    # -- per-layer hooks ------------------------------------------------------------------
    def layer_input(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """What layer l integrates: ``a`` (the input data flattened, or the previous
        layer's spikes) reshaped, pooled and flattened as the plan says."""
        p = self.plan[l]
        if l == 0 and len(self.cfg.input_shape) == 3:
            a = a.reshape(a.shape[0], *self.cfg.input_shape)
        if a.dim() == 4:
            a = pool_map(a, p["pool_op"], p["pool"])
        if p["kind"] == "fc" and a.dim() > 2:
            a = a.flatten(1)
        return a

    def layer_current(self, l: int, a: torch.Tensor) -> torch.Tensor:
        w = self.w(l)
        return F.conv2d(a, w, padding=1) if self.plan[l]["kind"] == "conv" else a @ w.T

    def weight_grad(self, l: int, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Σ_batch of the weight gradient of layer l for input ``a`` and output grad ``g``."""
        w = self.hidden[l]
        if self.plan[l]["kind"] == "conv":
            return torch.nn.grad.conv2d_weight(a, w.shape, g, padding=1)
        return g.T @ a

    def add_weight_grad(self, l: int, acc: torch.Tensor, a: torch.Tensor, g: torch.Tensor,
                        alpha: float = 1.0) -> None:
        """``acc += alpha · weight_grad(l, a, g)`` in place."""
        acc.add_(self.weight_grad(l, a, g), alpha=alpha)

    def readout_input(self, y: torch.Tensor) -> torch.Tensor:
        if y.dim() == 4:
            y = pool_map(y, *self._ro_pool)
        return y.flatten(1)

    def step(self, state: NetState, x_t: torch.Tensor,
             spike_fn: Callable[[torch.Tensor], torch.Tensor]) -> NetState:
        cfg = self.cfg
        inp, layers, masks = x_t, [], state.masks
        for l, s in enumerate(state.layers):
            cur = self.layer_current(l, self.layer_input(l, inp))
            s = self.lif(l, s, cur, spike_fn)
            layers.append(s)
            inp = s.y if masks is None else s.y * masks[l]
        o = leaky_readout_step(state.o, self.readout_current(inp), cfg.kappa)
        return NetState(layers, o, masks)
