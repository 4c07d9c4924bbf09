r"""Traces Propagation (TP): per-neuron traces and the layer-wise contrastive loss.

Pes, Yin, Stuijk, Corradi, "Traces Propagation: Memory-Efficient and Scalable
Forward-Only Learning in Spiking Neural Networks" (arXiv 2509.13053).

Input and target paths run through the same layers; each layer keeps one trace per
neuron and path:

.. math::

    ε_l[t] = β ε_l[t-1] + s_l[t], \qquad \tilde ε_l[t] = β \tilde ε_l[t-1] + \tilde s_l[t]

with :math:`ε_0` the trace of the input and :math:`\tilde ε_0` the trace of the one-hot
label. The loss of layer l on a batch of B samples is

.. math::

    z = ε_l \tilde ε_l^T, \quad
    y_{bb'} = \mathrm{softmax}_{b'}\left(
        -\lVert \tilde ε_{l-1}[b] - \tilde ε_{l-1}[b']\rVert_2\right),
    \quad E_l = -\frac{1}{B} \sum_b \sum_{b'} y_{bb'} \log \mathrm{softmax}_{b'}(z_{b,:})

(soft targets from the layer below; for l = 1 same-class pairs are the positives; no
temperature). It needs B >= 2.
"""

from __future__ import annotations

from ._backend import Array, is_torch


def tp_soft_targets(eps_below: Array) -> Array:
    r"""Soft targets of a batch.

    .. math:: y_{bb'} = \mathrm{softmax}_{b'}(-\lVert \tilde ε[b] - \tilde ε[b'] \rVert_2)
    """
    if is_torch(eps_below):
        import torch

        d = torch.cdist(eps_below, eps_below)
        return torch.softmax(-d, dim=-1)
    import numpy as np

    d = np.sqrt(((eps_below[:, None, :] - eps_below[None, :, :]) ** 2).sum(-1))
    z = np.exp(-d - (-d).max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def tp_contrastive_loss(eps: Array, eps_target: Array, soft_targets: Array) -> Array:
    """Layer loss :math:`E_l` (see module doc); ``eps``, ``eps_target`` (B, H),
    ``soft_targets`` (B, B). Conv maps (B, C, H, W) are contrasted per spatial location
    (channels as features) and the losses averaged over locations (torch only)."""
    if is_torch(eps) and eps.dim() == 4:
        b, c = eps.shape[:2]
        e = eps.permute(2, 3, 0, 1).reshape(-1, b, c)           # (locations, B, C)
        et = eps_target.permute(2, 3, 0, 1).reshape(-1, b, c)
        logp = (e @ et.transpose(1, 2)).log_softmax(dim=-1)
        return -(soft_targets * logp).sum(-1).mean()
    z = eps @ eps_target.T
    if is_torch(z):
        logp = z.log_softmax(dim=-1)
        return -(soft_targets * logp).sum(-1).mean()
    import numpy as np

    zmax = z.max(-1, keepdims=True)
    logp = z - zmax - np.log(np.exp(z - zmax).sum(-1, keepdims=True))
    return -(soft_targets * logp).sum(-1).mean()
