"""Subnormal values flushed to zero: the helper, and the S-TLLR trainer's traces."""

import numpy as np
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


def test_stllr_traces_decay_to_zero_without_passing_through_subnormals():
    """Input spikes for 4 steps, then 200 silent steps: the input layer's pre trace
    decays as λ_pre^n, into the subnormal range of float32 after ~126 halvings. The
    trainer's traces hold no subnormal value at any step, and equal the float64
    geometric decay (flushed where it is below the smallest normal) elsewhere."""
    cfg = NetConfig(12, 4, hidden=(9,), gamma=0.6, v_th=0.5, kappa=0.8, init_gain=1.5)
    model = DenseSNN(cfg, generator=torch.Generator().manual_seed(0))
    tr = STLLRTrainer(model, torch.optim.SGD(model.parameters(), lr=0.0),
                      STLLRParams(lam_pre=0.5, lam_post=0.5, merge_terms=True))
    x, y = _silent_after_a_burst(204, 4)
    rec = _Recorder()
    tr.train_batch(x, y, rec)
    for traces in rec.steps:
        for t in traces:
            assert not bool(_is_subnormal(t).any())
    q64 = np.zeros(x.shape[1:])                  # the input pre trace, by hand, in float64
    tiny = float(np.finfo(np.float32).tiny)
    n_sub = 0
    for t in range(x.shape[0]):
        q64 = 0.5 * q64 + x[t].double().numpy()
        sub = (q64 > 0) & (np.abs(q64.astype(np.float32)) < tiny)
        n_sub += int(sub.sum())
        want = np.where(sub, 0.0, q64)
        np.testing.assert_allclose(rec.steps[t][0].numpy(), want, rtol=1e-6, atol=0)
    assert n_sub > 100, "degenerate: the trace never reached the subnormal range"
