"""The faster LearningDense appliers give exactly Lava's results."""

from types import SimpleNamespace

import numpy as np
import pytest
from lava.magma.core.learning.learning_rule_applier import (
    LearningRuleApplierBitApprox,
    LearningRuleApplierFloat,
)

from lava_local.processes.learning_dense import _BroadcastApplierBitApprox, _EvalApplierFloat
from lava_local.rules.stllr_loihi import OnChipSTLLR


def random_args(rng, n_post, n_pre, integer):
    draw = (lambda s: rng.integers(-140, 140, s)) if integer else (lambda s: rng.normal(size=s))
    args = dict(shape=(n_post, n_pre), x0=rng.random((1, n_pre)) < 0.5,
                y0=rng.random((n_post, 1)) < 0.5, tag_2=0, tag_1=0, u=1, np=np,
                weights=draw((n_post, n_pre)))
    for k in ("x1_u", "x2_u"):
        args[k] = draw((1, n_pre))
    for k in ("y1_u", "y2_u", "y1_y0", "y2_y0"):
        args[k] = draw((n_post, 1))
    for k in ("x1_y0", "x2_y0"):
        args[k] = draw((n_post, n_pre))
    return args


@pytest.mark.parametrize("eta", [2 ** -7, 2 ** -2, 4.0])
def test_broadcast_bit_approx_applier_equals_lavas(eta):
    rng = np.random.default_rng(0)
    series = OnChipSTLLR(eta=eta, mode="fixed", weight_precision=7).learning_rule(0)
    ps = series.active_product_series["dw"]
    for _ in range(20):
        args = random_args(rng, 9, 13, integer=True)
        # accumulators near saturation too: weights in [-256, 255] << 7
        acc = rng.integers(-256, 256, (9, 13)) << 7
        want = LearningRuleApplierBitApprox(ps).apply(acc.copy(), **args)
        got = _BroadcastApplierBitApprox(ps).apply(acc.copy(), **args)
        np.testing.assert_array_equal(got, want)


def test_eval_float_applier_equals_lavas():
    rng = np.random.default_rng(1)
    ps = OnChipSTLLR(eta=2 ** -3, mode="float").learning_rule(0).active_product_series["dw"]
    for _ in range(10):
        args = random_args(rng, 7, 5, integer=False)
        w = rng.normal(size=(7, 5))
        np.testing.assert_array_equal(_EvalApplierFloat(ps).apply(w, **args),
                                      LearningRuleApplierFloat(ps).apply(w, **args))


#: Product series beyond S-TLLR's: constants added to traces and synaptic variables,
#: sign factors, the tags as factors, every dependency, constant-only products.
GENERAL_SERIES = [
    "2^-2*x0*sgn(w)*y2 + 3*y0*(x1 + 2)*y2 - u0*w*2^-3",
    "x0*sgn(t+3)*y1 - 2*y0*(y2+1)*x2 + 4*u0*t*x1*2^-2 - y3*y0*(d - 2)",
    "2^-1*x0*y1*d - 3*u0 + 2*y0*x1*y3*2^2",
]


def general_args(rng, n_post, n_pre, integer, p_zero=0.4):
    """Arguments for every name a series can read, with many exact zeros (the active
    block's case)."""
    def draw(shape):
        v = rng.integers(-140, 140, shape) if integer else rng.normal(size=shape)
        return np.where(rng.random(shape) < p_zero, 0, v)

    args = dict(shape=(n_post, n_pre), x0=rng.random((1, n_pre)) < 0.5,
                y0=rng.random((n_post, 1)) < 0.5, u=1, np=np,
                weights=draw((n_post, n_pre)), tag_1=draw((n_post, n_pre)),
                tag_2=draw((n_post, n_pre)))
    for dep, x_shape, y_shape in (("u", (1, n_pre), (n_post, 1)),
                                  ("x0", (1, n_pre), (n_post, 1)),
                                  ("y0", (1, n_pre), (n_post, 1))):
        for k in ("x1", "x2"):
            args[f"{k}_{dep}"] = draw(x_shape)
        for k in ("y1", "y2", "y3"):
            args[f"{k}_{dep}"] = draw(y_shape)
    return args


