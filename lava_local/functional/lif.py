"""Leaky integrate-and-fire neuron with subtractive (soft) reset and leaky readout.

Time-axis convention of the whole project: arrays are time-first, ``(T, batch, features)``;
a single step works on ``(batch, features)`` (or any leading shape).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ._backend import Array, float_like


class LIFState(NamedTuple):
    """State of a LIF layer after step t: membrane ``u[t]`` and spikes ``y[t]``."""

    u: Array
    y: Array


def heaviside(x: Array) -> Array:
    """Θ(x) = 1 if x > 0 else 0, in the dtype of ``x``."""
    return float_like(x > 0, x)


def lif_step(
    state: LIFState,
    current: Array,
    gamma: float,
    v_th: float,
    spike_fn: Callable[[Array], Array] = heaviside,
) -> LIFState:
    r"""One step of the S-TLLR LIF neuron (soft reset).

    .. math::

        u_i[t] &= \gamma\,(u_i[t-1] - v_{th}\, y_i[t-1]) + I_i[t] \\
        y_i[t] &= \Theta(u_i[t] - v_{th})

    with :math:`I_i[t] = \sum_j w_{ij} x_j[t]` given as ``current``.

    Parameters
    ----------
    state : LIFState
        ``(u[t-1], y[t-1])``. The reset term carries no gradient in the papers; a torch
        caller that differentiates through time passes ``y`` detached.
    current : array
        Synaptic input ``I[t]``, same shape as ``state.u``.
    gamma : float
        Membrane leak γ in [0, 1].
    v_th : float
        Firing threshold, > 0.
    spike_fn : callable
        Θ applied to ``u - v_th``; the torch trainers pass a surrogate-gradient spike.

    Returns
    -------
    LIFState
        ``(u[t], y[t])``.
    """
    u = gamma * (state.u - v_th * state.y) + current
    y = spike_fn(u - v_th)
    return LIFState(u, y)


def standardise_weight(w, gain, eps: float = 1e-4):
    r"""Weight standardisation with a per-neuron gain (the public S-TLLR/TESS code's).

    For every output neuron (row / output channel) i of ``w`` with fan-in
    :math:`n = \prod` of the other dimensions,

    .. math::

        \hat w_{i\cdot} = g_i\, \frac{w_{i\cdot} - \mu_i}{\sqrt{n\, s_i^2 + ε}}, \qquad
        μ_i = \frac1n \sum_j w_{ij}, \quad s_i^2 = \frac1{n-1} \sum_j (w_{ij} - μ_i)^2

    (unbiased variance), so every row has zero mean and norm ≈ :math:`g_i`.

    Parameters
    ----------
    w : torch.Tensor
        (N_out, ...) weights (dense (N_out, N_in) or conv (C_out, C_in, k, k)).
    gain : torch.Tensor
        (N_out,) gains g.
    eps : float
        ε, as in the public code.
    """
    flat = w.reshape(w.shape[0], -1)
    n = flat.shape[1]
    mean = flat.mean(1, keepdim=True)
    var = flat.var(1, keepdim=True)
    out = (flat - mean) / (var * n + eps) ** 0.5 * gain.reshape(-1, 1)
    return out.reshape(w.shape)


def leaky_readout_step(o_prev: Array, current: Array, kappa: float) -> Array:
    r"""Non-spiking leaky integrator readout: :math:`o[t] = \kappa\, o[t-1] + I[t]`."""
    return kappa * o_prev + current
