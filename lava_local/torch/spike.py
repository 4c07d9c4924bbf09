"""Heaviside spike with a surrogate derivative, for torch autograd."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from ..functional.surrogates import get_surrogate


class _SurrogateSpike(torch.autograd.Function):
    """Forward Θ(x); backward ``grad * psi(x)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, psi: Callable) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.psi = psi
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ctx.psi(x), None


def make_spike_fn(surrogate: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Spike function of ``x = u - v_th`` whose derivative is Ψ(u) (Ψ named ``surrogate``).

    Every Ψ of :mod:`lava_local.functional.surrogates` depends on ``u - v_th`` only, so it
    is evaluated at ``x`` with threshold 0.
    """
    psi = partial(get_surrogate(surrogate), v_th=0.0)
    return lambda x: _SurrogateSpike.apply(x, psi)
