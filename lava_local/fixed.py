"""Loihi 2 fixed-point ranges and the quantisation scheme, in one place.

Scheme (used by every ``fixed_pt`` ProcessModel and by the exporter):

- Weights of layer l: 8-bit signed mantissas ``w_int = round(w · 2^p_l)`` with a shared
  per-layer precision p_l chosen so that max |w_int| <= 254; mixed-sign weights are even
  (Lava's bit-accurate Dense drops the lowest bit in MIXED sign mode, so the scheme
  rounds to even numbers itself and nothing is lost at start). The Dense ``weight_exp``
  of layer l is ``P - p_l`` so every layer delivers its input in units of 2^-P.
- Membrane potentials and readout potentials: 24-bit signed, real value
  ``u = u_int · 2^-(6+P)`` (Loihi left-shifts synaptic input by 6 bits for MSB
  alignment). Thresholds are quantised the same way.
- Decays: 12-bit, ``x[t] = x[t-1] · (4096 - d) >> 12`` with ``d = round((1 - γ) · 4096)``,
  the shift rounding toward zero as Lava's LIF does.
- Learning traces: 7-bit unsigned (the learning engine's x1, y1..y3); graded third
  factors and error spikes: 8-bit signed.
- Graded inputs (real-valued features in [0, 1], e.g. Speech Commands log-mels): 8-bit
  unsigned payloads ``x_int = min(round(x · 2^8), 255)``; the first Dense has
  ``num_message_bits = 8`` and ``weight_exp = P - p_0 - 8``, so its output stays in
  units of 2^-P (the right shift truncates).
"""

from __future__ import annotations

import math

import numpy as np

W_WEIGHT_MAX = 254          # largest even 8-bit mixed-sign mantissa
UV_BITS = 24
UV_MAX = 2 ** (UV_BITS - 1) - 1
ACT_SHIFT = 6               # synaptic input MSB alignment
DECAY_SHIFT = 12
DECAY_UNITY = 2 ** DECAY_SHIFT
TRACE_MAX = 2 ** 7 - 1      # 7-bit traces
GRADED_MAX = 2 ** 7 - 1     # 8-bit signed graded payloads
IN_BITS = 8                 # graded input payloads: 8-bit unsigned fractions of 1


def weight_precision(w: np.ndarray) -> int:
    """Largest p with max |w| · 2^p <= 254 (the shared exponent of a weight matrix)."""
    m = float(np.max(np.abs(w)))
    if m == 0:
        return 7
    return int(math.floor(math.log2(W_WEIGHT_MAX / m)))


def quantize_weights(w: np.ndarray, p: int) -> np.ndarray:
    """Even 8-bit mantissas ``2 · round(w · 2^p / 2)`` clipped to [-254, 254] (int32)."""
    q = 2 * np.rint(np.asarray(w, dtype=np.float64) * 2.0 ** p / 2.0)
    return np.clip(q, -W_WEIGHT_MAX, W_WEIGHT_MAX).astype(np.int32)


def quantize_input(x: np.ndarray) -> np.ndarray:
    """Graded input in [0, 1] -> 8-bit payloads ``min(round(x · 2^8), 255)`` (int32)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("graded inputs must lie in [0, 1] for the fixed-point graph")
    return np.minimum(np.rint(x * 2.0 ** IN_BITS), 2 ** IN_BITS - 1).astype(np.int32)


def decay_to_int(gamma: float) -> int:
    """12-bit decay constant d of a leak γ: ``x · (4096 - d) >> 12`` ≈ γ x."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"a leak must lie in [0, 1], got {gamma}")
    return int(round((1.0 - gamma) * DECAY_UNITY))


def decay(x: np.ndarray, d: int) -> np.ndarray:
    """Apply a 12-bit decay with Lava's sign-magnitude right shift (rounds toward 0)."""
    prod = np.asarray(x, dtype=np.int64) * (DECAY_UNITY - d)
    return (np.sign(prod) * np.right_shift(np.abs(prod), DECAY_SHIFT)).astype(np.int64)


def to_membrane(value: float | np.ndarray, precision: int) -> np.ndarray:
    """Real membrane value -> integer units of 2^-(6+P)."""
    return np.rint(np.asarray(value, dtype=np.float64) * 2.0 ** (ACT_SHIFT + precision)).astype(
        np.int64)


