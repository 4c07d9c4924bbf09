"""Compiled per-synapse kernels for the learning engine's appliers (numba).

Lava's appliers evaluate a rule's product series with numpy, one full-size
N_post x N_pre array per factor, product and sum: a dozen passes over memory for
S-TLLR's six products. Here the same series becomes one loop over the synapses,
generated from the series and compiled with numba, that does each synapse's arithmetic
in the engine's order:

- float (:func:`float_series_kernel`), as ``LearningRuleApplierFloat`` evaluates
  ``w + (s1 * dep1 * f11 * f12 ... + s2 * dep2 * f21 ...)`` left to right: the same
  IEEE double operations on the same operands in the same order (numba compiles without
  fast-math, so nothing is reassociated or fused), hence the same floats;
- fixed (:func:`fixed_series_kernel`), as ``LearningRuleApplierBitApprox`` does per
  product: the int32 product of the dependency, the clipped factors and the mantissa
  (computed in int64 and wrapped to int32: products wrap modulo 2^32 either way), the
  right shift to the accumulator's width, the left shift by the scale exponent (wrapped
  to int32), the clip to the accumulator's range, and the accumulation, clipped again.

A kernel runs over a block of synapses (post neurons ``rows`` x pre neurons ``cols``,
or every pre neuron in a vectorised inner loop) in place, and can finish the engine's
update too: the float engine's saturation (a clamp), or the bit-approximate engine's
saturations, stochastic rounding and shift back (``finish``). Each operand is a scalar,
a per-post column (index ``i``), a per-pre row (index ``j``), a per-synapse matrix
(``i, j``) or a synaptic variable as a factor (:class:`VarFactor`, read from the
variable itself): its *kind*. The other factors' sub-expressions (constants, signs,
clipping) are evaluated beforehand with numpy, as the appliers do (cheap for traces and
dependencies). A kernel is compiled once per series and kinds and reused (in memory and
on disk, :func:`kernel_cache_dir`); ``LAVA_LOCAL_KERNELS`` (:func:`kernel_setting`)
says where kernels run.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import numpy as np

# absolute: Lava's compiler executes every module of this folder under a bare name
from lava_local._jit import compile_kernel as _compile
from lava_local._jit import (
    kernel_cache_dir,  # noqa: F401  (part of this interface)
    numba_available,
)


def kernel_setting() -> str:
    """``LAVA_LOCAL_KERNELS``: ``0`` never use kernels, ``all`` use them on every matrix
    they can run on (tests), anything else (the default) on matrices of at least
    :data:`MIN_SYNAPSES` synapses."""
    value = os.environ.get("LAVA_LOCAL_KERNELS", "auto")
    return value if value in ("0", "all") else "auto"


def kernels_enabled() -> bool:
    """Whether compiled kernels may be used: numba imports and ``LAVA_LOCAL_KERNELS``
    is not ``0``."""
    return kernel_setting() != "0" and numba_available()


#: the fewest synapses a kernel runs on by default (both readouts of the benchmark nets,
#: 10x128 and 10x200, and every hidden layer): below it numpy's passes cost about as
#: much as a kernel call, and a process that uses none never imports numba. (At 16,384,
#: the default before, the demo net's 64x128 layer and its readout ran numpy's passes:
#: its fixed TP graph learned ~30% slower, ``benchmarks/README.md``.)
MIN_SYNAPSES = 1024


def fits_kernel(shape: tuple[int, ...]) -> bool:
    """Whether a matrix of ``shape`` is given to kernels (neither side 1; at least
    :data:`MIN_SYNAPSES` synapses unless ``LAVA_LOCAL_KERNELS=all``) and they are
    enabled."""
    return (len(shape) == 2 and min(shape) >= 2
            and (kernel_setting() == "all" or shape[0] * shape[1] >= MIN_SYNAPSES)
            and kernels_enabled())


def use_kernel(init_accumulator, kinds: str) -> bool:
    """Whether a kernel applies a series to ``init_accumulator``: a 2-D array that
    :func:`fits_kernel`, of a dtype kind in ``kinds`` (``"f"`` float, ``"i"``
    integer)."""
    return (isinstance(init_accumulator, np.ndarray)
            and init_accumulator.dtype.kind in kinds and fits_kernel(init_accumulator.shape))


class VarFactor(NamedTuple):
    """A synaptic variable (weights, tags) as a factor, evaluated by the kernel synapse
    by synapse from the variable itself (no full-size temporaries): ``value + const``
    (when ``has_const``), then its sign if ``sgn``, else (bit-approximate) clipped to
    ``[lo, hi]`` (None for float)."""

    value: np.ndarray
    has_const: bool
    const: float
    sgn: bool
    lo: int | None = None
    hi: int | None = None

    def kind(self) -> tuple:
        return ("v", self.has_const, self.const, self.sgn, self.lo, self.hi)


def kind_of(value, shape: tuple[int, int]) -> str | tuple:
    """The kind of an applier operand for a variable of ``shape`` (N_post, N_pre), both
    at least 2: ``"s"`` a scalar, ``"c"`` one value per post neuron (shape (N_post, 1)),
    ``"r"`` one per pre neuron ((1, N_pre) or (N_pre,)) or ``"f"`` one per synapse."""
    if isinstance(value, VarFactor):
        if np.shape(value.value) != tuple(shape):
            raise ValueError(f"a synaptic variable of shape {np.shape(value.value)} is not "
                             f"{shape}")
        return value.kind()
    s = np.shape(value)
    if s in ((), (1,), (1, 1)):
        return "s"
    if s == (shape[0], 1):
        return "c"
    if s in ((1, shape[1]), (shape[1],)):
        return "r"
    if s == tuple(shape):
        return "f"
    raise ValueError(f"an applier operand of shape {s} does not broadcast to {shape}")


def as_operand(value, kind: str, dtype):
    """The operand in the form its kind's index expects: a scalar, a 1-D array, or a
    C-ordered 2-D array, of ``dtype``."""
    if isinstance(value, VarFactor):     # as it is (compiled for its own dtype)
        return np.ascontiguousarray(value.value)
    if kind == "s":
        return dtype(np.asarray(value).reshape(-1)[0])
    if kind == "f":
        return np.ascontiguousarray(value, dtype=dtype)
    return np.ascontiguousarray(np.asarray(value, dtype=dtype).reshape(-1))


def _index(name: str, kind: str | tuple, gathered: bool = False) -> str:
    """The operand's value at synapse (i, j) in a kernel's source; ``gathered``: in the
    inner loop of a block's columns, where per-pre and per-synapse operands are read
    from their gathered copies at ``jj`` (:func:`_header`)."""
    if isinstance(kind, tuple):           # a VarFactor
        _, has_const, const, sgn, lo, hi = kind
        v = f"{name}_g[jj]" if gathered else f"{name}[i, j]"
        if has_const:
            v = f"({v} + {repr(const) if lo is None else int(const)})"
        if sgn:
            return f"np.sign({v})"
        return v if lo is None else f"min(max({v}, {int(lo)}), {int(hi)})"
    if gathered and kind in ("r", "f"):
        return f"{name}_g[jj]"
    return {"s": name, "c": f"{name}[i]", "r": f"{name}[j]", "f": f"{name}[i, j]"}[kind]


def _acc(all_cols: bool) -> str:
    """The variable's value at the synapse in the kernel's inner loop."""
    return "acc[i, j]" if all_cols else "acc_g[jj]"


def _header(names: list[str], kinds: list, all_cols: bool, count: bool = False) -> list[str]:
    """The kernel's signature and loops: over the post neurons ``rows`` and the pre
    neurons ``cols``, ``rand`` the step's random number. A row's new values go to a
    buffer first (``out`` may be ``acc``: written straight back, the loop would not
    vectorise). With ``count`` the kernel also takes the variable's non-zero counts per
    row and per column (:func:`_footer`).

    ``all_cols``: every pre neuron, in order (``cols`` unused), a contiguous inner loop
    that compiles to vector instructions. Otherwise the block's columns ``cols``: the
    per-pre operands are gathered once per call, and for each row the variable's and
    the per-synapse operands' values at ``cols`` into contiguous buffers, so that the
    arithmetic runs as the same contiguous loop (an indexed loop does not vectorise:
    ~3x slower per synapse); the row is read whole before it is written, as before."""
    counts = ", row_nz, col_nz" if count else ""
    head = [f"def kernel(out, acc, rows, cols, rand{counts}"
            f"{''.join(', ' + n for n in names)}):"]
    if all_cols:
        return head + ["    m = out.shape[1]",
                       "    buf = np.empty(m, dtype=out.dtype)",
                       "    for ii in range(rows.size):",
                       "        i = rows[ii]",
                       *(["        row_d = 0"] if count else []),
                       "        for jj in range(m):",
                       "            j = jj"]
    per_pre = [n for n, k in zip(names, kinds) if k == "r"]
    per_syn = [n for n, k in zip(names, kinds) if k == "f" or isinstance(k, tuple)]
    lines = head + ["    k = cols.size",
                    "    buf = np.empty(k, dtype=out.dtype)",
                    "    acc_g = np.empty(k, dtype=acc.dtype)"]
    lines += [f"    {n}_g = np.empty(k, dtype={n}.dtype)" for n in per_pre + per_syn]
    if count:
        lines.append("    cnt = np.zeros(k, dtype=np.int64)")
    if per_pre:
        lines += ["    for jj in range(k):", "        j = cols[jj]",
                  *(f"        {n}_g[jj] = {n}[j]" for n in per_pre)]
    return lines + ["    for ii in range(rows.size):",
                    "        i = rows[ii]",
                    "        for jj in range(k):",
                    "            j = cols[jj]",
                    "            acc_g[jj] = acc[i, j]",
                    *(f"            {n}_g[jj] = {n}[i, j]" for n in per_syn),
                    *(["        row_d = 0"] if count else []),
                    "        for jj in range(k):"]


def _footer(all_cols: bool, count: bool = False) -> list[str]:
    """The row's values written to ``out``; with ``count``, each change between zero
    and non-zero (``acc``'s value before, the new one after) added to the counts
    ``row_nz[i]`` and ``col_nz[j]``, so counts that held ``acc``'s non-zeros hold
    ``out``'s (NaN counts as non-zero, -0.0 as zero, as ``!= 0`` says). Over a block's
    columns the column counts' changes are summed per call and added at its end."""
    j = "jj" if all_cols else "cols[jj]"
    loop = [f"        for jj in range({'m' if all_cols else 'k'}):",
            f"            out[i, {j}] = buf[jj]"]
    if not count:
        return ["            buf[jj] = r", *loop]
    return ["            buf[jj] = r",
            f"            d = np.int64(r != 0) - np.int64({_acc(all_cols)} != 0)",
            "            row_d += d",
            "            col_nz[j] += d" if all_cols else "            cnt[jj] += d",
            "        row_nz[i] += row_d", *loop,
            *([] if all_cols else ["    for jj in range(k):",
                                   "        col_nz[cols[jj]] += cnt[jj]"])]


def float_series_source(terms: tuple, all_cols: bool = True,
                        clamp: tuple | None = None, count: bool = False) -> str:
    """The kernel's source for a float series: ``terms`` holds, per product, its scale
    (a float) and the kinds of its dependency and factors, in the series' order.

    ``out[i, j] = acc[i, j] + (((s1 * d1) * f11) * f12 + ((s2 * d2) * f21) ...)`` for
    ``i`` in ``rows`` and ``j`` in ``cols`` (:func:`_header`), then with ``clamp =
    (lo, hi)`` raised to ``lo`` and lowered to ``hi`` (a bound None: none; NaN stays
    NaN, as with ``np.maximum`` / ``np.minimum``); ``count``: the non-zero counts kept
    (:func:`_footer`).
    """
    names, all_kinds, lines = [], [], []
    for p, (scale, kinds) in enumerate(terms):
        expr = repr(float(scale))
        for k, kind in enumerate(kinds):
            name = f"a{p}_{k}"
            names.append(name)
            all_kinds.append(kind)
            expr = f"({expr} * {_index(name, kind, not all_cols)})"
        lines.append(f"            {'t' if p == 0 else 'v'} = {expr}")
        if p:
            lines.append("            t = t + v")
    body = lines + [f"            r = {_acc(all_cols)} + t"] if terms else \
        [f"            r = {_acc(all_cols)}"]
    lo, hi = clamp if clamp is not None else (None, None)
    if lo is not None:
        body += [f"            if r < {float(lo)!r}:", f"                r = {float(lo)!r}"]
    if hi is not None:
        body += [f"            if r > {float(hi)!r}:", f"                r = {float(hi)!r}"]
    return "\n".join(_header(names, all_kinds, all_cols, count) + body
                     + _footer(all_cols, count)) + "\n"


def fixed_series_source(terms: tuple, lo: int, hi: int, finish: tuple | None = None,
                        all_cols: bool = True, count: bool = False) -> str:
    """The kernel's source for a bit-approximate series: ``terms`` holds, per product,
    its mantissa, the kinds of its dependency and (clipped, integer) factors, its right
    shift, its left shift (the scale exponent) and a bound on the bits of its magnitude;
    ``lo, hi`` the accumulator's range.

    Per product ``c = wrap32(wrap32(d * f1 * f2 ... * mant) >> right << left)``,
    ``c = clip(c, lo, hi)``, ``r = clip(r + c, lo, hi)`` from ``r = acc[i, j]``, for
    ``i`` in ``rows`` and ``j`` in ``cols`` (:func:`_header`).

    With ``finish = (shift, k, a_lo, a_hi, s_lo, s_hi)`` the kernel is the engine's
    whole update of a synaptic variable ``acc`` instead: ``r`` starts from
    ``acc[i, j] << shift`` (the accumulator's units); after the products it is
    saturated to ``[a_lo, a_hi]`` (the accumulator's sign rule), rounded stochastically
    to a multiple of ``2^k`` as ``stochastic_round`` does (``floor(r / 2^k)`` plus 1
    where ``rand`` is below the fraction ``(r mod 2^k) / 2^k``: the same comparison of
    the same doubles), shifted back by ``shift`` and saturated to ``[s_lo, s_hi]`` (the
    variable's range).
    """
    names, all_kinds = [], []
    lines = [f"            r = {_acc(all_cols)} << {int(finish[0])}" if finish else
             f"            r = {_acc(all_cols)}"]
    wrap = "(((({v}) + 2147483648) & 4294967295) - 2147483648)"
    for p, (mant, kinds, right, left, bits) in enumerate(terms):
        expr = []
        for k, kind in enumerate(kinds):
            name = f"a{p}_{k}"
            names.append(name)
            all_kinds.append(kind)
            expr.append(_index(name, kind, not all_cols))
        prod = " * ".join(expr + [str(int(mant))])
        shifted = f"(c >> {int(right)}) << {int(left)}"
        # where the bound on the magnitude fits in int32, nothing wraps (and the loop
        # stays simple enough to vectorise)
        fits = bits - right + left <= 30
        lines += [f"            c = {prod if bits <= 30 else wrap.format(v=prod)}",
                  f"            c = {shifted if fits else wrap.format(v=shifted)}",
                  f"            c = min(max(c, {lo}), {hi})",
                  f"            r = min(max(r + c, {lo}), {hi})"]
    if finish:
        shift, k, a_lo, a_hi, s_lo, s_hi = (int(v) for v in finish)
        lines += [f"            r = min(max(r, {a_lo}), {a_hi})",
                  f"            q = (r >> {k}) + (1 if rand < (r & {2 ** k - 1}) * "
                  f"{repr(2.0 ** -k)} else 0)",
                  f"            r = (q << {k}) >> {shift}",
                  f"            r = min(max(r, {s_lo}), {s_hi})"]
    return "\n".join(_header(names, all_kinds, all_cols, count) + lines
                     + _footer(all_cols, count)) + "\n"


@functools.cache
def float_series_kernel(terms: tuple, all_cols: bool = True, clamp: tuple | None = None,
                        count: bool = False):
    """The compiled float kernel of :func:`float_series_source`."""
    return _compile(float_series_source(terms, all_cols, clamp, count))


@functools.cache
def fixed_series_kernel(terms: tuple, lo: int, hi: int, finish: tuple | None = None,
                        all_cols: bool = True, count: bool = False):
    """The compiled bit-approximate kernel of :func:`fixed_series_source`."""
    return _compile(fixed_series_source(terms, lo, hi, finish, all_cols, count))


_NONZERO_SOURCE = """def kernel(v, const, rows, cols):
    n, m = v.shape
    for i in range(n):
        hit = False
        for j in range(m):
            x = v[i, j] + const != 0
            cols[j] |= x
            hit |= x
        rows[i] |= hit
"""


_NONZERO_COUNTS_SOURCE = """def kernel(v, rows, cols):
    n, m = v.shape
    for i in range(n):
        c = 0
        for j in range(m):
            x = 1 if v[i, j] != 0 else 0
            cols[j] += x
            c += x
        rows[i] = c
"""


def nonzero_counts(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many non-zeros each row and each column of ``value`` (a C-ordered matrix)
    holds (int64), in one compiled pass: the counts a series kernel with ``count``
    keeps up to date as it changes the matrix (:func:`fixed_series_source`)."""
    rows = np.zeros(value.shape[0], dtype=np.int64)
    cols = np.zeros(value.shape[1], dtype=np.int64)
    _compile(_NONZERO_COUNTS_SOURCE)(value, rows, cols)
    return rows, cols


def nonzero_rows_cols(value: np.ndarray, const) -> tuple[np.ndarray, np.ndarray]:
    """Which rows and which columns of ``value + const`` (a C-ordered matrix) hold a
    non-zero, in one compiled pass (no full-size temporaries)."""
    rows = np.zeros(value.shape[0], dtype=np.bool_)
    cols = np.zeros(value.shape[1], dtype=np.bool_)
    _compile(_NONZERO_SOURCE)(value, const, rows, cols)
    return rows, cols


_FIXED_TRACE_STEP_SOURCE = """def kernel(cur, decays, r_decay, spiked, imp_int, imp_frac,
           r_impulse, top, hist):
    k, n = cur.shape
    for a in range(k):
        dec = decays[a]
        for j in range(n):
            c = cur[a, j]
            hist[0, a, j] = c
            v = 0
            if dec == dec:
                d = dec * c
                m = np.fmod(d, 1.0)
                if m < 0.0:
                    m += 1.0
                v = int(np.floor(d)) + (1 if r_decay < m else 0)
            if spiked[j]:
                v = v + imp_int[a] + (1 if r_impulse < imp_frac[a] else 0)
                v = min(max(v, 0), top)
            hist[1, a, j] = v
"""


def fixed_trace_step(cur: np.ndarray, decays: np.ndarray, r_decay: float,
                     spiked: np.ndarray, imp_int: np.ndarray, imp_frac: np.ndarray,
                     r_impulse: int, top: int) -> np.ndarray:
    """One step of the bit-approximate engine's traces, in one compiled pass.

    ``cur`` holds k traces over n neurons (integers). Row a decays by ``decays[a]``
    with stochastic rounding, ``x' = floor(d x) + (r_decay < (d x) % 1)`` (NaN: a trace
    with τ = 0, which is 0 after the step); where ``spiked``, it then takes its impulse,
    ``x'' = clip(x' + imp_int[a] + (r_impulse < imp_frac[a]), 0, top)``: the operations
    of Lava's ``_decay_trace``, ``stochastic_round`` and ``_add_impulse`` on the same
    doubles and integers (``% 1`` as numpy's remainder: ``fmod``, plus 1 where
    negative). Returns the (2, k, n) int64 history: the traces as they were, and after
    the step."""
    hist = np.empty((2,) + cur.shape, dtype=np.int64)
    _compile(_FIXED_TRACE_STEP_SOURCE)(cur, decays, float(r_decay), spiked, imp_int,
                                       imp_frac, int(r_impulse), int(top), hist)
    return hist


_FLOAT_TRACE_STEP_SOURCE = """def kernel(cur, decays, spiked, impulses, hist):
    k, n = cur.shape
    for a in range(k):
        dec = decays[a]
        imp = impulses[a]
        for j in range(n):
            c = cur[a, j]
            hist[0, a, j] = c
            v = dec * c
            if spiked[j]:
                v = v + imp
            hist[1, a, j] = v
"""


def float_trace_step(cur: np.ndarray, decays: np.ndarray, spiked: np.ndarray,
                     impulses: np.ndarray) -> np.ndarray:
    """One step of the float engine's traces, in one compiled pass: row a of ``cur``
    times ``decays[a]`` (NaN for a trace with τ = 0, which stays NaN, as Lava's), plus
    ``impulses[a]`` where ``spiked`` — the same two IEEE operations per value as the
    engine's. Returns the (2, k, n) float64 history: the traces as they were, and after
    the step."""
    hist = np.empty((2,) + cur.shape)
    _compile(_FLOAT_TRACE_STEP_SOURCE)(cur, decays, spiked, impulses, hist)
    return hist
