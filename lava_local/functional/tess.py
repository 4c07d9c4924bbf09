r"""TESS: the layer-local learning signal ("neural activity synchronisation").

Apolinario & Roy, "TESS: A Scalable Temporally and Spatially Local Learning Rule for
Spiking Neural Networks" (arXiv 2502.01837). Every layer l projects its own output
spikes :math:`o^l[t]` onto C class directions with a FIXED binary matrix :math:`B^l`
(C × n, never trained) and compares them with the label:

.. math::

    m^l[t] = B^{l\,T} \left( f(B^l o^l[t]) - y^* \right)

with f = softmax (classification, cross-entropy) or identity (regression; also the
on-chip variant). :math:`m^l` takes the place of S-TLLR's δ in the S-TLLR update
(:func:`lava_local.functional.stllr.stllr_update`); no signal crosses layers.
"""

from __future__ import annotations

import numpy as np

from ._backend import Array, softmax

TESS_F = ("softmax", "identity")


def square_wave_projection(n_classes: int, n: int, f_lo: float = 50.0, f_hi: float = 512.0,
                           scale: bool = True) -> np.ndarray:
    r"""TESS's fixed binary projection :math:`B[k, j] = \mathrm{sign}(\sin(f_k j))`.

    Row k is a square wave over the neuron index j with spatial frequency
    :math:`f_k` = linspace(f_lo, f_hi, C)[k] (the public code's range), so rows are
    nearly orthogonal. ``sign(0)`` (j = 0) is taken as +1. Scaled by 1/n when ``scale``.

    Returns
    -------
    numpy.ndarray, shape (C, n)
    """
    f = np.linspace(f_lo, f_hi, n_classes)[:, None]
    j = np.arange(n)[None, :]
    b = np.where(np.sin(f * j) >= 0, 1.0, -1.0)
    return b / n if scale else b


def tess_signal(o: Array, proj: Array, onehot: Array, f: str = "softmax") -> Array:
    r"""Local learning signal :math:`m = B^T (f(B o) - y^*)` for a batch.

    Parameters
    ----------
    o : array, shape (..., n)
        The layer's output spikes at step t.
    proj : array, shape (C, n)
        :math:`B^l`.
    onehot : array, shape (..., C)
        :math:`y^*`.
    f : {"softmax", "identity"}

    Returns
    -------
    array, shape (..., n)
    """
    z = o @ proj.T
    if f == "softmax":
        z = softmax(z)
    elif f != "identity":
        raise ValueError(f"unknown TESS output function {f!r}; use one of {TESS_F}")
    return (z - onehot) @ proj
