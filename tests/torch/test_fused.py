"""The compiled LIF step and Ψ against the functional core they replace."""

import pytest
import torch

from lava_local.functional.lif import LIFState, heaviside, lif_step
from lava_local.functional.surrogates import SURROGATES, get_surrogate
from lava_local.functional.tp import tp_soft_targets
from lava_local.torch import fused
from lava_local.torch.fused import (
    fused_contrastive_signal,
    fused_lif_step,
    fused_soft_targets,
    fused_surrogate,
)

DTYPES = [torch.float32, torch.float64]


def _membranes(dtype, seed=0, shape=(37, 29)):
    g = torch.Generator().manual_seed(seed)
    u = (torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + 0.5).to(dtype)
    u.view(-1)[:6] = torch.tensor([0.5, 0.0, -1e3, 1e3, 1.5, -0.5], dtype=dtype)
    return u


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma, v_th", [(0.6, 0.5), (0.9, 1), (1, 0.3)])
def test_fused_lif_step_gives_the_same_floats(dtype, gamma, v_th):
    g = torch.Generator().manual_seed(1)
    u = _membranes(dtype)
    y = (torch.rand(u.shape, generator=g) < 0.3).to(dtype)
    cur = torch.randn(u.shape, generator=g, dtype=torch.float64).to(dtype)
    cur.view(-1)[:3] = torch.tensor([0.0, v_th, -v_th], dtype=dtype)
    want = lif_step(LIFState(u, y), cur, gamma, v_th)
    got = fused_lif_step(LIFState(u, y), cur, gamma, v_th)
    assert 0 < float(got.y.mean()) < 1                       # both spike and silence
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_fused_surrogate_gives_the_same_floats(name, dtype):
    """Bit for bit where Ψ is algebraic; within 2 ulp where it takes ``exp``."""
    u = _membranes(dtype, seed=2)
    for v_th in (0.5, 1):
        want = get_surrogate(name)(u, v_th)
        got = fused_surrogate(name)(u, v_th)
        assert got.dtype == want.dtype and float(want.max()) > 0.1
        if "sigmoid_prime" in name:
            ulp = torch.finfo(dtype).eps
            torch.testing.assert_close(got, want, rtol=2 * ulp, atol=0)
        else:
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_every_surrogate_has_a_kernel_body():
    assert set(fused._PSI_BODIES) == set(SURROGATES)


def _no_kernel(monkeypatch):
    def boom(source):
        raise AssertionError("the kernel ran where the functional core should")
    monkeypatch.setattr(fused, "numpy_kernel", boom)


@pytest.mark.parametrize("case", ["grad", "grad-leaf-no-grad-mode", "tensor-threshold",
                                  "non-contiguous", "surrogate-spike", "no-numba"])
