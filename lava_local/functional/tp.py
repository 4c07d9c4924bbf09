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

Prototype contrast (the on-chip variant)
----------------------------------------
A chip learns one sample at a time, so there is no batch to contrast. The label path
depends only on the class and the weights (label → fixed S → layer 1, then the same
W_l), so its traces for the C classes are per-class *prototypes*
:math:`P_l[c] = \tilde ε_l^{(c)}[t]` (C × H_l, one set per step t). The sample's trace is
contrasted against them instead of against the other samples:

.. math::

    z_c = ε_l \cdot P_l[c], \quad
    y_c = \mathrm{softmax}_c\left(-\lVert P_{l-1}[k] - P_{l-1}[c]\rVert_2\right), \quad
    E_l = -\sum_c y_c \log \mathrm{softmax}_c(z)

with k the sample's label and :math:`P_0[c] = \tilde ε_0^{(c)}` the label traces (so at
layer 1 the targets peak at the label, as same-class pairs do in the batch loss). It is
the batch loss with the batch replaced by one representative per class: when every
class of a batch is present, each column b' of the batch loss is the prototype of b''s
class. The prototypes are targets (no gradient flows into them). Differentiated through
one layer and one step, as TP does,

.. math::

    \frac{∂E_l}{∂ε_l} = m_l = P_l^T (\mathrm{softmax}(z) - y), \qquad
    \frac{∂E_l}{∂W^l_{ij}} = m_{l,i}\, Ψ(u_i[t])\, x_j[t]

