r"""S-TLLR: eligibility traces, learning signals and the weight update (pure functions).

Apolinario & Roy, "S-TLLR: STDP-inspired Temporal Local Learning Rule for Spiking
Neural Networks" (TMLR, arXiv 2306.15220).

For a layer with inputs :math:`x_j[t]` and LIF neurons :math:`u_i[t], y_i[t]`:

.. math::

    q_j[t] &= λ_{pre}\, q_j[t-1] + x_j[t] \\
    h_i[t] &= λ_{post}\, h_i[t-1] + Ψ(u_i[t-1]) \\
    e_{ij}[t] &= α_{pre}\, Ψ(u_i[t])\, q_j[t] + α_{post}\, \tilde h_i[t]\, x_j[t] \\
    Δw_{ij} &= -η \sum_{t=T_l}^{T-1} δ_i[t]\, e_{ij}[t]

where :math:`δ_i[t] = ∂\mathcal{L}[t]/∂y_i[t]` is the instantaneous learning signal. The
functions here return the gradient estimate :math:`G_{ij} = \sum δ_i e_{ij}` (sign of a
gradient: an optimiser *subtracts* it), which for one layer, one step and
:math:`α_{post} = 0` equals the autograd gradient of the per-step loss.

Non-causal trace form
---------------------
The paper's closed form of the eligibility trace carries one more factor
:math:`λ_{post}` on the non-causal sum than the recurrence above (which the public code
follows): :math:`\tilde h = λ_{post} h` (``post_form="paper"``, the default) or
:math:`\tilde h = h` (``post_form="code"``).
"""

from __future__ import annotations

from ._backend import Array, outer_batched, softmax

POST_FORMS = ("paper", "code")


def noncausal_trace(h: Array, lam_post: float, post_form: str = "paper") -> Array:
    r"""Post trace as it enters the non-causal term: :math:`λ_{post} h` ("paper") or
    :math:`h` ("code")."""
    if post_form == "paper":
        return lam_post * h
    if post_form == "code":
        return h
    raise ValueError(f"unknown post_form {post_form!r}; choose one of {POST_FORMS}")


def stllr_eligibility(
    psi_u: Array, q: Array, h_eff: Array, x: Array, alpha_pre: float, alpha_post: float
) -> Array:
    r"""Per-synapse eligibility trace of one step.

    .. math:: e_{ij}[t] = α_{pre} Ψ(u_i[t]) q_j[t] + α_{post} \tilde h_i[t] x_j[t]

    Parameters
    ----------
    psi_u, h_eff : array, shape (..., N_post)
        :math:`Ψ(u[t])` and the non-causal post trace :math:`\tilde h[t]`.
    q, x : array, shape (..., N_pre)
        Pre trace :math:`q[t]` and pre spikes :math:`x[t]`.

    Returns
    -------
    array, shape (..., N_post, N_pre)
        Materialised only for tests and small models; training uses :func:`stllr_update`.
    """
    return alpha_pre * psi_u[..., :, None] * q[..., None, :] + (
        alpha_post * h_eff[..., :, None] * x[..., None, :]
    )


def stllr_update(
    delta: Array,
    psi_u: Array,
    q: Array,
    h_eff: Array,
    x: Array,
    alpha_pre: float,
    alpha_post: float,
    outer=None,
) -> Array:
    r"""Batch-summed gradient estimate of one step, without forming :math:`e_{ij}`.

    .. math::

        G_{ij}[t] = \sum_b δ_{bi}[t]\, e_{bij}[t]
        = \sum_b (α_{pre} δ_{bi} Ψ(u_{bi}))\, q_{bj} + (α_{post} δ_{bi} \tilde h_{bi})\, x_{bj}

    Parameters
    ----------
    delta : array, shape (..., N_post)
        Learning signal :math:`δ[t] = ∂\mathcal{L}[t]/∂y[t]`.
    psi_u, q, h_eff, x, alpha_pre, alpha_post
        As in :func:`stllr_eligibility`.
    outer : callable, optional
        ``outer(post, pre)`` forming the batch-summed weight gradient of the layer from a
        post-shaped and a pre-shaped array: the outer product for dense layers (default),
        ``conv2d_weight`` for convolutions (the same rule, weights shared over space).

    Returns
    -------
    array, shape (N_post, N_pre) (or the layer's weight shape)
    """
    outer = outer or outer_batched
    g = outer(alpha_pre * delta * psi_u, q)
    if alpha_post != 0:
        g = g + outer(alpha_post * delta * h_eff, x)
    return g


def ce_output_error(logits: Array, onehot: Array) -> Array:
    r"""Output error of a softmax cross-entropy loss.

    .. math:: ∂\mathcal{L}/∂o = \mathrm{softmax}(o) - y^*
    """
    return softmax(logits) - onehot


def bp_signal(delta_next: Array, psi_next: Array, w_next: Array) -> Array:
    r"""Same-step back-propagated signal :math:`δ^l = W^{l+1\,T} (Ψ(u^{l+1}) ⊙ δ^{l+1})`.

    ``w_next`` has shape (N_{l+1}, N_l); pass ``psi_next`` = 1 for a non-spiking readout.
    """
    return (delta_next * psi_next) @ w_next


def dfa_signal(err: Array, feedback: Array) -> Array:
    r"""Direct feedback alignment :math:`δ^l = B^l e` with a fixed random ``feedback``
    matrix of shape (N_l, C) and output error ``err`` of shape (..., C)."""
    return err @ feedback.T