def test_what_a_kernel_does_not_cover_runs_the_functional_core(case, monkeypatch):
    u = _membranes(torch.float32)
    y = (u > 0.7).float()
    cur = torch.ones_like(u) * 0.2
    v_th, spike_fn = 0.5, heaviside
    if case in ("grad", "grad-leaf-no-grad-mode"):
        u.requires_grad_(True)
    elif case == "tensor-threshold":
        v_th = torch.tensor(0.5)
    elif case == "non-contiguous":
        u, y, cur = u.T, y.T, cur.T
    elif case == "surrogate-spike":
        spike_fn = lambda x: heaviside(x) * 1.0     # noqa: E731
    else:
        monkeypatch.setattr(fused, "numba_available", lambda: False)
    with torch.set_grad_enabled(case != "grad-leaf-no-grad-mode"):
        want = lif_step(LIFState(u, y), cur, 0.6, v_th, spike_fn)
        want_psi = get_surrogate("triangle")(u, v_th)
        _no_kernel(monkeypatch)
        got = fused_lif_step(LIFState(u, y), cur, 0.6, v_th, spike_fn)
        if case == "surrogate-spike":          # Ψ does not depend on the spike function
            got_psi = want_psi
        else:
            got_psi = fused_surrogate("triangle")(u, v_th)
    for a, b in zip((*got, got_psi), (*want, want_psi)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    if case == "grad":
        got.u.sum().backward()
        assert u.grad is not None and float(u.grad.abs().sum()) > 0


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 2e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize("shape", [(32, 10), (7, 128), (64, 450)])
def test_fused_soft_targets_equal_the_functional_within_rounding(dtype, rtol, shape):
    g = torch.Generator().manual_seed(3)
    e = (torch.rand(shape, generator=g, dtype=torch.float64) * 3).to(dtype)
    e[1] = e[0]                                     # two equal traces: distance 0
    want = tp_soft_targets(e)
    got = fused_soft_targets(e)
    assert got.dtype == want.dtype and got.shape == (shape[0], shape[0])
    torch.testing.assert_close(got, want, rtol=rtol, atol=0)
    torch.testing.assert_close(got[0, 1], got[0, 0], rtol=0, atol=0)
    assert float(want.max() - want.min()) > 0.01       # the targets are not uniform


@pytest.mark.parametrize("dtype, rtol, atol", [(torch.float32, 1e-5, 2e-6),
                                               (torch.float64, 1e-12, 4e-15)])
@pytest.mark.parametrize("b, h", [(32, 128), (5, 7), (64, 450)])
@pytest.mark.parametrize("target", [True, False])
def test_fused_contrastive_signal_equals_the_functional_within_rounding(dtype, rtol, atol,
                                                                        b, h, target):
    """Both paths' traces, soft targets whose rows sum to one (the trainer's) and rows
    that do not (the closed form keeps the row sums, as autograd of the loss does): the
    same two signals as the functional core within the dtype's rounding (``atol``
    relative to the largest signal: each is a sum of B terms of either sign)."""
    from lava_local.functional.tp import tp_contrastive_signal

    g = torch.Generator().manual_seed(b + h)
    e = (torch.rand(b, h, generator=g, dtype=torch.float64) * 4).to(dtype)
    et = (torch.rand(b, h, generator=g, dtype=torch.float64) * 4).to(dtype)
    for y in (fused_soft_targets(torch.rand(b, 9, generator=g, dtype=dtype)),
              torch.rand(b, b, generator=g, dtype=dtype)):
        want = tp_contrastive_signal(e, et, y, target)
        got = fused_contrastive_signal(e, et, y, target)
        scale = float(want[0].abs().max())
        assert scale > 1e-3                                 # not a vanishing signal
        torch.testing.assert_close(got[0], want[0], rtol=rtol, atol=atol * scale)
        if target:
            torch.testing.assert_close(got[1], want[1], rtol=rtol,
                                       atol=atol * float(want[1].abs().max()))
        else:
            assert got[1] is None


def test_contrastive_signal_outside_the_kernel_runs_the_functional_core(monkeypatch):
    from lava_local.functional.tp import tp_contrastive_signal

    g = torch.Generator().manual_seed(0)
    e = torch.rand(6, 8, generator=g)[:, ::2]      # strided: not the kernel's
    et, y = torch.rand(6, 4, generator=g), torch.rand(6, 6, generator=g)
    _no_kernel(monkeypatch)
    for got, want in zip(fused_contrastive_signal(e, et, y), tp_contrastive_signal(e, et, y)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_soft_targets_outside_the_kernel_run_the_functional_core(monkeypatch):
    e = torch.rand(5, 4, 3)                        # conv maps, flattened by the caller
    _no_kernel(monkeypatch)
    torch.testing.assert_close(fused_soft_targets(e.flatten(1)[:, ::2]),
                               tp_soft_targets(e.flatten(1)[:, ::2]), rtol=0, atol=0)


def test_a_fused_surrogate_pickles_and_keeps_its_values():
    import pickle

    u = _membranes(torch.float32, seed=4)
    psi = fused_surrogate("fast_sigmoid_sq")
    again = pickle.loads(pickle.dumps(psi))
    torch.testing.assert_close(again(u, 0.5), psi(u, 0.5), rtol=0, atol=0)