(:func:`tp_prototype_signal`): each neuron gets a graded third factor :math:`m_{l,i}`
and the eligibility is the pre-synaptic spike of the step — the form a learning engine
runs (:mod:`lava_local.rules.tp`, "On the Lava graph"). Over a batch the loss is the mean
over its samples.
"""

from __future__ import annotations

from ._backend import Array, is_torch, softmax


def tp_soft_targets(eps_below: Array) -> Array:
    r"""Soft targets of a batch.

    .. math:: y_{bb'} = \mathrm{softmax}_{b'}(-\lVert \tilde ε[b] - \tilde ε[b'] \rVert_2)
    """
    if is_torch(eps_below):
        import torch

        # direct differences at every batch size (cdist's default switches to the
        # |a|^2 + |b|^2 - 2ab form above 25 rows: float32 self-distances of ~0.05)
        d = torch.cdist(eps_below, eps_below, compute_mode="donot_use_mm_for_euclid_dist")
        return torch.softmax(-d, dim=-1)
    import numpy as np

    d = np.sqrt(((eps_below[:, None, :] - eps_below[None, :, :]) ** 2).sum(-1))
    return _softmax_neg(d)


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


def tp_contrastive_signal(eps: Array, eps_target: Array, soft_targets: Array,
                          target: bool = True) -> tuple[Array, Array | None]:
    r"""Closed-form gradients of :func:`tp_contrastive_loss` (dense layers) with respect
    to both paths' traces:

    .. math::

        G = \frac{1}{B}\left(\mathrm{softmax}(ε\,\tilde ε^T) ⊙ (Y\mathbf 1)
            - Y\right), \qquad
        \frac{∂E_l}{∂ε} = G\,\tilde ε, \qquad \frac{∂E_l}{∂\tilde ε} = G^T ε

    (rows of the soft targets Y sum to one, so the first term is the softmax).
    ``eps``, ``eps_target`` (B, H), ``soft_targets`` (B, B); returns two (B, H) arrays
    (with ``target=False`` the second is None: layer 1's target path is driven through
    the fixed label projection, not through the weights being learned).
    """
    z = eps @ eps_target.T
    p = softmax(z)
    g = (p * soft_targets.sum(-1, keepdims=True) if not is_torch(z) else
         p * soft_targets.sum(-1, keepdim=True)) - soft_targets
    g = g / eps.shape[0]
    return g @ eps_target, (g.T @ eps if target else None)


def tp_prototype_targets(protos_below: Array, labels: Array) -> Array:
    r"""Soft targets of the prototype contrast, one row per sample.

    .. math:: y_{bc} = \mathrm{softmax}_c(-\lVert P_{l-1}[k_b] - P_{l-1}[c]\rVert_2)

    Parameters
    ----------
    protos_below : array, shape (C, ...)
        Prototypes of the layer below (the label traces below layer 1); flattened.
    labels : int array, shape (B,)

    Returns
    -------
    array, shape (B, C)
    """
    p = protos_below.reshape(protos_below.shape[0], -1)
    if is_torch(p):
        import torch

        d = torch.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
        return torch.softmax(-d, dim=-1)[labels]
    import numpy as np

    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    return _softmax_neg(d)[np.asarray(labels)]


def _softmax_neg(d):
    """Row-wise ``softmax(-d)`` (numpy)."""
    import numpy as np

    z = np.exp(-d - (-d).max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _similarities(eps: Array, protos: Array) -> Array:
    """z (B, C) for dense traces; (B, C, locations) for conv maps (channels as
    features, as the batch loss contrasts them)."""
    if eps.ndim == 2:
        return eps @ protos.T
    b, c = eps.shape[0], protos.shape[0]
    e = eps.reshape(b, eps.shape[1], -1)
    p = protos.reshape(c, protos.shape[1], -1)
    if is_torch(e):
        import torch

        return torch.einsum("bkl,ckl->bcl", e, p)
    import numpy as np

    return np.einsum("bkl,ckl->bcl", e, p)


def tp_prototype_loss(eps: Array, protos: Array, targets: Array) -> Array:
    r"""Prototype-contrast loss :math:`E_l` (see module doc), mean over the batch (and
    over the locations of conv maps).

    Parameters
    ----------
    eps : array, shape (B, H) or (B, K, h, w)
        The samples' traces :math:`ε_l`.
    protos : array, shape (C, H) or (C, K, h, w)
        The prototypes :math:`P_l`.
    targets : array, shape (B, C)
        From :func:`tp_prototype_targets`.
    """
    z = _similarities(eps, protos)
    y = targets if z.ndim == 2 else targets[:, :, None]
    if is_torch(z):
        return -(y * z.log_softmax(dim=1)).sum(1).mean()
    import numpy as np

    zmax = z.max(1, keepdims=True)
    logp = z - zmax - np.log(np.exp(z - zmax).sum(1, keepdims=True))
    return -(y * logp).sum(1).mean()


def tp_prototype_signal(eps: Array, protos: Array, targets: Array) -> Array:
    r"""Closed-form :math:`∂E_l/∂ε_l` of :func:`tp_prototype_loss`, per sample:

    .. math:: m_b = \frac{1}{B N_{loc}} P_l^T (\mathrm{softmax}(z_b) - y_b)

    (N_loc = 1 for dense layers). Same shape as ``eps``.
    """
    z = _similarities(eps, protos)
    b = eps.shape[0]
    if z.ndim == 2:
        err = (softmax(z) - targets) / b
        return err @ protos
    n_loc = z.shape[2]
    if is_torch(z):
        import torch

        err = (z.softmax(dim=1) - targets[:, :, None]) / (b * n_loc)
        m = torch.einsum("bcl,ckl->bkl", err, protos.reshape(protos.shape[0],
                                                               protos.shape[1], -1))
        return m.reshape(eps.shape)
    import numpy as np

    zmax = z.max(1, keepdims=True)
    p = np.exp(z - zmax)
    p = p / p.sum(1, keepdims=True)
    err = (p - targets[:, :, None]) / (b * n_loc)
    m = np.einsum("bcl,ckl->bkl", err, protos.reshape(protos.shape[0], protos.shape[1], -1))
    return m.reshape(eps.shape)
