r"""TESS: the rule, its hyper-parameters, its batched trainer and its graph parts.

Equations: :mod:`lava_local.functional.tess` (the layer-local learning signal
:math:`m^l = B^{l\,T}(f(B^l o^l) - y^*)`); the traces and the update are S-TLLR's
(:class:`~lava_local.rules.stllr.EligibilityTrainer`).

On the Lava graph (``run --learn tess``), per hidden layer l::

    STLLRNeuron_l ─s_out─> Dense(B^l / n_l) ─z─> ErrorUnit_l (f(z) − onehot(label)) · s
          ^                                            │ e            ^ label (dataloader)
          └── a_third_factor_in <── Dense(sign B^lᵀ) <─┘

Each Dense delays by one step, so the signal of the layer's step t reaches it at its
step t + 2 (every layer alike). The back projection carries the square wave's signs
(±1) instead of ±1/n_l: the graph's third factor is :math:`n_l\,m^l`, i.e. the 1/n_l of
Bᵀ is folded into a per-layer learning rate, so one η serves every layer and the signal
fills the fixed-point range; the direction within a layer is TESS's. ``s`` = 1/(T − T_l).
f = softmax (float graph) or identity (float, fixed point and Loihi 2: softmax has no
integer form; the on-chip variant). In fixed point z arrives as the integer
:math:`\sum_j \mathrm{sign}(B_{kj}) y_j` (units 1/n_l); the unit computes
:math:`e = \mathrm{round}((z_{int} - n_l y^*) \cdot M \cdot 2^{-k})` in integers (units
``error_unit``), and the back projection sums the signed errors exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..functional.tess import TESS_F, square_wave_projection, tess_signal
from .base import ALL_FEATURES, Costs, GraphLearning, Rule, RuleParams, option
from .stllr import (
    ELIGIBILITY_MEMORY,
    EligibilityParams,
    EligibilityParts,
    EligibilityTrainer,
    eligibility_memory,
)


@dataclass(frozen=True, kw_only=True)
class TESSParams(EligibilityParams):
    """Hyper-parameters of TESS: S-TLLR's traces (see
    :class:`~lava_local.rules.stllr.EligibilityParams`) and the local signal.

    Attributes
    ----------
    f : {"softmax", "identity"}
        Output function of the local error (flat key ``tess_f``).
    pool : int
        Conv layers: average-pool the output to a×a before the projection (0: no
        pooling; the public code's choice, not in the paper).
    f_lo, f_hi : float
        Spatial-frequency range of the square-wave rows of B^l.
    """

    f: str = option("softmax", "TESS output function of the local error",
                    key="tess_f", choices=TESS_F)
    pool: int = option(0, "TESS: pool conv outputs to a×a before the projection "
                       "(0: no pooling)", key="tess_pool", type=int)
    f_lo: float = option(50.0, "TESS: lowest spatial frequency of the square waves",
                         key="tess_f_lo", type=float)
    f_hi: float = option(512.0, "TESS: highest spatial frequency of the square waves",
                         key="tess_f_hi", type=float)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pool < 0:
            raise ValueError(f"tess_pool must be >= 0 (0: no pooling), got {self.pool}")
        if not 0 < self.f_lo <= self.f_hi:
            raise ValueError(f"TESS needs 0 < tess_f_lo <= tess_f_hi, got {self.f_lo}, "
                             f"{self.f_hi}")


class TESSTrainer(EligibilityTrainer):
    """TESS: S-TLLR's traces and update with a layer-local learning signal.

    Every hidden layer l gets :math:`m^l[t] = B^{lT}(f(B^l y^l[t]) - y^*)` from its own
    spikes and a fixed square-wave projection :math:`B^l`
    (:func:`lava_local.functional.tess.tess_signal`), scaled like the output error
    (1 / (batch · window)). Nothing crosses a layer: no step graph is built and each
    layer's update depends only on its own input and output. The readout learns from its
    own per-step cross-entropy (exact, through its κ-trace), as in S-TLLR.
    """

    rule = "tess"

    def __init__(self, model, optimizer, params: TESSParams | None = None,
                 window: int | None = None, generator: torch.Generator | None = None):
        params = params if params is not None else TESSParams()
        super().__init__(model, optimizer, params, window)
        w = model.readout
        # conv layers: optional average pooling of the output to a×a before projecting
        # (the public code's choice; not in the paper), a = min(pool, map size)
        self.pool_sizes, sizes = [], []
        for l, n in enumerate(model.cfg.layer_sizes[1:-1]):
            out = model.plan[l]["out"] if hasattr(model, "plan") else (n,)
            a = min(params.pool, out[1]) if params.pool and len(out) == 3 else 0
            self.pool_sizes.append(a)
            sizes.append(out[0] * a * a if a else n)
        self.projections = [
            torch.as_tensor(square_wave_projection(model.cfg.n_out, n, params.f_lo,
                                                   params.f_hi), dtype=w.dtype,
                            device=w.device)
            for n in sizes]

    def learning_signals(self, st, err, onehot, scale):
        out = []
        for s, b, a in zip(st.net.layers, self.projections, self.pool_sizes):
            if not a:
                m = tess_signal(s.y.flatten(1), b, onehot, self.params.f)
                out.append((m if scale == 1.0 else m * scale).reshape(s.y.shape))
                continue
            y = s.y.detach().requires_grad_()
            with torch.enable_grad():
                z = F.adaptive_avg_pool2d(y, a).flatten(1)
            m = tess_signal(z.detach(), b, onehot, self.params.f) * scale
            out.append(torch.autograd.grad(z, y, grad_outputs=m)[0])  # pooling's adjoint
        return out


# -- on the Lava graph ---------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class TESSGraphOptions(RuleParams):
    """Options of ``run --learn tess``."""

    f: str = option("auto", "output function of TESS's local error units on the graph; "
                    "auto: the run's own in float, identity in fixed point and on Loihi 2",
                    key="tess_f", choices=("auto", *TESS_F))


def error_unit(scale: float) -> float:
    """Fixed point: value of one unit of a TESS error e = (z - y*)·scale, |z - y*| <= 2:
    the power of two that lets 8-bit payloads (|e_int| <= 127) hold the whole range."""
    return 2.0 ** -math.floor(math.log2(127 / (2 * scale)))


class TESSParts(EligibilityParts):
    """Per hidden layer: forward square-wave projection, local error unit, back
    projection into the layer's third-factor port (see module doc)."""

    def __init__(self, params: TESSParams, record: dict, f: str, signs):
        super().__init__(params, record)
        self.f, self.signs = f, signs

    def delta_unit(self, ctx, l: int) -> float:
        return error_unit(1.0 / ctx.n_win)

    def _local_path(self, ctx, l: int) -> dict:
        """Hidden layer l's local error path in the backend's units: the forward
        projection (spikes -> unit), the error unit's settings, the back projection
        (errors -> third factor)."""
        import numpy as np

        sign = self.signs[l]
        c, n = sign.shape
        scale = 1.0 / ctx.n_win
        if ctx.fixed:   # even 8-bit mantissas (MIXED sign mode keeps them whole)
            fwd, fwd_exp = (2 * sign).astype(np.int32), -1
            back, back_exp, bits = (2 * sign.T).astype(np.int32), -1, 8
        else:
            fwd, fwd_exp = sign / n, 0
            back, back_exp, bits = sign.T.astype(float), 0, 24
        unit = {"interval": ctx.interval, "offset": ctx.layer_offset(l) + 1,
                "window_start": ctx.window_start, "window_end": ctx.n_steps,
                "scale": scale, "f": self.f, "in_unit": 1.0 / n,
                "out_unit": error_unit(scale), "precision": ctx.big_p}
        return {"fwd_weights": fwd, "fwd_exp": fwd_exp, "unit": unit,
                "back_weights": back, "back_exp": back_exp, "back_bits": bits}

    def local_error(self, ctx, l: int):
        path = self._local_path(ctx, l)
        path.pop("back_bits")
        return path

    def attach(self, ctx) -> None:
        from lava.proc.dense.process import Dense

        from ..processes import ErrorUnit

        for l in range(len(self.signs)):
            if not ctx.learns[l]:       # frozen (graded inputs, conv)
                continue
            layer = ctx.neurons[l]
            if getattr(layer, "proc_params", {}).get("local_error") is not None:
                ctx.loader.ground_truth.connect(layer.label_in)    # the path is built in
                continue
            path = self._local_path(ctx, l)
            fwd_exp = {"weight_exp": path["fwd_exp"]} if ctx.fixed else {}
            back_exp = {"weight_exp": path["back_exp"]} if ctx.fixed else {}
            fwd = Dense(weights=path["fwd_weights"], name=f"tess_proj{l}", **fwd_exp)
            back = Dense(weights=path["back_weights"], num_message_bits=path["back_bits"],
                         name=f"tess_back{l}", **back_exp)
            unit = ErrorUnit(shape=(self.signs[l].shape[0],), **path["unit"],
                             name=f"tess_unit{l}")
            layer.s_out.connect(fwd.s_in)
            fwd.a_out.connect(unit.o_in)
            ctx.loader.ground_truth.connect(unit.label_in)
            unit.err_out.connect(back.s_in)
            back.a_out.connect(layer.a_third_factor_in)


class TESSGraph(GraphLearning):
    mode = "tess"
    rule = "tess"
    neuron = "STLLRNeuron (as S-TLLR)"
    signal = ("per layer: Dense(B^l/n) -> ErrorUnit f(z) - onehot(label) -> "
              "Dense(sign B^lᵀ) into the third-factor port; 2 steps late")
    product_series = "OnChipSTLLR (as S-TLLR)"
    Options = TESSGraphOptions
    # its hidden layers' third factor is n_l m^l: a 4x smaller step than S-TLLR-DFA's
    # kept the most of an under-trained net's gain and a trained net's accuracy (digits)
    default_eta = 2.0 ** -9

    def bind(self, net, backend, rng_seed=0, options=None):
        opts = TESSGraphOptions.from_flat(options or {})
        params = TESSParams.from_flat(net.params, strict=False)
        f = opts.f
        if f == "auto":
            f = params.f if backend == "sim-float" else "identity"
        if f == "softmax" and backend != "sim-float":
            raise ValueError("TESS's softmax has no integer form on Loihi 2: the fixed-point "
                             "and Loihi graphs use f = identity (--tess-f identity or auto)")
        c = net.layer_sizes[-1]
        signs = [square_wave_projection(c, n, params.f_lo, params.f_hi, scale=False)
                 for n in net.layer_sizes[1:-1]]
        record = {"mode": self.mode, "f": f, "params": params.to_flat()}
        return TESSParts(params, record, f, signs)


class TESSRule(Rule):
    name = "tess"
    title = "TESS"
    paper = "Apolinario & Roy (arXiv 2502.01837)"
    Params = TESSParams
    features = ALL_FEATURES - {"dropout"}   # the local signal reads each layer's output
    layers = frozenset({"dense", "recurrent", "conv"})

    def trainer_class(self):
        return TESSTrainer

    @property
    def graph(self):
        return TESSGraph()

    def memory_values(self, c: Costs, params) -> int:
        return eligibility_memory(c, params)

    def learning_macs(self, c: Costs, params) -> int:
        """The local projections only; the readout's own update is not in the paper's
        count."""
        return c.learning_steps * sum(2 * n * c.layer_sizes[-1] for n in c.hidden)

    def memory_formula(self) -> str:
        return ELIGIBILITY_MEMORY

    def macs_formula(self) -> str:
        return "(T - T_l) Σ_l 2 n_l C"


TESS = TESSRule()
