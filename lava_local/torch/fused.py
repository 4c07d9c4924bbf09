r"""The element-wise work of a step without autograd, in one compiled pass (CPU).

The forward-in-time trainers advance their nets without an autograd graph (the state of
step t-1 is detached; only a learning signal that back-propagates through a step builds
one). There the LIF step of :func:`~lava_local.functional.lif.lif_step`,

.. math::

    u[t] = γ\,(u[t-1] - θ\,y[t-1]) + I[t], \qquad y[t] = Θ(u[t] - θ),

is seven tensor operations, and a secondary activation Ψ(u) of
:mod:`~lava_local.functional.surrogates` four or five more, each a pass over memory
into a fresh tensor, slow once the step's matrices have pushed its operands out of the
cache. Here each is one
compiled loop over the values that does the same IEEE operations in the same order and
dtype (the scalars cast to the tensors' dtype, as torch casts them), so the results
are the same floats: bit for bit for the LIF step and the algebraic Ψ, within an ulp of
``exp`` for the sigmoid-derivative Ψ (numba's ``exp`` and torch's vectorised one may
round differently) — tested against the functional core.

What a kernel does not cover runs the functional core unchanged: tensors that require
grad, other devices, dtypes other than float32/64, non-contiguous
or broadcast operands, a tensor leak or threshold (learned), a spike function other
than :func:`~lava_local.functional.lif.heaviside`, or numba missing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._jit import numba_available, numpy_kernel
from ..functional.lif import LIFState, heaviside, lif_step
from ..functional.surrogates import get_surrogate
from ..functional.tp import tp_contrastive_signal, tp_soft_targets

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_NUMBERS = (float, int)      # a leak or threshold given as a number (not a tensor)

_LIF_SOURCE = """
def kernel(u, y, cur, k, u_out, y_out):
    gamma, v_th, zero, one = k[0], k[1], k[2], k[3]
    uf = u.reshape(-1)
    yf = y.reshape(-1)
    cf = cur.reshape(-1)
    uo = u_out.reshape(-1)
    yo = y_out.reshape(-1)
    for i in range(uo.size):
        ui = gamma * (uf[i] - v_th * yf[i]) + cf[i]
        uo[i] = ui
        yo[i] = one if ui - v_th > zero else zero
"""

#: Ψ of every surrogate as a loop body over ``x = u - v_th``, its constants in ``k``
#: (k[0] = v_th, k[1] = 0, k[2] = 1, then the surrogate's own), in the order of the
#: operations of :mod:`lava_local.functional.surrogates`.
_PSI_BODIES = {
    # scale * clamp_min(1 - |x|, 0)
    "triangle": ("b = k[2] - abs(x)\n"
                 "        r = k[3] * (k[1] if b < k[1] else b)", (0.3,)),
    # 1 / (slope |x| + 1)^2
    "fast_sigmoid_sq": ("c = k[3] * abs(x) + k[2]\n"
                        "        r = k[2] / (c * c)", (100.0,)),
    # e = exp(-|slope x|); 4 e / (1 + e)^2
    "sigmoid_prime": ("e = np.exp(-abs(k[3] * x))\n"
                      "        c = k[2] + e\n"
                      "        r = (k[4] * e) / (c * c)", (1.0, 4.0)),
    "sigmoid_prime4": ("e = np.exp(-abs(k[3] * x))\n"
                       "        c = k[2] + e\n"
                       "        r = (k[4] * e) / (c * c)", (4.0, 4.0)),
    # 1 / (1 + (slope x)^2)
    "arctan": ("s = k[3] * x\n"
               "        r = k[2] / (k[2] + s * s)", (10.0,)),
    "arctan_pi": ("s = k[3] * x\n"
                  "        r = k[2] / (k[2] + s * s)", (3.141592653589793,)),
}

_PSI_TEMPLATE = """
def kernel(u, k, out):
    uf = u.reshape(-1)
    of = out.reshape(-1)
    for i in range(of.size):
        x = uf[i] - k[0]
        {body}
        of[i] = r
