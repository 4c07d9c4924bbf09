"""Neuron-local exponential traces (pre-synaptic and post-synaptic)."""

from __future__ import annotations

from ._backend import Array, is_torch


def pre_trace_step(q_prev: Array, x: Array, lam_pre: float) -> Array:
    r"""Pre-synaptic trace, including the current step: :math:`q[t] = λ_{pre} q[t-1] + x[t]`
    (torch: one fused kernel, ``torch.add(x, q, alpha=λ)``)."""
    if is_torch(x):
        import torch

        return torch.add(x, q_prev, alpha=lam_pre)
    return lam_pre * q_prev + x


def post_trace_step(h_prev: Array, psi_prev: Array, lam_post: float) -> Array:
    r"""Post-synaptic trace, excluding the current step: :math:`h[t] = λ_{post} h[t-1] + Ψ(u[t-1])`.

    ``psi_prev`` is Ψ(u[t-1]), the secondary activation of the *previous* step.
    """
    if is_torch(psi_prev):
        import torch

        return torch.add(psi_prev, h_prev, alpha=lam_post)
    return lam_post * h_prev + psi_prev