def _series(dw: str):
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

    rule = Loihi3FLearningRule(dw=dw, x1_impulse=16, x1_tau=10, x2_impulse=16, x2_tau=2,
                               t_epoch=1)
    return rule.active_product_series["dw"]


@pytest.mark.parametrize("dw", GENERAL_SERIES)
def test_appliers_equal_lavas_on_general_series(dw):
    """The in-place float applier and the broadcast bit-approximate one against Lava's
    own, on series with constants, signs, tags and constant-only products."""
    rng = np.random.default_rng(2)
    ps = _series(dw)
    for _ in range(10):
        args = general_args(rng, 6, 9, integer=False)
        w = rng.normal(size=(6, 9))
        np.testing.assert_array_equal(_EvalApplierFloat(ps).apply(w, **args),
                                      LearningRuleApplierFloat(ps).apply(w, **args))
        args = general_args(rng, 6, 9, integer=True)
        acc = rng.integers(-256, 256, (6, 9)) << 7
        np.testing.assert_array_equal(_BroadcastApplierBitApprox(ps).apply(acc.copy(), **args),
                                      LearningRuleApplierBitApprox(ps).apply(acc.copy(), **args))


@pytest.mark.parametrize("dw", [*GENERAL_SERIES, "S-TLLR"])
def test_active_block_holds_every_nonzero_product(dw):
    """Every product of the series, evaluated on its own by Lava's applier, is zero
    outside the block; for a series whose products are outer products of per-pre and
    per-post pieces (S-TLLR's), the block is exactly the union of their supports."""
    from lava_local.processes.learning_dense import active_block, block_plan

    rng = np.random.default_rng(3)
    ps = (OnChipSTLLR(eta=2 ** -3, mode="float").learning_rule(0).active_product_series["dw"]
          if dw == "S-TLLR" else _series(dw))
    plan = block_plan(ps.products)
    for _ in range(20):
        args = general_args(rng, 7, 11, integer=False, p_zero=0.6)
        rows, cols = active_block(ps.products, args, (7, 11), plan)
        rows2, cols2 = active_block(ps.products, args, (7, 11))     # plan made inside
        assert np.array_equal(rows, rows2) and np.array_equal(cols, cols2)
        inside = np.zeros((7, 11), dtype=bool)
        inside[np.ix_(rows, cols)] = True
        support = np.zeros((7, 11), dtype=bool)
        for prod in ps.products:
            val = LearningRuleApplierFloat(SimpleNamespace(products=[prod])).apply(
                np.zeros((7, 11)), **args)
            assert not np.any(val[~inside]), "a product is non-zero outside the block"
            support |= np.broadcast_to(val, (7, 11)) != 0
        if dw == "S-TLLR":
            assert np.array_equal(np.flatnonzero(support.any(1)), rows)
            assert np.array_equal(np.flatnonzero(support.any(0)), cols)


def test_update_order_reads_every_variable_before_it_changes():
    """TP's series: dw reads d, dd reads t and d, dt reads t: in place as w, d, t; a
    cycle needs copies."""
    from lava_local.processes.learning_dense import update_order

    reads = {"weights": {"tag_2", "y1_u", "u"}, "tag_2": {"tag_1", "tag_2", "u"},
             "tag_1": {"tag_1", "x0", "u"}}
    order, copies = update_order(reads)
    assert order == ["weights", "tag_2", "tag_1"] and not copies
    for i, name in enumerate(order):     # nothing after a variable reads it
        assert not any(name in reads[later] for later in order[i + 1:])
    assert update_order({"weights": {"tag_1"}, "tag_1": {"weights"}}) == (
        ["weights", "tag_1"], True)
    assert update_order({"weights": {"weights", "x1_u"}}) == (["weights"], False)


