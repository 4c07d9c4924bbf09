"""The trainers' fused Adam against torch's own Adam."""

import copy
import sys

import pytest
import torch

from lava_local.torch.optim import FusedAdam


def _params(dtype, seed=0, shapes=((45, 70), (20, 45), (7,))):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]


def _run(opts, params, steps, seed=1, lrs=None):
    """``steps`` steps of every optimiser in ``opts`` (one per parameter list in
    ``params``) on the same random gradients; ``lrs``: a learning rate per step."""
    g = torch.Generator().manual_seed(seed)
    for k in range(steps):
        grads = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params[0]]
        for opt, ps in zip(opts, params):
            for p, gr in zip(ps, grads):
                p.grad = gr.clone()
            if lrs is not None:
                for group in opt.param_groups:
                    group["lr"] = lrs[k]
            opt.step()


@pytest.mark.parametrize("dtype, rtol, atol", [(torch.float64, 1e-12, 1e-13),
                                               (torch.float32, 2e-5, 1e-6)])
@pytest.mark.parametrize("kw", [{}, {"weight_decay": 0.05, "betas": (0.3, 0.99)},
                                {"eps": 1e-3, "betas": (0.6, 0.9)}],
                         ids=["defaults", "decay-low-beta1", "eps-lerp-upper-branch"])
def test_fused_adam_equals_torchs_adam_within_rounding(dtype, rtol, atol, kw):
    """40 steps, a learning rate that changes every step (as the schedules do): the
    parameters and both moments equal torch's within the dtype's rounding (torch's
    vectorised lerp may fuse a multiply-add; the kernel does not)."""
    a, b = _params(dtype), _params(dtype)
    ta, fb = torch.optim.Adam(a, lr=1e-2, **kw), FusedAdam(b, lr=1e-2, **kw)
    _run([ta, fb], [a, b], 40, lrs=[1e-2 * (1 + 0.5 * (k % 3)) for k in range(40)])
    moved = max(float((p - q).abs().max()) for p, q in zip(a, _params(dtype)))
    assert moved > 0.1, "degenerate: the parameters barely moved"
    for p, q in zip(a, b):
        torch.testing.assert_close(q, p, rtol=rtol, atol=atol)      # values of O(1)
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(fb.state[q][key], ta.state[p][key], rtol=rtol,
                                       atol=atol)
        assert float(fb.state[q]["step"]) == float(ta.state[p]["step"]) == 40
        assert fb.state[q]["step"].dtype == ta.state[p]["step"].dtype


def test_moments_below_the_smallest_normal_are_flushed_to_zero():
    """One gradient, then none: torch's first moment decays into the subnormal range
    (0.9^k), the fused one is zero there; the parameters stay equal within rounding."""
    a, b = _params(torch.float32, shapes=((6, 5),)), _params(torch.float32, shapes=((6, 5),))
    ta, fb = torch.optim.Adam(a, lr=1e-2), FusedAdam(b, lr=1e-2)
    g = torch.randn(6, 5, generator=torch.Generator().manual_seed(3))
    for k in range(900):
        for p, opt in ((a[0], ta), (b[0], fb)):
            p.grad = g.clone() if k == 0 else torch.zeros_like(g)
            opt.step()
    tiny = torch.finfo(torch.float32).tiny
    m_torch, m_fused = ta.state[a[0]]["exp_avg"], fb.state[b[0]]["exp_avg"]
    assert ((m_torch != 0) & (m_torch.abs() < tiny)).all(), "torch's moments are subnormal"
    assert (m_fused == 0).all()
    torch.testing.assert_close(b[0], a[0], rtol=2e-5, atol=1e-6)


def test_fused_adam_leaves_the_gradients_alone():
    p = _params(torch.float32, shapes=((5, 6),))
    opt = FusedAdam(p, lr=0.1, weight_decay=0.5)
    g = torch.randn(5, 6)
    p[0].grad = g.clone()
    opt.step()
    torch.testing.assert_close(p[0].grad, g, rtol=0, atol=0)


def test_state_dicts_interchange_with_torchs_adam():
    """A checkpoint of either optimiser resumes in the other: 10 steps of FusedAdam,
    its state loaded into torch's Adam (and back), then 10 more steps side by side."""
    a, b = _params(torch.float64), _params(torch.float64)
    fa = FusedAdam(a, lr=1e-2)
    _run([fa], [a], 10)
    with torch.no_grad():
        for p, q in zip(a, b):
            q.copy_(p)
    ta = torch.optim.Adam(b, lr=1e-2)
    ta.load_state_dict(copy.deepcopy(fa.state_dict()))     # as through a checkpoint file
    back = FusedAdam(_params(torch.float64), lr=1.0)
    back.load_state_dict(copy.deepcopy(ta.state_dict()))
    assert back.param_groups[0]["lr"] == 1e-2
    _run([fa, ta], [a, b], 10, seed=2)
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
        assert float(ta.state[q]["step"]) == 20