"""




def _plain(*tensors: torch.Tensor) -> bool:
    """Whether ``tensors`` fit a kernel: CPU, one float dtype and shape, contiguous,
    not requiring grad (``numpy()`` refuses those, with grad enabled or not)."""
    t0 = tensors[0]
    return (t0.dtype in _DTYPES and numba_available()
            and all(t.is_cpu and t.dtype == t0.dtype and t.shape == t0.shape
                    and t.is_contiguous() and not t.requires_grad for t in tensors))


def fused_lif_step(state: LIFState, current: torch.Tensor, gamma, v_th,
                   spike_fn: Callable = heaviside) -> LIFState:
    """:func:`~lava_local.functional.lif.lif_step`, in one compiled pass where it fits
    (see module doc); the same floats."""
    if (spike_fn is heaviside and type(gamma) in _NUMBERS and type(v_th) in _NUMBERS
            and _plain(state.u, state.y, current)):
        u_out, y_out = torch.empty_like(current), torch.empty_like(current)
        k = np.array((gamma, v_th, 0.0, 1.0), dtype=_DTYPES[current.dtype])
        numpy_kernel(_LIF_SOURCE)(state.u.numpy(), state.y.numpy(), current.numpy(), k,
                             u_out.numpy(), y_out.numpy())
        return LIFState(u_out, y_out)
    return lif_step(state, current, gamma, v_th, spike_fn)


class _FusedSurrogate:
    """Ψ ``name`` with its kernel (a class, not a closure: a trainer holding it pickles)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.psi = get_surrogate(name)
        body, self.consts = _PSI_BODIES[name]
        self.source = _PSI_TEMPLATE.format(body=body)
        self.__doc__ = self.psi.__doc__

    def __call__(self, u, v_th):
        if isinstance(u, torch.Tensor) and type(v_th) in _NUMBERS and _plain(u):
            out = torch.empty_like(u)
            k = np.array((v_th, 0.0, 1.0, *self.consts), dtype=_DTYPES[u.dtype])
            numpy_kernel(self.source)(u.numpy(), k, out.numpy())
            return out
        return self.psi(u, v_th)

    def __repr__(self) -> str:
        return f"fused_surrogate({self.name!r})"


def fused_surrogate(name: str) -> Callable:
    """The Ψ called ``name`` (:func:`~lava_local.functional.surrogates.get_surrogate`),
    in one compiled pass where it fits (see module doc)."""
    return _FusedSurrogate(name)


_DIST_SOURCE = """
def kernel(e, out):
    b, h = e.shape
    et = np.empty((h, b), dtype=e.dtype)
    for i in range(b):
        for k in range(h):
            et[k, i] = e[i, k]
    for i in range(b):
        row = out[i]
        for j in range(b):
            row[j] = 0
        for k in range(h):
            eik = et[k, i]
            ek = et[k]
            for j in range(b):
                d = eik - ek[j]
                row[j] += d * d
        for j in range(b):
            row[j] = -np.sqrt(row[j])
"""

#: G = (softmax(z) * (Y 1) - Y) / B row by row: k[0] = B (in the dtype)
_CONTRAST_SOURCE = """
def kernel(z, y, k, g):
    b, c = z.shape
    for i in range(b):
        zi = z[i]
        yi = y[i]
        gi = g[i]
        m = zi[0]
        for j in range(1, c):
            if zi[j] > m:
                m = zi[j]
        s = zi[0] - zi[0]
        rs = s
        for j in range(c):
            ej = np.exp(zi[j] - m)
            gi[j] = ej
            s += ej
            rs += yi[j]
        for j in range(c):
            gi[j] = (gi[j] / s * rs - yi[j]) / k[0]
"""


def fused_soft_targets(eps_below: torch.Tensor) -> torch.Tensor:
    r""":func:`~lava_local.functional.tp.tp_soft_targets`, softmax(−‖ε̃_b − ε̃_b'‖), with
    the pairwise distances in one compiled pass where it fits (see module doc): the
    direct differences, as ``torch.cdist(..., "donot_use_mm_for_euclid_dist")`` takes
    them, summed over the features in order (cdist sums in vector lanes: the distances
    agree within float rounding; a self-distance is exactly 0 in both)."""
    if eps_below.dim() == 2 and _plain(eps_below):
        b = eps_below.shape[0]
        neg_dist = torch.empty(b, b, dtype=eps_below.dtype)
        numpy_kernel(_DIST_SOURCE)(eps_below.numpy(), neg_dist.numpy())
        return torch.softmax(neg_dist, dim=-1)
    return tp_soft_targets(eps_below)


def fused_contrastive_signal(eps: torch.Tensor, eps_target: torch.Tensor,
                             soft_targets: torch.Tensor, target: bool = True
                             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    r""":func:`~lava_local.functional.tp.tp_contrastive_signal`, with
    :math:`G = (\mathrm{softmax}(ε\tilde ε^T) ⊙ (Y\mathbf 1) - Y)/B` in one compiled
    pass over its rows where it fits (see module doc); the three matrix products stay
    torch's. Equal within float rounding: the softmax's ``exp`` and the row sums may
    round differently from torch's vectorised ones."""
    if _plain(eps, eps_target) and _plain(soft_targets) and eps.dtype == soft_targets.dtype:
        z = eps @ eps_target.T
        g = torch.empty_like(z)
        k = np.array((eps.shape[0],), dtype=_DTYPES[z.dtype])
        numpy_kernel(_CONTRAST_SOURCE)(z.numpy(), soft_targets.numpy(), k, g.numpy())
        return g @ eps_target, (g.T @ eps if target else None)
    return tp_contrastive_signal(eps, eps_target, soft_targets, target)
