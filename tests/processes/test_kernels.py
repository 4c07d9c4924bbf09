"""The compiled kernels give exactly Lava's appliers' and engine's numbers."""

from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
from lava.magma.core.learning.learning_rule_applier import (
    LearningRuleApplierBitApprox,
    LearningRuleApplierFloat,
)
from lava.utils.weightutils import SignMode
from test_learning_dense import (  # noqa: I001 (this folder is on the path)
    GENERAL_SERIES,
    _series,
    general_args,
    random_args,
)

from lava_local.processes import kernels
from lava_local.processes.learning_dense import (
    FastLearningDenseBitApproximate,
    _BroadcastApplierBitApprox,
    _EvalApplierFloat,
    fast_trace_kinds,
)
from lava_local.rules.stllr_loihi import OnChipSTLLR

#: beyond GENERAL_SERIES: int32 products that wrap (three 9-bit synaptic variables, a
#: trace and the mantissa: 39 bits), and a large scale exponent that shifts past 32 bits
WRAPPING_SERIES = ["7*x0*w*t*d*y1", "-5*y0*(w+100)*(t-100)*(d+50)*x2*2^3 + 2^5*u0*w*y2"]


@pytest.fixture
def all_kernels(monkeypatch, tmp_path):
    """Kernels on every matrix they can run on, cached in a fresh folder."""
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "all")
    monkeypatch.setenv("LAVA_LOCAL_CACHE", str(tmp_path))
    assert kernels.kernels_enabled()
    return tmp_path


def test_kernel_setting_and_size_threshold(monkeypatch):
    monkeypatch.delenv("LAVA_LOCAL_KERNELS", raising=False)
    assert kernels.kernel_setting() == "auto"
    big = (256, kernels.MIN_SYNAPSES // 256)
    assert kernels.fits_kernel(big) and kernels.fits_kernel((10, 128))
    assert not kernels.fits_kernel((10, 100)), "below MIN_SYNAPSES: numpy's passes"
    assert not kernels.fits_kernel((1, 10 ** 6)), "a side of 1 never runs a kernel"
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "all")
    assert kernels.fits_kernel((10, 100)) and not kernels.fits_kernel((10, 1))
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "0")
    assert not kernels.fits_kernel(big) and not kernels.kernels_enabled()
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "all")
    monkeypatch.setitem(__import__("sys").modules, "numba", None)    # not installed
    assert not kernels.kernels_enabled() and not kernels.fits_kernel(big)


def test_kind_of():
    shape = (4, 6)
    assert kernels.kind_of(1, shape) == "s"
    assert kernels.kind_of(np.ones((1, 1)), shape) == "s"
    assert kernels.kind_of(np.ones((4, 1)), shape) == "c"
    assert kernels.kind_of(np.ones((1, 6)), shape) == "r"
    assert kernels.kind_of(np.ones(6), shape) == "r"
    assert kernels.kind_of(np.ones((4, 6)), shape) == "f"
    with pytest.raises(ValueError, match="does not broadcast"):
        kernels.kind_of(np.ones((6, 4)), shape)


@pytest.mark.parametrize("dw", [*GENERAL_SERIES, *WRAPPING_SERIES, "S-TLLR"])
def test_kernel_appliers_equal_lavas(all_kernels, dw):
    """The float kernel (same operations, same order) and the bit-approximate one (same
    integers, with int32 wrap-around and saturation) against Lava's own appliers, on
    series with constants, signs, tags, every dependency and constant-only products."""
    rng = np.random.default_rng(4)
    stllr = OnChipSTLLR(eta=2 ** -2, mode="fixed", weight_precision=7).learning_rule(0)
    ps = (stllr.active_product_series["dw"] if dw == "S-TLLR" else _series(dw))
    for _ in range(8):
        args = general_args(rng, 6, 9, integer=False)
        w = rng.normal(size=(6, 9))
        np.testing.assert_array_equal(_EvalApplierFloat(ps).apply(w, **args),
                                      LearningRuleApplierFloat(ps).apply(w, **args))
        args = general_args(rng, 6, 9, integer=True)
        args.update({k: rng.integers(-700, 700, (6, 9)) for k in ("weights", "tag_1",
                                                                  "tag_2")})
        acc = rng.integers(-256, 256, (6, 9)) << 7
        want = LearningRuleApplierBitApprox(ps).apply(acc.copy(), **args)
        got = _BroadcastApplierBitApprox(ps).apply(acc.copy(), **args)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # the STLLR series on full-size y0-traces (t_epoch > 1's shapes)
    args = random_args(rng, 9, 13, integer=True)
    acc = rng.integers(-256, 256, (9, 13)) << 7
    np.testing.assert_array_equal(
        _BroadcastApplierBitApprox(stllr.active_product_series["dw"]).apply(acc, **args),
        LearningRuleApplierBitApprox(stllr.active_product_series["dw"]).apply(acc, **args))


