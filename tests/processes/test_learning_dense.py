"""The faster LearningDense appliers give exactly Lava's results."""

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
