"""Subnormal values flushed to zero: the helper, and the S-TLLR trainer's traces."""

import pytest
import torch

from lava_local.rules import STLLRParams
from lava_local.rules.stllr import STLLRTrainer
from lava_local.torch import subnormal
from lava_local.torch.model import DenseSNN, NetConfig
from lava_local.torch.subnormal import flush_subnormal_


def _is_subnormal(t: torch.Tensor) -> torch.Tensor:
    return (t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("numba", [True, False], ids=["kernel", "torch"])
def test_flush_sets_exactly_the_subnormals_to_zero_in_place(dtype, numba, monkeypatch):
    if not numba:
        monkeypatch.setattr(subnormal, "numba_available", lambda: False)
    tiny = torch.finfo(dtype).tiny
    values = [tiny / 2, -tiny / 3, tiny * (1 - 2 ** -20), tiny, -tiny, 2 * tiny, 1.0, -7.5,
              0.0, float("inf"), float("-inf"), float("nan"), tiny / 2 ** 20]
    x = torch.tensor(values, dtype=dtype).repeat(5, 1)
    sub = _is_subnormal(x)
    assert int(sub.sum()) == 5 * 4                         # the test's premise
    expected = torch.where(sub, torch.zeros_like(x), x)
    out = flush_subnormal_(x)
    assert out is x
    torch.testing.assert_close(x, expected, rtol=0, atol=0, equal_nan=True)
    assert not bool(torch.signbit(x[sub]).any())           # +0, as the FPU's flush


def test_flush_of_a_non_contiguous_view_and_of_a_tensor_with_grad():
    tiny = torch.finfo(torch.float32).tiny
    base = torch.tensor([[tiny / 4, 1.0], [2.0, -tiny / 8]])
    view = base.T                                          # not contiguous
    flush_subnormal_(view)
    assert base.tolist() == [[0.0, 1.0], [2.0, 0.0]]
    leaf = torch.tensor([tiny / 4, 3.0], requires_grad=True)
    y = flush_subnormal_(leaf * 1.0)
    assert y.tolist() == [0.0, 3.0]
    y.sum().backward()
    assert leaf.grad.tolist() == [0.0, 1.0]                # no gradient through a flush
    ints = torch.tensor([1, 2])
    assert flush_subnormal_(ints) is ints


def _silent_after_a_burst(n_steps, burst, b=3, n_in=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n_steps, b, n_in)
    x[:burst] = (torch.rand(burst, b, n_in, generator=g) < 0.6).float()
    return x, torch.randint(0, 4, (b,), generator=g)


class _Recorder:
    def __init__(self):
        self.steps = []

    def set_state(self, name, tensors):
        self.steps.append([t.clone() for t in tensors])


@pytest.mark.parametrize("merge", [False, True], ids=["two-products", "merged"])
def test_stllr_update_operands_hold_no_subnormal(merge, monkeypatch):
    """Input spikes for 4 steps, then 200 silent steps: the input layer's pre trace
    decays as λ_pre^n, into the subnormal range of float32 after ~126 halvings (the
    traces the meter sees go there: the test's premise). Every operand of every
    update product of the hidden layer is free of subnormal values, and the applied
    update equals the one computed in float64 (where nothing is subnormal) within
    float32 rounding."""
    cfg = NetConfig(12, 4, hidden=(9,), gamma=0.6, v_th=0.5, kappa=0.8, init_gain=1.5)
    x, y = _silent_after_a_burst(204, 4)
    params = STLLRParams(lam_pre=0.5, lam_post=0.5, merge_terms=merge)
    updates = {}
    for dtype in (torch.float32, torch.float64):
        model = DenseSNN(cfg, generator=torch.Generator().manual_seed(0)).to(dtype)
        tr = STLLRTrainer(model, torch.optim.SGD(model.parameters(), lr=1.0), params)
        seen = []
        add = model.add_weight_grad

        def spy(l, acc, a, g, alpha=1.0, add=add, seen=seen):
            seen.append(int(_is_subnormal(a).sum() + _is_subnormal(g).sum()))
            add(l, acc, a, g, alpha)
        monkeypatch.setattr(model, "add_weight_grad", spy)
        rec = _Recorder()
        before = model.hidden[0].detach().clone()
        tr.train_batch(x.to(dtype), y, rec)
        updates[dtype] = (before - model.hidden[0].detach()).double()
        if dtype == torch.float32:
            assert len(seen) >= 204 and sum(seen) == 0
            in_traces = sum(int(_is_subnormal(st[0]).sum()) for st in rec.steps)
            assert in_traces > 20, "degenerate: the trace never reached the subnormals"
    u64 = updates[torch.float64]
    assert float(u64.abs().max()) > 1e-6
    torch.testing.assert_close(updates[torch.float32], u64, rtol=1e-3,
                               atol=1e-4 * float(u64.abs().max()))
