"""Minimal array-namespace helpers so the functional core runs on numpy and torch alike.

Only the handful of element-wise operations the equations need are provided. Torch is
never imported here: a tensor is recognised by its type's module, so numpy users do not
pay for importing torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or torch.Tensor


def is_torch(x: Array) -> bool:
    """Return True when ``x`` is a ``torch.Tensor``."""
    return type(x).__module__.split(".")[0] == "torch"


def float_like(mask: Array, like: Array) -> Array:
    """Cast a boolean array ``mask`` to the floating dtype of ``like``."""
    if is_torch(mask):
        return mask.to(like.dtype)
    return np.asarray(mask).astype(np.asarray(like).dtype, copy=False)


def absolute(x: Array) -> Array:
    return x.abs() if is_torch(x) else np.abs(x)


def exp(x: Array) -> Array:
    return x.exp() if is_torch(x) else np.exp(x)


def clamp_min(x: Array, low: float) -> Array:
    """Element-wise ``max(x, low)`` with a scalar bound."""
    return x.clamp(min=low) if is_torch(x) else np.maximum(x, low)


def zeros_like(x: Array) -> Array:
    if is_torch(x):
        return x.new_zeros(x.shape)
    return np.zeros_like(x)


def add_outer_(acc, a, b, alpha: float = 1.0):
    """``acc += alpha · outer_batched(a, b)`` in place (torch; one fused matrix product)."""
    return acc.addmm_(a.reshape(-1, a.shape[-1]).T, b.reshape(-1, b.shape[-1]), alpha=alpha)


def outer_batched(a: Array, b: Array) -> Array:
    """Sum over leading (batch) axes of the outer products ``a[..., i] b[..., j]``.

    ``a`` has shape (..., N_post) and ``b`` has shape (..., N_pre); the result has shape
    (N_post, N_pre). With no batch axes this is the plain outer product.
    """
    a2 = a.reshape(-1, a.shape[-1])
    b2 = b.reshape(-1, b.shape[-1])
    return a2.T @ b2


def softmax(x: Array) -> Array:
    """Softmax over the last axis (numerically stable)."""
    if is_torch(x):
        return x.softmax(dim=-1)
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
