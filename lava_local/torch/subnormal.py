r"""Subnormal values flushed to zero in the trainers' traces and update operands.

A trace that is not driven decays geometrically, :math:`h[t] = λ^n h[t-n]`, and passes
through the subnormal range (below the smallest normal number, 1.2e-38 in float32)
before it reaches zero: 23 binary orders of magnitude, e.g. 10 steps at λ = 0.2, 23 at
λ = 0.5. x86 arithmetic on a subnormal operand takes a microcode assist, 10-100x slower,
and one such value in a coefficient slows every vector instruction of a matrix product
that touches it. The post trace of a neuron that stopped spiking (Ψ = 0 far from the
threshold) and the coefficients made from it (δ ⊙ h, scaled by 1 / (batch · window))
were the largest single cost of S-TLLR's and TESS's update products on the 700-450-20
benchmark net once the net had learned (``benchmarks/README.md``).

:func:`flush_subnormal_` sets such values to zero in place, as the flush-to-zero mode
of the FPU would (TensorFlow runs its CPU kernels in that mode; torch leaves it to the
user, ``torch.set_flush_denormal``, which sets only the calling thread). A flushed
value is below 1.2e-38 (float32) or 2.2e-308 (float64); a product with it changes an
update by less than that times its other factor. CUDA devices do subnormal arithmetic
at full rate, so tensors there are left as they are.
"""

from __future__ import annotations

import numpy as np
import torch

from .._jit import numba_available, numpy_kernel

_FLUSH_SOURCE = """
def kernel(x, tiny):
    zero = tiny - tiny
    f = x.reshape(-1)
    for i in range(f.size):
        v = f[i]
        f[i] = zero if abs(v) < tiny else v
"""




def flush_subnormal_(x: torch.Tensor) -> torch.Tensor:
    """Set the subnormal values of ``x`` to zero, in place; returns ``x``.

    CPU float32/float64 tensors only (others are returned unchanged); one compiled pass
    over a contiguous tensor that does not require grad, torch operations otherwise."""
    tiny = _TINY.get(x.dtype)
    if tiny is None or not x.is_cpu:
        return x
    if not x.requires_grad and x.is_contiguous() and numba_available():
        numpy_kernel(_FLUSH_SOURCE)(x.numpy(), tiny)       # x.numpy() shares x's memory
        return x
    return x.masked_fill_(x.abs() < tiny, 0.0)


_TINY = {dt: np.dtype(str(dt).removeprefix("torch.")).type(torch.finfo(dt).tiny)
         for dt in (torch.float32, torch.float64)}
