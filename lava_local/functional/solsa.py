r"""SOLSA: online per-synapse eligibility with the reset path, for current-based LIF.

Zhang, Jin, Fang, Qiu, "Neuromorphic Online Learning for Spatiotemporal Patterns with a
Forward-only Timeline" (arXiv 2307.11314). Neuron (per layer, inputs :math:`s_j`):

.. math::

    psp_j[t] &= α\, psp_j[t-1] + β\, s_j[t] \\
    v_i[t] &= λ v_i[t-1] + \sum_j W_{ij}\, psp_j[t] - θ\, s_i[t-1] \\
    s_i[t] &= Θ(v_i[t] - θ), \qquad ε_i[t] = \mathcal{N}(v_i[t];\ θ, σ)

The eligibility includes the reset path, so for one layer it is the exact forward-mode
derivative :math:`e_{ij}[t] = ∂v_i[t]/∂W_{ij}` under the surrogate ε:

.. math::

    e_{ij}[t] = (λ - θ\, ε_i[t-1])\, e_{ij}[t-1] + psp_j[t]

Learning signal (per-step MSE between output spikes and the one-hot target, through the
layers of the same step only) and update:

.. math::

    δ^L[t] = \frac{2}{C}(s^L[t] - y) ⊙ ε^L[t], \quad
    δ^l[t] = \left((δ^{l+1}[t] W^{l+1})\, β^{l+1}\right) ⊙ ε^l[t], \quad
    ΔW_{ij}[t] = δ_i[t]\, e_{ij}[t]

(the functions return gradients; an optimiser subtracts them). The paper body was not
available; the threshold θ and the Gaussian width σ are parameters (reconstruction).
"""

from __future__ import annotations

import math

from ._backend import Array, exp


def gaussian_surrogate(v: Array, theta: float, sigma: float) -> Array:
    r""":math:`ε(v) = \exp(-(v-θ)^2 / 2σ^2) / (\sqrt{2π}\, σ)`."""
    return exp(-((v - theta) ** 2) / (2.0 * sigma * sigma)) / (math.sqrt(2 * math.pi) * sigma)


def psp_step(psp_prev: Array, s_in: Array, alpha, beta) -> Array:
    r"""Synaptic filter :math:`psp[t] = α\, psp[t-1] + β\, s[t]` (α, β scalars or per channel)."""
    return alpha * psp_prev + beta * s_in


def solsa_eligibility_step(e_prev: Array, eps_prev: Array, psp: Array, lam: float,
                           theta: float) -> Array:
    r""":math:`e_{ij}[t] = (λ - θ ε_i[t-1]) e_{ij}[t-1] + psp_j[t]` for a batch.

    ``e_prev`` (..., N_post, N_pre), ``eps_prev`` (..., N_post), ``psp`` (..., N_pre).
    """
    return (lam - theta * eps_prev)[..., :, None] * e_prev + psp[..., None, :]


def solsa_output_signal(s_out: Array, onehot: Array, eps_out: Array) -> Array:
    r""":math:`δ^L = \frac{2}{C}(s^L - y) ⊙ ε^L` (gradient of the per-step MSE wrt v^L)."""
    return 2.0 * (s_out - onehot) / onehot.shape[-1] * eps_out