def test_a_state_loaded_or_a_parameter_replaced_between_steps_is_the_one_stepped():
    """The kernel works on numpy views of the parameter and its moments, kept between
    steps: a state loaded later, a parameter given new storage (``p.data = ...``) and a
    deep copy of the optimiser must each be the memory the next step updates."""
    a, b = _params(torch.float64), _params(torch.float64)
    fa, ta = FusedAdam(a, lr=1e-2), torch.optim.Adam(b, lr=1e-2)
    _run([fa], [a], 5, seed=1)
    _run([ta], [b], 5, seed=2)                  # a different history
    fa.load_state_dict(copy.deepcopy(ta.state_dict()))       # new moments
    with torch.no_grad():
        for p, q in zip(a, b):
            p.copy_(q)                                        # same storage
    _run([fa, ta], [a, b], 3, seed=3)
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
        p.data = p.detach().clone()                           # new storage
    _run([fa, ta], [a, b], 2, seed=5)
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    fc = copy.deepcopy(fa)
    c = fc.param_groups[0]["params"]
    before_a = [p.detach().clone() for p in a]
    _run([fc], [c], 1, seed=4)
    for p, q in zip(a, before_a):
        torch.testing.assert_close(p, q, rtol=0, atol=0)       # the original untouched
    assert all(float((p - q).abs().max()) > 0 for p, q in zip(c, before_a))
    assert float(fc.state[c[0]]["step"]) == 11 and float(fa.state[a[0]]["step"]) == 10


@pytest.mark.parametrize("case", ["amsgrad", "maximize", "non-contiguous", "no-numba"])
def test_what_the_kernel_does_not_cover_runs_torchs_step_bit_for_bit(case, monkeypatch):
    kw = {"amsgrad": True} if case == "amsgrad" else \
        {"maximize": True} if case == "maximize" else {}
    a, b = _params(torch.float32), _params(torch.float32)
    if case == "non-contiguous":
        a[0] = torch.nn.Parameter(a[0].detach().T.contiguous().T)
        b[0] = torch.nn.Parameter(b[0].detach().T.contiguous().T)
        assert not b[0].is_contiguous()
    if case == "no-numba":
        monkeypatch.setitem(sys.modules, "numba", None)
    ta, fb = torch.optim.Adam(a, lr=1e-2, **kw), FusedAdam(b, lr=1e-2, **kw)
    _run([ta, fb], [a, b], 5)
    for p, q in zip(a, b):
        torch.testing.assert_close(q, p, rtol=0, atol=0)


def test_the_trainers_use_it():
    from lava_local.rules import get
    from lava_local.torch.model import DenseSNN, NetConfig

    model = DenseSNN(NetConfig(4, 2, hidden=(3,)))
    r = get("tp")
    tr = r.make_trainer(model, r.Params(), None, 1e-3, torch.Generator().manual_seed(0))
    assert isinstance(tr.optimizer, FusedAdam)


def test_step_hooks_and_the_profiler_see_every_step_as_with_torchs_adam():
    """The step skips torch's hook wrapper only where no hook and no profiler would see
    it: this optimiser's and the global pre/post hooks run once per step with torch's
    arguments, in both the kernel's and the fallback's steps (amsgrad), and a profile
    records the step under torch's name."""
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    seen = []
    for kw in ({}, {"amsgrad": True}):
        torch.optim.Adam(_params(torch.float32), lr=1e-2)   # torch hooks Adam.step
        fb = FusedAdam(_params(torch.float32), lr=1e-2, **kw)
        seen.clear()
        handles = [
            fb.register_step_pre_hook(lambda o, a, k: seen.append(("pre", o, len(a)))),
            fb.register_step_post_hook(lambda o, a, k: seen.append(("post", o, len(a)))),
            register_optimizer_step_pre_hook(lambda o, a, k: seen.append(("gpre", o))),
            register_optimizer_step_post_hook(lambda o, a, k: seen.append(("gpost", o)))]
        try:
            _run([fb], [fb.param_groups[0]["params"]], 2)
        finally:
            for h in handles:
                h.remove()
        assert seen == [("gpre", fb), ("pre", fb, 1), ("post", fb, 1), ("gpost", fb)] * 2
        assert float(fb.state[fb.param_groups[0]["params"][0]]["step"]) == 2
        seen.clear()
        _run([fb], [fb.param_groups[0]["params"]], 1)       # hooks removed
        assert seen == []
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            _run([fb], [fb.param_groups[0]["params"]], 1)
        names = [e.name for e in prof.events()]
        assert names.count("Optimizer.step#FusedAdam.step") == 1
