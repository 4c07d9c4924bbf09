"""Neuron-local exponential traces (pre-synaptic and post-synaptic)."""

from __future__ import annotations

from ._backend import Array


def pre_trace_step(q_prev: Array, x: Array, lam_pre: float) -> Array:
    r"""Pre-synaptic trace, including the current step: :math:`q[t] = λ_{pre} q[t-1] + x[t]`."""
    return lam_pre * q_prev + x


def post_trace_step(h_prev: Array, psi_prev: Array, lam_post: float) -> Array:
    r"""Post-synaptic trace, excluding the current step: :math:`h[t] = λ_{post} h[t-1] + Ψ(u[t-1])`.

    ``psi_prev`` is Ψ(u[t-1]), the secondary activation of the *previous* step.
    """
    return lam_post * h_prev + psi_prev