def test_kernels_are_used_and_cached_on_disk(all_kernels, monkeypatch):
    """Under ``all`` the appliers run kernels, whose sources land in the cache folder,
    one file per series; under ``0`` they do not."""
    from lava_local.processes import learning_dense

    calls = []
    for name in ("float_series_kernel", "fixed_series_kernel"):
        real = getattr(learning_dense, name)
        monkeypatch.setattr(learning_dense, name,
                            lambda *a, _real=real, **k: calls.append(a) or _real(*a, **k))
    for cached in (kernels._compile, kernels.float_series_kernel,
                   kernels.fixed_series_kernel):
        cached.cache_clear()
    rng = np.random.default_rng(5)
    ps = _series(GENERAL_SERIES[0])
    _EvalApplierFloat(ps).apply(rng.normal(size=(6, 9)),
                                **general_args(rng, 6, 9, integer=False))
    _BroadcastApplierBitApprox(ps).apply(rng.integers(-9, 9, (6, 9)) << 7,
                                         **general_args(rng, 6, 9, integer=True))
    assert len(calls) == 2
    files = sorted((all_kernels / "kernels").glob("k_*.py"))
    assert len(files) == 2
    assert all("def kernel(out, acc, rows, cols, rand" in f.read_text() for f in files)
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "0")
    _EvalApplierFloat(ps).apply(rng.normal(size=(6, 9)),
                                **general_args(rng, 6, 9, integer=False))
    assert len(calls) == 2


