r"""Secondary activations Ψ(u) of S-TLLR, also used as surrogate derivatives ∂y/∂u.

Every function takes the membrane potential ``u`` and the threshold ``v_th`` and is
evaluated at :math:`x = u - v_{th}`. The S-TLLR paper notes that :math:`\int Ψ \le 1`
trains better.
"""

from __future__ import annotations

from collections.abc import Callable

from ._backend import Array, absolute, clamp_min, exp


def triangle(u: Array, v_th: float, scale: float = 0.3) -> Array:
    r"""Triangle: :math:`Ψ(u) = 0.3 \max(1 - |u - v_{th}|, 0)` (DVS Gesture, conv default)."""
    return scale * clamp_min(1.0 - absolute(u - v_th), 0.0)


def fast_sigmoid_sq(u: Array, v_th: float, slope: float = 100.0) -> Array:
    r"""Derivative of the fast sigmoid: :math:`Ψ(u) = 1 / (100 |u - v_{th}| + 1)^2` (SHD, dense)."""
    return 1.0 / (slope * absolute(u - v_th) + 1.0) ** 2


def sigmoid_prime(u: Array, v_th: float, slope: float = 1.0) -> Array:
    r"""Scaled sigmoid derivative: :math:`Ψ(u) = 4 σ(k x)(1 - σ(k x))`, :math:`x = u - v_{th}`.

    The paper's form (DVS CIFAR10) is ``slope`` k = 1; the public code uses σ(4x), i.e.
    ``slope=4``. Peak value 1 at threshold in both.
    """
    e = exp(-absolute(slope * (u - v_th)))  # σ(z)(1-σ(z)) = e^{-|z|} / (1 + e^{-|z|})^2
    return 4.0 * e / (1.0 + e) ** 2


def sigmoid_prime4(u: Array, v_th: float) -> Array:
    r"""The public S-TLLR code's sigmoid derivative (DVS CIFAR10):
    :math:`Ψ(u) = 4 σ(4x)(1 - σ(4x))`, :math:`x = u - v_{th}` (:func:`sigmoid_prime`
    with slope 4)."""
    return sigmoid_prime(u, v_th, slope=4.0)


def arctan(u: Array, v_th: float, slope: float = 10.0) -> Array:
    r"""Arctan-like: :math:`Ψ(u) = 1 / (1 + (10 (u - v_{th}))^2)` (optical flow)."""
    return 1.0 / (1.0 + (slope * (u - v_th)) ** 2)


def arctan_pi(u: Array, v_th: float) -> Array:
    r"""Traces Propagation's arctan-type surrogate: :math:`Ψ(u) = 1 / (1 + (π (u - v_{th}))^2)`."""
    return arctan(u, v_th, slope=3.141592653589793)


SURROGATES: dict[str, Callable[..., Array]] = {
    "triangle": triangle,
    "fast_sigmoid_sq": fast_sigmoid_sq,
    "sigmoid_prime": sigmoid_prime,
    "sigmoid_prime4": sigmoid_prime4,
    "arctan": arctan,
    "arctan_pi": arctan_pi,
}


def get_surrogate(name: str) -> Callable[..., Array]:
    """Return the Ψ function called ``name``; unknown names raise a ``ValueError`` listing
    the valid ones."""
    try:
        return SURROGATES[name]
    except KeyError:
        raise ValueError(
            f"unknown surrogate {name!r}; choose one of {', '.join(sorted(SURROGATES))}"
        ) from None