@pytest.mark.parametrize("seeds", [(0, 1), (7, 7), (123, 2 ** 31)])
def test_trace_random_advance_draws_lavas_numbers(seeds):
    """The fixed engine's advance of Lava's TraceRandom (two generators) gives the
    numbers Lava's own advance gives, step for step over 10^5 steps, and a generator
    without Lava's fields falls back to its own advance."""
    from lava.magma.core.learning.constants import W_TRACE
    from lava.magma.core.learning.random import TraceRandom

    from lava_local.processes.learning_dense import advance_trace_random

    lava, ours = TraceRandom(*seeds), TraceRandom(*seeds)
    ints = set()
    for _ in range(100_000):
        lava.advance()
        advance_trace_random(ours)
        assert ours.random_trace_decay == lava.random_trace_decay
        assert ours.random_impulse_addition == lava.random_impulse_addition
        ints.add(int(ours.random_impulse_addition))
    assert ints == set(range(2 ** W_TRACE))          # the whole range, nothing outside
    calls = []
    advance_trace_random(SimpleNamespace(advance=lambda: calls.append(1)))
    assert calls == [1]


def test_synaptic_variable_random_advance_draws_lavas_numbers():
    """The fixed engine's advance of Lava's ConnVarRandom: Lava's numbers."""
    from lava.magma.core.learning.random import ConnVarRandom

    from lava_local.processes.learning_dense import _OneStepFixed

    lava = ConnVarRandom(5)
    model = SimpleNamespace(_conn_var_random=ConnVarRandom(5))
    for _ in range(10_000):
        lava.advance()
        _OneStepFixed._update_synaptic_variable_random(model)
        assert (model._conn_var_random.random_stochastic_round
                == lava.random_stochastic_round)