def test_kernel_compiles_in_memory_where_the_cache_cannot_be_written(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("LAVA_LOCAL_CACHE", str(blocked))
    kernels._compile.cache_clear()
    kernels.float_series_kernel.cache_clear()
    k = kernels.float_series_kernel(((0.5, ("s", "r", "c")),))
    out, acc = np.empty((2, 3)), np.ones((2, 3))
    k(out, acc, np.arange(2), np.arange(1), 0.0, 2.0, np.arange(3.0), np.array([1.0, -1.0]))
    np.testing.assert_array_equal(out, acc + 0.5 * 2.0 * np.arange(3.0) * [[1.0], [-1.0]])


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("all_cols", [False, True])
def test_update_on_a_block(all_kernels, in_place, all_cols):
    """``update`` writes the series' values on rows x cols only (in place or into
    another array), from either column loop."""
    rng = np.random.default_rng(6)
    ps = _series(GENERAL_SERIES[1])
    rows, cols = np.array([0, 2, 5]), np.array([1, 4, 8])
    for integer, cls, lava in ((False, _EvalApplierFloat, LearningRuleApplierFloat),
                               (True, _BroadcastApplierBitApprox,
                                LearningRuleApplierBitApprox)):
        args = general_args(rng, 6, 9, integer=integer)
        acc = (rng.integers(-256, 256, (6, 9)) << 7) if integer else rng.normal(size=(6, 9))
        full = lava(ps).apply(acc.copy(), **args)
        want = acc.copy()
        sel = np.ix_(rows, np.arange(9) if all_cols else cols)
        want[sel] = full[sel]
        out = acc.copy() if in_place else np.full_like(acc, 7)
        cls(ps).update(out, out if in_place else acc.copy(), rows,
                       None if all_cols else cols, **args)
        if not in_place:
            keep = np.full((6, 9), 7, dtype=acc.dtype)
            keep[sel] = full[sel]
            want = keep
        np.testing.assert_array_equal(out, want)


def _engine(sign_mode, rand):
    """The bit-approximate model's saturation and rounding methods on a stand-in."""
    cls = FastLearningDenseBitApproximate
    ns = SimpleNamespace(sign_mode=sign_mode,
                         _conn_var_random=SimpleNamespace(random_stochastic_round=rand),
                         _stochastic_round_synaptic_variable=(
                             cls._stochastic_round_synaptic_variable))
    for m in ("_saturate_synaptic_variable_accumulator", "_saturate_synaptic_variable",
              "_kernel_finish"):
        setattr(ns, m, partial(getattr(cls, m), ns))
    return ns


@pytest.mark.parametrize("sign_mode", [SignMode.MIXED, SignMode.EXCITATORY,
                                       SignMode.INHIBITORY])
@pytest.mark.parametrize("name", ["weights", "tag_1", "tag_2"])
def test_kernel_finish_is_the_engines_whole_update(all_kernels, sign_mode, name):
    """The kernel with ``finish`` (read from the model's own saturations) against the
    bit-approximate engine's update (accumulate, saturate, stochastic rounding with
    the step's random number, shift, saturate), for every variable and sign mode,
    with values driven into every saturation."""
    rng = np.random.default_rng(7)
    cls = FastLearningDenseBitApproximate
    ps = _series("2^3*x0*y1*w + 3*y0*(x1 + 2)*y2 - u0*t*2^2 + 2^4*u0*d*y3")
    for rand in (0.0, 0.3, 0.99):
        ns = _engine(sign_mode, rand)
        finish = ns._kernel_finish(name)
        assert finish is not None and len(finish) == 6
        args = general_args(rng, 6, 9, integer=True, p_zero=0.2)
        var = rng.integers(-300, 300, (6, 9))
        want = cls._update_block(ns, LearningRuleApplierBitApprox(ps), var.copy(), args,
                                 name)
        out = var.astype(want.dtype)
        _BroadcastApplierBitApprox(ps).update(out, out, np.arange(6), None, finish=finish,
                                              rand=rand, **args)
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("fixed", [False, True])
def test_fast_trace_kinds_are_the_one_step_engines(fixed):
    """The kinds the kernels are compiled for at start-up are those of the arguments the
    one-step engine's own argument code gives the appliers (so no kernel is compiled
    at the first step), for a series with every dependency, traces, signs and tags."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

    from lava_local.processes.learning_dense import FastLearningDenseFloat

    rule = Loihi3FLearningRule(
        dw="2^-2*x0*sgn(w)*y2 + 3*y0*(x1 + 2)*y2 - u0*t*x2*2^-3 + 3*u0*(d + 1)",
        dt="x0*y1 - u0*t", x1_impulse=16, x1_tau=10, x2_impulse=16, x2_tau=2, t_epoch=1)
    n_post, n_pre = 3, 5
    rng = np.random.default_rng(8)
    ns = SimpleNamespace(_learning_rule=rule, time_step=1, x0=rng.random(n_pre) < 0.5,
                         y0=rng.random(n_post) < 0.5, tx=np.ones(n_pre, dtype=int),
                         ty=np.ones(n_post, dtype=int), weights=np.ones((n_post, n_pre)),
                         tag_1=np.ones((n_post, n_pre)), tag_2=np.ones((n_post, n_pre)))
    ns._extract_applier_evaluated_traces = partial(
        FastLearningDenseFloat._extract_applier_evaluated_traces, ns)
    args = FastLearningDenseFloat._extract_applier_args(
        ns, rng.random((2, 2, n_pre)), rng.random((2, 3, n_post)))
    for name, ps in rule.active_product_series.items():
        applier = (_BroadcastApplierBitApprox if fixed else _EvalApplierFloat)(ps)
        got = []
        for op in applier._operands(args, raw=True):
            values = (op[1], *op[2]) if not fixed else op[1]
            got.append(tuple(kernels.kind_of(v, (n_post, n_pre)) for v in values))
        assert got == fast_trace_kinds(ps.products, fixed=fixed), name


@pytest.mark.parametrize("sign_mode", [SignMode.MIXED, SignMode.EXCITATORY,
                                       SignMode.INHIBITORY])
@pytest.mark.parametrize("name", ["weights", "tag_1", "tag_2"])
def test_float_kernel_clamp_is_the_engines_saturation(all_kernels, sign_mode, name):
    """The float kernel with the clamp read from the model's own saturation against the
    float engine's update (series, then saturation), per variable and sign mode."""
    from lava_local.processes.learning_dense import FastLearningDenseFloat

    cls = FastLearningDenseFloat
    rng = np.random.default_rng(9)
    ns = SimpleNamespace(sign_mode=sign_mode)
    for m in ("_saturate_synaptic_variable", "_kernel_clamp"):
        setattr(ns, m, partial(getattr(cls, m), ns))
    clamp = ns._kernel_clamp(name)
    assert clamp is not None
    ps = _series("2^3*x0*y1*w + 3*y0*(x1 + 2)*y2 - u0*t*2^2 + 2^4*u0*d*y3")
    for _ in range(4):
        args = general_args(rng, 6, 9, integer=False, p_zero=0.2)
        var = rng.normal(size=(6, 9))
        want = cls._update_block(ns, LearningRuleApplierFloat(ps), var.copy(), args, name)
        out = var.copy()
        _EvalApplierFloat(ps).update(out, out, np.arange(6), None, clamp=clamp, **args)
        np.testing.assert_array_equal(out, want)
        assert (want != var + 0).any()


def _histories_with_and_without_kernel(engine, ns, x, y, spiked, bap):
    """``engine._one_step_histories`` on the model stand-in ``ns``: with the trace
    kernels, then with numpy's passes (each from fresh cached operands)."""
    got, want = [], []
    for kernels_on, out in ((True, got), (False, want)):
        ns._kernels = kernels_on
        for k in ("_one_step_decays", "_trace_kernel_operands"):
            ns.__dict__.pop(k, None)
        ns._kernel_decays = partial(engine._kernel_decays, ns)
        out.extend(engine._one_step_histories(ns, x, y, spiked, bap))
    return got, want


def test_fixed_trace_step_is_the_one_step_engines(all_kernels):
    """The compiled trace step gives the one-step engine's numpy histories (Lava's
    decay, stochastic rounding, impulse and saturation) integer for integer: traces
    with τ = 0, fractional impulses, every trace value, spikes and no spikes, random
    numbers on and next to the rounding boundaries."""
    from lava_local.processes.learning_dense import _OneStepFixed

    rng = np.random.default_rng(11)
    n_pre, n_post = 37, 9
    for trial in range(40):
        ns = SimpleNamespace(
            _x_taus=np.array([rng.integers(1, 20), 0 if trial % 3 == 0 else 2.5]),
            _y_taus=np.array([rng.integers(1, 30), 0, rng.uniform(0.5, 9)]),
            _x_impulses_int=rng.integers(0, 60, 2), _x_impulses_frac=rng.integers(0, 128, 2),
            _y_impulses_int=rng.integers(0, 60, 3), _y_impulses_frac=rng.integers(0, 128, 3),
            _add_impulse=FastLearningDenseBitApproximate._add_impulse)
        # random numbers: uniform, and exactly 0 or just below a fraction a decay gives
        r_decay = [rng.random(), 0.0, 0.5, np.nextafter(0.5, 0)][trial % 4]
        ns._x_random = SimpleNamespace(random_trace_decay=r_decay,
                                       random_impulse_addition=int(rng.integers(0, 128)))
        ns._y_random = SimpleNamespace(random_trace_decay=rng.random(),
                                       random_impulse_addition=int(rng.integers(0, 128)))
        x = rng.integers(0, 128, (2, n_pre))
        y = rng.integers(0, 128, (3, n_post))
        spiked = rng.random(n_pre) < (0 if trial % 5 == 0 else 0.3)
        bap = rng.random(n_post) < 0.5
        got, want = _histories_with_and_without_kernel(_OneStepFixed, ns, x, y, spiked,
                                                       bap)
        for g, w in zip(got, want):
            assert g.dtype == np.int64 and g.shape == w.shape
            np.testing.assert_array_equal(g, w)
    assert any((w[1] != w[0]).any() for w in want), "the traces change"


def test_float_trace_step_is_the_one_step_engines(all_kernels):
    """The compiled float trace step gives the one-step engine's numpy histories, value
    for value (NaN where τ = 0)."""
    from lava_local.processes.learning_dense import _OneStepFloat

    rng = np.random.default_rng(12)
    for trial in range(20):
        ns = SimpleNamespace(_x_taus=np.array([rng.uniform(1, 20), 0 if trial % 2 else 3.0]),
                             _y_taus=np.array([rng.uniform(1, 30), 0.0, 4.0]),
                             _x_impulses=rng.uniform(0, 64, 2), _y_impulses=rng.uniform(0, 9, 3))
        x, y = rng.random((2, 41)) * 50, rng.random((3, 7)) * 5
        spiked, bap = rng.random(41) < 0.3, rng.random(7) < (0 if trial % 3 == 0 else 0.5)
        got, want = _histories_with_and_without_kernel(_OneStepFloat, ns, x, y, spiked,
                                                       bap)
        for g, w in zip(got, want):
            assert g.dtype == np.float64 and g.shape == w.shape
            assert np.array_equal(g, w, equal_nan=True)
            assert (np.isnan(g) == np.isnan(w)).all()


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_nonzero_rows_cols_is_numpys(all_kernels, dtype):
    """The block's scan of a per-synapse piece against numpy's ``(v + const) != 0``:
    dense matrices (every column seen in the first rows, then each row read to its
    first non-zero), sparse ones, zero rows and columns, a constant that cancels values,
    NaN (non-zero, as in numpy)."""
    rng = np.random.default_rng(7)
    for k in range(40):
        n, m = rng.integers(2, 40, size=2)
        p_zero = (0.0, 0.3, 0.95, 1.0)[k % 4]
        v = rng.integers(-3, 4, size=(n, m)) * (rng.random((n, m)) >= p_zero)
        v = v.astype(dtype)
        if k % 5 == 1:
            v[rng.integers(n)] = 0                          # a zero row
            v[:, rng.integers(m)] = 0                       # a zero column
        const = (0, 0, 2)[k % 3] if dtype != np.float64 else (0, 0.0, -1.5)[k % 3]
        if dtype == np.float64 and k % 7 == 3:
            v[rng.integers(n), rng.integers(m)] = np.nan
        rows, cols = kernels.nonzero_rows_cols(np.ascontiguousarray(v), const)
        want = (v + const) != 0
        np.testing.assert_array_equal(rows, want.any(1))
        np.testing.assert_array_equal(cols, want.any(0))


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_nonzero_counts_are_numpys(all_kernels, dtype):
    """Each row's and column's number of non-zeros against numpy's (NaN is non-zero,
    -0.0 zero)."""
    rng = np.random.default_rng(8)
    for k in range(20):
        n, m = rng.integers(2, 30, size=2)
        v = (rng.integers(-3, 4, size=(n, m)) * (rng.random((n, m)) >= k / 20)).astype(dtype)
        if dtype == np.float64:
            v[rng.integers(n), rng.integers(m)] = (np.nan, -0.0)[k % 2]
        rows, cols = kernels.nonzero_counts(np.ascontiguousarray(v))
        assert rows.dtype == cols.dtype == np.int64
        np.testing.assert_array_equal(rows, np.count_nonzero(v, axis=1))
        np.testing.assert_array_equal(cols, np.count_nonzero(v, axis=0))


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("all_cols", [False, True])
def test_update_keeps_the_nonzero_counts(all_kernels, in_place, all_cols):
    """With ``counts`` the kernels write the same values as without, and counts that
    held the variable's non-zeros before hold them after, over steps that turn values
    to zero and back (a tag's ``t <- 32 x0``: every value of a spiking column, 0
    elsewhere in the block) and saturate them, float (clamped) and bit-approximate
    (the whole engine update), on blocks and on every column."""
    rng = np.random.default_rng(9)
    n, m = 7, 11
    ps = _series("2^5*x0 - u0*t + 3*y0*d*x1")
    cases = ((_EvalApplierFloat(ps), {"clamp": (-40.0, 40.0)}, np.float64),
             (_BroadcastApplierBitApprox(ps), {"finish": (6, 0, -2 ** 20, 2 ** 20, -256,
                                                          255), "rand": 0.4}, np.int64))
    for applier, extra, dtype in cases:
        var = np.where(rng.random((n, m)) < 0.5, 0, rng.integers(-50, 50, (n, m)))
        var = var.astype(dtype)
        counts = kernels.nonzero_counts(var)
        plain = var.copy()
        for _ in range(12):
            args = general_args(rng, n, m, integer=dtype != np.float64, p_zero=0.5)
            args["tag_1"] = var          # the variable's own values as its factor t
            rows = np.flatnonzero(rng.random(n) < 0.7)
            cols = None if all_cols else np.flatnonzero(rng.random(m) < 0.6)
            want = plain.copy()
            applier.update(want, plain, rows, cols, **extra, **{**args, "tag_1": plain})
            out = var if in_place else var.copy()
            applier.update(out, var, rows, cols, **extra, counts=counts, **args)
            np.testing.assert_array_equal(out, want)
            var, plain = out, want
            got = kernels.nonzero_counts(var)
            np.testing.assert_array_equal(counts[0], got[0])
            np.testing.assert_array_equal(counts[1], got[1])
        assert 0 < np.count_nonzero(var) < var.size, "degenerate case"
