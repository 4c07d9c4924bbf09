import numpy as np
import pytest
import torch

from lava_local.functional import SURROGATES, get_surrogate
from lava_local.functional.surrogates import arctan, fast_sigmoid_sq, sigmoid_prime, triangle


def test_values_by_hand():
    v = 0.8
    # triangle: 0.3*max(1-|u-v|, 0)
    np.testing.assert_allclose(triangle(np.array([0.8, 1.3, 2.0, -0.5]), v),
                               [0.3, 0.15, 0.0, 0.0])
    # fast sigmoid^2: 1/(100|u-v|+1)^2 ; |x| = 0.01 -> 1/4
    np.testing.assert_allclose(fast_sigmoid_sq(np.array([0.8, 0.81, 0.79]), v), [1, .25, .25])
    # sigmoid': 4 σ(x)(1-σ(x)) = 1 at x=0; at x = ln 3: σ = 3/4 -> 4*3/16 = 0.75
    np.testing.assert_allclose(sigmoid_prime(np.array([0.8, 0.8 + np.log(3)]), v), [1, .75])
    # slope 4 (public code): x = ln(3)/4 gives the same 0.75
    np.testing.assert_allclose(sigmoid_prime(np.array([0.8 + np.log(3) / 4]), v, slope=4),
                               [0.75])
    # arctan-like: 1/(1+(10x)^2); x = 0.1 -> 1/2
    np.testing.assert_allclose(arctan(np.array([0.8, 0.9, 0.7]), v), [1, .5, .5])


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_numpy_and_torch_agree_and_peak_at_threshold(name):
    f = get_surrogate(name)
    u = np.linspace(-1, 3, 401)
    a = f(u, 0.8)
    b = f(torch.tensor(u), 0.8).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert np.argmax(a) == np.argmin(np.abs(u - 0.8))
    assert np.all(a >= 0)


@pytest.mark.parametrize("name, integral", [
    ("triangle", 0.3),                 # 0.3 * area of a unit triangle
    ("fast_sigmoid_sq", 2 / 100),      # 2 ∫_0^∞ (100x+1)^-2 dx
    ("sigmoid_prime", 4.0),            # 4 [σ]_{-∞}^{∞}
    ("arctan", np.pi / 10),            # ∫ 1/(1+(10x)^2) dx
])
def test_integrals_match_closed_form(name, integral):
    # The paper remarks that ∫Ψ <= 1 trains better; the closed forms pin the scales.
    x = np.linspace(-2000, 2000, 4_000_001)
    got = np.trapz(get_surrogate(name)(x, 0.0), x)
    np.testing.assert_allclose(got, integral, rtol=2e-3)


def test_unknown_surrogate_names_the_choices():
    with pytest.raises(ValueError, match="triangle"):
        get_surrogate("relu")