def _tp_dense_run(mode: str, fast: bool, sets: dict, steps=(8, 8)):
    """A TP LearningDense (40 x 60: past the active block's small-matrix limit) driven
    by random pre spikes, y1 and bap; after the first run the Vars in ``sets`` are
    set; returns the weights and tags after the second run."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import LearningDense
    from lava.proc.io.source import RingBuffer

    from lava_local.lava_runtime import ensure_lava_runtime
    from lava_local.networks.guard import LavaGuard
    from lava_local.processes.learning_dense import fast_learning_models
    from lava_local.rules.tp import OnChipTP

    ensure_lava_runtime()
    rng = np.random.default_rng(4)
    n_pre, n_post, n = 60, 40, sum(steps)
    pre = (rng.random((n_pre, n)) < 0.15).astype(np.int32)
    y1 = rng.integers(0, 128, (n_post, n)) * (rng.random((n_post, n)) < 0.3)
    bap = (rng.random((n_post, n)) < 0.5).astype(np.int32)
    if mode == "fixed":
        rule = OnChipTP(eta=2 ** -6, mode="fixed", weight_precision=7)
        w0, tag, backend = 2 * rng.integers(-60, 60, (n_post, n_pre)), "fixed_pt", "sim-fixed"
    else:
        rule = OnChipTP(eta=2 ** -6)
        w0, tag, backend = rng.normal(size=(n_post, n_pre)), "floating_pt", "sim-float"
        y1 = y1 / 16.0
    dense = LearningDense(weights=w0.copy(), learning_rule=rule.learning_rule(rng_seed=5))
    srcs = [RingBuffer(data=d) for d in (pre, y1, np.zeros_like(y1), bap, np.zeros_like(y1))]
    for s, port in zip(srcs, (dense.s_in, dense.s_in_y1, dense.s_in_y2, dense.s_in_bap,
                              dense.s_in_y3)):
        s.s_out.connect(port)
    cfg = Loihi2SimCfg(select_tag=tag,
                       exception_proc_model_map=fast_learning_models(backend) if fast else {})
    with LavaGuard() as guard:      # a model that fails to build fails, does not hang
        guard.start(lambda: dense.create_runtime(run_cfg=cfg), dense.stop)
        dense.run(condition=RunSteps(num_steps=steps[0]), run_cfg=cfg)
        for name, value in sets.items():
            getattr(dense, name).set(value)
        dense.run(condition=RunSteps(num_steps=steps[1]), run_cfg=cfg)
        return [np.array(getattr(dense, v).get()) for v in ("weights", "tag_1", "tag_2")]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_nonzero_counts_follow_a_var_set(mode, monkeypatch, tmp_path):
    """TP's tags bound their own blocks; the kernels count their non-zeros instead of
    scanning them. A Var.set between runs (tags made non-zero where they were zero, and
    zero where they were not) drops the counts: weights and tags stay Lava's, bit for
    bit."""
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "all")
    monkeypatch.setenv("LAVA_LOCAL_CACHE", str(tmp_path))
    rng = np.random.default_rng(6)
    t = 32 * (rng.random((40, 60)) < 0.5)
    d = 32 * (rng.random((40, 60)) < 0.5)
    sets = {"tag_1": t, "tag_2": d}
    fast = _tp_dense_run(mode, True, sets)
    lava = _tp_dense_run(mode, False, sets)
    for a, b in zip(fast, lava):
        np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(fast[1]) and np.count_nonzero(fast[2])


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_a_var_set_out_of_range_is_saturated_as_lavas(mode, monkeypatch, tmp_path):
    """Weights set between runs far outside their range (±2^20): Lava's engine
    saturates every synapse at the next step, inside and outside the block the rule
    changes; so does the fast model (a full pass after any Var.set) — weights and tags
    bit for bit."""
    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "all")
    monkeypatch.setenv("LAVA_LOCAL_CACHE", str(tmp_path))
    rng = np.random.default_rng(8)
    huge = rng.random((40, 60)) < 0.3
    w = np.where(huge, rng.choice([-2.0 ** 20, 2.0 ** 20], (40, 60)),
                 2 * rng.integers(-60, 60, (40, 60)))
    fast = _tp_dense_run(mode, True, {"weights": w})
    lava = _tp_dense_run(mode, False, {"weights": w})
    for a, b in zip(fast, lava):
        np.testing.assert_array_equal(a, b)
    if mode == "fixed":       # saturated: every weight back in the 8-bit range
        assert np.abs(fast[0]).max() <= 256


def test_the_learned_variables_are_narrowed_only_where_the_kernels_learn():
    """The bit-approximate model keeps its learned variables in int32 once the kernels
    make every update (the same numbers); not without kernels, nor a variable whose
    values int32 cannot hold, nor in the float model."""
    from lava_local.processes.learning_dense import (
        FastLearningDenseBitApproximate,
        FastLearningDenseFloat,
    )

    def model(cls, kernels: bool, values: dict):
        m = SimpleNamespace(_narrow_dtype=cls._narrow_dtype, _kernels=kernels,
                            _kernels_update_all=lambda: True,
                            _learning_rule_appliers=dict.fromkeys(values), **values)
        cls._narrow_variables(m)
        return m

    rng = np.random.default_rng(2)
    w, t = rng.integers(-256, 256, (5, 7)), rng.integers(0, 128, (5, 7))
    m = model(FastLearningDenseBitApproximate, True, {"weights": w, "tag_1": t})
    assert m.weights.dtype == m.tag_1.dtype == np.int32
    np.testing.assert_array_equal(m.weights, w)
    np.testing.assert_array_equal(m.tag_1, t)
    assert model(FastLearningDenseBitApproximate, False, {"weights": w}).weights is w
    big = w.copy()
    big[0, 0] = 2 ** 40
    assert model(FastLearningDenseBitApproximate, True, {"weights": big}).weights is big
    f = rng.normal(size=(5, 7))
    assert model(FastLearningDenseFloat, True, {"weights": f}).weights is f


def _rule_series(**strings):
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

    rule = Loihi3FLearningRule(**strings, x1_impulse=16, x1_tau=10, x2_impulse=16,
                               x2_tau=2, t_epoch=1)
    names = {"dw": "weights", "dt": "tag_1", "dd": "tag_2"}
    return {names[k]: ps.products for k, ps in rule.active_product_series.items()}


def test_per_pre_variables_are_those_kept_the_same_down_every_column():
    """A variable whose series reads only per-pre values, u and such variables stays
    one row: TP's two tags (t <- 32 x0, d <- t), not its weights (y1); not a tag that
    reads a post trace, nor one that reads a tag that does, nor one that reads a tag
    without a rule of its own."""
    from lava_local.processes.learning_dense import per_pre_variables
    from lava_local.rules.solsa import OnChipSOLSA
    from lava_local.rules.tp import OnChipTP

    def of(rule):
        return per_pre_variables({
            {"dw": "weights", "dt": "tag_1", "dd": "tag_2"}[k]: ps.products
            for k, ps in rule.learning_rule(0).active_product_series.items()})

    assert of(OnChipTP(eta=2 ** -6)) == {"tag_1", "tag_2"}
    assert of(OnChipTP(eta=2 ** -6, mode="fixed", weight_precision=7)) == {"tag_1", "tag_2"}
    assert of(OnChipTP(eta=2 ** -6, stages=1)) == {"tag_1"}
    assert of(OnChipSTLLR(eta=2 ** -3, mode="float")) == set()
    assert of(OnChipSOLSA(eta=2 ** -6, lam=0.5, theta=0.5)) == set()
    assert per_pre_variables(_rule_series(dw="x0*y1*t", dt="x0 - u0*t*x1",
                                          dd="u0*t - y0*d")) == {"tag_1"}
    assert per_pre_variables(_rule_series(dw="x0*y1", dt="x0 - u0*d*2^-1",
                                          dd="u0*t - u0*d*y2")) == set()
    assert per_pre_variables(_rule_series(dw="x0*y1", dt="x0*sgn(d+1) - u0*t")) == set()


@pytest.mark.parametrize("dw", GENERAL_SERIES)
def test_a_variable_held_as_a_row_gives_the_kernels_the_same_numbers(dw, monkeypatch,
                                                                     tmp_path):
    """The kernels' update with the tags given as one row (per-pre operands: their
    constant, sign or clip applied once per pre neuron) equals the update with the
    same tags as full matrices, float and integer."""
    monkeypatch.setenv("LAVA_LOCAL_CACHE", str(tmp_path))
    rng = np.random.default_rng(9)
    ps = _series(dw)
    for integer, cls in ((False, _EvalApplierFloat), (True, _BroadcastApplierBitApprox)):
        args = general_args(rng, 6, 9, integer)
        full, held = dict(args), dict(args)
        for name in ("tag_1", "tag_2"):
            row = args[name][:1]
            full[name] = np.repeat(row, 6, axis=0)
            held[name] = row
        acc = rng.integers(-256, 256, (6, 9)) << 7 if integer else rng.normal(size=(6, 9))
        outs = []
        for a in (full, held):
            out = np.empty_like(acc)
            extra = {"finish": None} if integer else {"clamp": None}
            cls(ps).update(out, acc.copy(), np.arange(6), None, **extra, **a)
            outs.append(out)
        np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_tp_tags_are_held_as_rows_and_read_as_lavas(mode, monkeypatch, tmp_path):
    """TP's tags stay the same down every column: after the first full pass the fast
    model holds each as one row (counted here from the learning process); weights and
    tags read after the run, and after a Var.set of tags that are the same down every
    column (held again after the next full pass), are Lava's, bit for bit."""
    import lava_local.processes.learning_dense as ld

    monkeypatch.setenv("LAVA_LOCAL_KERNELS", "all")
    monkeypatch.setenv("LAVA_LOCAL_CACHE", str(tmp_path))
    log = tmp_path / "rows.log"
    orig = ld._ActiveBlock._update_row

    def logged(self, applier, name, args):
        with open(log, "a") as f:
            f.write(name + "\n")
        return orig(self, applier, name, args)

    monkeypatch.setattr(ld._ActiveBlock, "_update_row", logged)
    rng = np.random.default_rng(7)
    t = np.repeat(32 * (rng.random((1, 60)) < 0.5), 40, axis=0)
    for sets in ({}, {"tag_1": t, "tag_2": np.roll(t, 3, axis=1)}):
        log.unlink(missing_ok=True)
        fast = _tp_dense_run(mode, True, sets)
        held = log.read_text().split()
        lava = _tp_dense_run(mode, False, sets)
        for a, b in zip(fast, lava):
            np.testing.assert_array_equal(a, b)
        # every step after the first full pass of each run (15 of 16 without a set,
        # 14 with one)
        assert held.count("tag_1") == held.count("tag_2") == (14 if sets else 15)
        assert np.count_nonzero(fast[1]) and np.count_nonzero(fast[2])
