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

from .._jit import numba_available, numpy_kernel

_ADAM_SOURCE = """
def kernel(p, g, m, v, c):
    w1, w1c, beta2, w2, bc2_sqrt = c[0], c[1] - c[0], c[2], c[3], c[4]
    eps, neg_step, wd, tiny = c[5], c[6], c[7], c[8]
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




class FusedAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose step on CPU tensors is one compiled pass per
    parameter (see module doc). Same arguments, state and state dict as
    ``torch.optim.Adam``: a checkpoint of either loads into the other."""

    _GROUP_FLAGS = ("amsgrad", "maximize", "differentiable", "capturable", "fused")

    def _fused_work(self) -> list | None:
        """(group, parameter, its gradient's flat numpy array) for the parameters with a
        gradient, or None where any of them needs torch's step (see module doc)."""
        work = []
        for group in self.param_groups:
            plain = not any(group.get(k) for k in self._GROUP_FLAGS)
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if not (plain and p.is_cpu and p.dtype in _DTYPES and p.is_contiguous()
                        and not g.is_sparse and g.dtype == p.dtype and g.is_cpu):
                    return None
                work.append((group, p, g.detach().numpy().reshape(-1)))  # copy if strided
        return work

    def _views(self, p: torch.Tensor) -> tuple:
        """The flat numpy views of ``p``, its moments and its step count (kept while
        they are the same tensors: a state loaded later gets new views)."""
        state = self.state[p]
        if len(state) == 0:     # as torch's Adam initialises it
            state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        cache = self.__dict__.setdefault("_numpy_views", {})   # not in the pickled state
        v = cache.get(p)
        if (v is None or v[0] is not state["exp_avg"] or v[1] is not state["exp_avg_sq"]
                or v[2] is not state["step"] or v[3] != p.data_ptr()):
            for key in ("exp_avg", "exp_avg_sq"):     # e.g. loaded from elsewhere
                if not state[key].is_contiguous():
                    state[key] = state[key].contiguous()
            m, sq, st = state["exp_avg"], state["exp_avg_sq"], state["step"]
            v = cache[p] = (m, sq, st, p.data_ptr(), _flat(p), _flat(m), _flat(sq),
                            st.detach().view(1).numpy())
        return v

    def step(self, closure=None):
        """One Adam step (``closure`` re-evaluates the loss, as torch's). The step hooks
        (``register_step_pre_hook`` / ``_post_hook``, global or this optimiser's) run
        as with torch's optimisers; without any, and with the profiler off, the step
        skips torch's hook wrapper (its per-call cost counts at every time step of the
        rules that update every step)."""
        if (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or _global_hooks() or _profiler_on()):
            return self._hooked_step(*(() if closure is None else (closure,)))
        return self._step(closure)

    step.hooked = True      # torch's Optimizer must not wrap it: it calls the wrapper

    def _step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = self._fused_work() if numba_available() else None
        if work is None:
            _torch_adam_step(self)         # hooks ran already, if any
            return loss
        kernel = numpy_kernel(_ADAM_SOURCE)
        consts = {}
        for group, p, g in work:
            *_, p_np, m_np, v_np, step_np = self._views(p)
            step_np[0] += 1                # the state's step count, in place
            step = float(step_np[0])
            key = (id(group), step, p.dtype)
            c = consts.get(key)
            if c is None:
                beta1, beta2 = group["betas"]
                lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
                dt = np.float32 if p.dtype == torch.float32 else np.float64
                # the scalars in the parameter's dtype, as torch casts them (1 - w1 in it)
                c = consts[key] = np.array(
                    (1 - beta1, 1.0, beta2, 1 - beta2, math.sqrt(1 - beta2 ** step), eps,
                     -lr / (1 - beta1 ** step), wd, _TINY[dt]), dtype=dt)
            kernel(p_np, g, m_np, v_np, c)
        return loss


FusedAdam._hooked_step = torch.optim.Optimizer.profile_hook_step(FusedAdam._step)


def _torch_adam_step(opt: torch.optim.Adam) -> None:
    """torch's Adam step without its hook wrapper (which torch puts on ``Adam.step``
    once an ``Adam`` is made)."""
    f = torch.optim.Adam.step
    (f.__wrapped__ if getattr(f, "hooked", False) else f)(opt)


def _global_hooks() -> bool:
    from torch.optim import optimizer

    return bool(optimizer._global_optimizer_pre_hooks
                or optimizer._global_optimizer_post_hooks)


def _profiler_on() -> bool:
    return torch.autograd.profiler._is_profiler_enabled


_DTYPES = (torch.float32, torch.float64)
_TINY = {dt: np.finfo(dt).tiny for dt in (np.float32, np.float64)}


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
