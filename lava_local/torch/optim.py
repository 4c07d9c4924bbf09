r"""Adam in one pass over memory on the CPU (a compiled kernel), for the trainers.

``torch.optim.Adam`` on the CPU (torch 2.3 has no fused CPU Adam) takes seven passes
over every parameter per step (lerp, mul, addcmul, sqrt, div, add, addcdiv), two of
them into fresh tensors. That is cheap once per batch, but Traces Propagation's recipe
takes an Adam step at every time step (``benchmarks/adam_step.py`` times both).
:class:`FusedAdam` is ``torch.optim.Adam`` with the same hyper-parameters, state and
state dict, whose step runs, for each CPU parameter, one compiled loop over its values
that does what torch's single-tensor Adam does per value, in its order and its dtype:

.. math::

    g &= g + λ θ \qquad (\text{weight decay } λ) \\
    m &= \mathrm{lerp}(m, g, 1 - β_1) \\
    v &= β_2 v + (1 - β_2)\, g\, g \\
    θ &= θ - \frac{lr}{1 - β_1^t}\; \frac{m}{\sqrt{v} / \sqrt{1 - β_2^t} + ε}

The result equals torch's within float rounding, not bit for bit: torch's vectorised
``lerp`` fuses a multiply-add, and its float32 ``sqrt`` differed from the correctly
rounded one (numpy's, the kernel's) in 0.6 % of values here (tested against torch over
many steps). One difference on purpose: a moment below the dtype's smallest normal
number is flushed to zero. Where gradients vanish, the first moment decays into the
subnormal range (0.9^800 < 2^-126), where x86 arithmetic is 10-100x slower and torch's
Adam step several times slower (``benchmarks/adam_step.py``). A flushed first
moment (below 1.2e-38 in float32) would have moved its parameter by less than
lr · 1.2e-38 / ε.

What the kernel does not cover (amsgrad, maximize, differentiable, capturable, sparse
gradients, non-CPU or non-contiguous tensors, dtypes other than float32/64, or numba
missing) runs ``torch.optim.Adam.step`` unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._jit import numba_available

_ADAM_SOURCE = """
def kernel(p, g, m, v, w1, w1c, beta2, w2, bc2_sqrt, eps, neg_step, wd, tiny):
    decay = wd != 0
    low = w1 < 0.5
    zero = tiny - tiny
    for i in range(p.size):
        gi = g[i] + wd * p[i] if decay else g[i]
        mi = m[i] + w1 * (gi - m[i]) if low else gi - (gi - m[i]) * w1c
        mi = zero if abs(mi) < tiny else mi
        m[i] = mi
        vi = v[i] * beta2 + w2 * gi * gi
        vi = zero if vi < tiny else vi
        v[i] = vi
        p[i] = p[i] + neg_step * (mi / (np.sqrt(vi) / bc2_sqrt + eps))
"""


def _kernel():
    from .._jit import compile_kernel

    return compile_kernel(_ADAM_SOURCE, error_model="numpy")


class FusedAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose step on CPU tensors is one compiled pass per
    parameter (see module doc). Same arguments, state and state dict as
    ``torch.optim.Adam``: a checkpoint of either loads into the other."""

    def _fits(self, group: dict, p: torch.Tensor) -> bool:
        return (not group["amsgrad"] and not group["maximize"]
                and not group["differentiable"] and not group["capturable"]
                and not group.get("fused") and p.device.type == "cpu"
                and p.dtype in (torch.float32, torch.float64) and p.is_contiguous()
                and p.grad is not None and not p.grad.is_sparse
                and p.grad.dtype == p.dtype)

    @torch.no_grad()
    def step(self, closure=None):
        """One Adam step (``closure`` re-evaluates the loss, as torch's)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not numba_available() or not all(
                self._fits(g, p) for g in self.param_groups for p in g["params"]
                if p.grad is not None):
            super().step()
            return loss
        kernel = _kernel()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:     # as torch's Adam initialises it
                    state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format)
                step_t = state["step"]
                step_t += 1
                step = step_t.item()
                for key in ("exp_avg", "exp_avg_sq"):     # e.g. loaded from elsewhere
                    if not state[key].is_contiguous():
                        state[key] = state[key].contiguous()
                dt = np.float32 if p.dtype == torch.float32 else np.float64
                w1 = dt(1 - beta1)            # the scalars in the parameter's dtype,
                kernel(_flat(p), _flat(p.grad.contiguous()), _flat(state["exp_avg"]),
                       _flat(state["exp_avg_sq"]), w1, dt(1) - w1, dt(beta2),
                       dt(1 - beta2), dt(math.sqrt(1 - beta2 ** step)), dt(eps),
                       dt(-lr / (1 - beta1 ** step)), dt(wd),     # as torch casts them
                       dt(np.finfo(dt).tiny))
        return loss


def _flat(t: torch.Tensor) -> np.ndarray:
    """A contiguous tensor's values as a flat numpy view (no copy)."""
    return t.detach().view(-1).numpy()


def _scalar_dtype() -> torch.dtype:
    """The dtype torch's Adam keeps its step count in."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def make_adam(params, lr: float) -> torch.optim.Adam:
    """The trainers' Adam: :class:`FusedAdam` (its CPU step compiled; other devices run
    torch's own)."""
    return FusedAdam(params, lr=lr)
