"""LIF, readout and trace trajectories against values computed by hand."""

import numpy as np
import pytest
import torch

from lava_local.functional import (
    LIFState,
    heaviside,
    leaky_readout_step,
    lif_step,
    post_trace_step,
    pre_trace_step,
)


def run_lif(currents, gamma, v_th, xp=np):
    s = LIFState(xp.zeros(1) if xp is np else torch.zeros(1, dtype=torch.float64),
                 xp.zeros(1) if xp is np else torch.zeros(1, dtype=torch.float64))
    us, ys = [], []
    for c in currents:
        c = np.array([c]) if xp is np else torch.tensor([c], dtype=torch.float64)
        s = lif_step(s, c, gamma, v_th)
        us.append(float(s.u[0]))
        ys.append(float(s.y[0]))
    return us, ys


@pytest.mark.parametrize("xp", [np, torch])
def test_lif_soft_reset_trajectory_by_hand(xp):
    # γ = 0.5, v_th = 1, input 0.6, 0.6, 0.9, 0, 0:
    # u0 = 0.6                                   y0 = 0
    # u1 = 0.5*(0.6 - 0) + 0.6 = 0.9             y1 = 0
    # u2 = 0.5*(0.9 - 0) + 0.9 = 1.35            y2 = 1
    # u3 = 0.5*(1.35 - 1) + 0 = 0.175            y3 = 0   (subtractive reset)
    # u4 = 0.5*0.175 = 0.0875                    y4 = 0
    us, ys = run_lif([0.6, 0.6, 0.9, 0.0, 0.0], 0.5, 1.0, xp)
    np.testing.assert_allclose(us, [0.6, 0.9, 1.35, 0.175, 0.0875], rtol=0, atol=1e-12)
    assert ys == [0, 0, 1, 0, 0]


def test_lif_threshold_is_strict():
    # u exactly at threshold does not spike: y = Θ(u - v_th) with Θ(0) = 0.
    s = lif_step(LIFState(np.zeros(1), np.zeros(1)), np.array([1.0]), 0.9, 1.0)
    assert s.y[0] == 0
    assert heaviside(np.array([0.0, 1e-9, -1.0])).tolist() == [0.0, 1.0, 0.0]


def test_lif_reset_can_drive_negative_and_repeat_spikes():
    # Large constant drive 2.5 with v_th = 1, γ = 1 (no leak):
    # u0 = 2.5 (y=1); u1 = 2.5 - 1 + 2.5 = 4.0 (y=1); u2 = 4 - 1 + 2.5 = 5.5 (y=1)
    us, ys = run_lif([2.5, 2.5, 2.5], 1.0, 1.0)
    np.testing.assert_allclose(us, [2.5, 4.0, 5.5])
    assert ys == [1, 1, 1]
    # Then drive -3: u3 = 5.5 - 1 - 3 = 1.5 (y=1); u4 = 1.5 - 1 - 3 = -2.5 (y=0)
    s = LIFState(np.array([5.5]), np.array([1.0]))
    s = lif_step(s, np.array([-3.0]), 1.0, 1.0)
    assert (float(s.u[0]), float(s.y[0])) == (1.5, 1.0)
    s = lif_step(s, np.array([-3.0]), 1.0, 1.0)
    assert (float(s.u[0]), float(s.y[0])) == (-2.5, 0.0)


def test_leaky_readout_by_hand():
    o = np.zeros(2)
    outs = []
    for c in ([1.0, 0.0], [0.0, 2.0], [0.0, 0.0]):
        o = leaky_readout_step(o, np.array(c), 0.5)
        outs.append(o.copy())
    np.testing.assert_allclose(outs, [[1, 0], [0.5, 2], [0.25, 1]])


def test_pre_trace_includes_current_step():
    # q[t] = 0.5 q[t-1] + x[t]; x = 1, 0, 1, 1 -> 1, 0.5, 1.25, 1.625
    q, qs = np.zeros(1), []
    for x in (1.0, 0.0, 1.0, 1.0):
        q = pre_trace_step(q, np.array([x]), 0.5)
        qs.append(float(q[0]))
    assert qs == [1.0, 0.5, 1.25, 1.625]


def test_post_trace_excludes_current_step():
    # h[t] = 0.2 h[t-1] + Ψ(u[t-1]); with Ψ(u[-1]) := 0 and Ψ(u[t]) = 1, 0.5, 0:
    # h0 = 0; h1 = 1; h2 = 0.2 + 0.5 = 0.7; h3 = 0.14
    psi = [1.0, 0.5, 0.0]
    h, hs, prev = np.zeros(1), [], np.zeros(1)
    for p in psi + [0.0]:
        h = post_trace_step(h, prev, 0.2)
        hs.append(float(h[0]))
        prev = np.array([p])
    np.testing.assert_allclose(hs, [0.0, 1.0, 0.7, 0.14])