def from_membrane(value: np.ndarray, precision: int) -> np.ndarray:
    """Integer membrane units -> real value."""
    return np.asarray(value, dtype=np.float64) * 2.0 ** -(ACT_SHIFT + precision)


def wrap24(x: np.ndarray) -> np.ndarray:
    """Saturate to the 24-bit signed range."""
    return np.clip(x, -UV_MAX, UV_MAX)


def literal(value: float) -> tuple[int, int]:
    """Nearest m·2^e with m in [-8, 7], e in [-7, 8] (a product-series scale literal)."""
    if value == 0:
        return 0, 0
    best = None
    for e in range(-7, 9):
        m = int(np.clip(round(value / 2.0 ** e), -8, 7))
        if m == 0:
            continue
        err = abs(m * 2.0 ** e - value)
        if best is None or err < best[0] - 1e-15:
            best = (err, m, e)
    if best is None:
        raise ValueError(f"{value} cannot be written as m·2^e with m in [-8, 7], e in [-7, 8]")
    return best[1], best[2]


def mant_shift(scale: float) -> tuple[int, int]:
    """8-bit mantissa M and shift k with M · 2^-k ≈ scale (M in [128, 255] when possible):
    how an integer unit multiplies by a real constant."""
    if scale <= 0:
        return 0, 0
    k = int(np.floor(7 - np.log2(scale)))
    k = max(k, 0)
    m = int(round(scale * 2 ** k))
    while m > 255:
        k -= 1
        m = int(round(scale * 2 ** k))
    return m, k


def mul_round(x: np.ndarray, m: int, k: int) -> np.ndarray:
    """``x · m · 2^-k`` in integers, rounded half away from zero."""
    prod = np.asarray(x, dtype=np.int64) * m
    half = (1 << (k - 1)) if k > 0 else 0
    return np.sign(prod) * ((np.abs(prod) + half) >> k)


def lif_step_int(u: np.ndarray, y: np.ndarray, a_in: np.ndarray, d_gamma: int,
                 vth: int) -> tuple[np.ndarray, np.ndarray]:
    """One step of the fixed-point LIF (soft reset): ``u = decay(u - v_th y) +
    (a_in << 6)`` (24-bit), ``y = u > v_th``; ``a_in`` in units 2^-P, ``u`` and ``vth`` in
    membrane units (:func:`to_membrane`)."""
    u = decay(np.asarray(u, dtype=np.int64) - vth * np.asarray(y, dtype=np.int64), d_gamma)
    u = wrap24(u + (np.asarray(a_in, dtype=np.int64) << ACT_SHIFT))
    return u, (u > vth).astype(np.int64)


#: Q-bits of the probabilities :func:`int_softmax` returns (1.0 = 2^7).
PROB_BITS = 7
#: 2^(-r/256) for r = 0..255 in Q16: the exponential table of :func:`int_softmax`.
EXP2_LUT = np.rint(2.0 ** 16 * 2.0 ** (-np.arange(256) / 256.0)).astype(np.int64)


def int_softmax(z: np.ndarray, unit: float) -> np.ndarray:
    """Softmax over the last axis in integers, as an embedded core without a floating-
    point unit computes it: probabilities in Q7 (1.0 = 128), i.e. ``round(128 p)``
    within one unit.

    ``z`` are integers of real value ``z · unit``. With x = (z - max z) in base-2
    exponent units of 2^-8 (one 8-bit multiply-shift by unit · log2(e) · 2^8),
    ``2^x = EXP2_LUT[-x mod 256] >> (-x div 256)`` (a 256-entry Q16 table), and
    ``p = (e · 2^7 + S/2) div S`` with S = Σ e (integer division, rounded).
    """
    z = np.asarray(z, dtype=np.int64)
    m, k = mant_shift(unit * math.log2(math.e) * 256.0)
    x = mul_round(z.max(axis=-1, keepdims=True) - z, m, k)        # >= 0, units 2^-8
    e = EXP2_LUT[x & 255] >> np.minimum(x >> 8, 62)
    s = e.sum(axis=-1, keepdims=True)
    return ((e << PROB_BITS) + (s >> 1)) // s
