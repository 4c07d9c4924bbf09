"""Learning-state memory and MAC accounting."""

import pytest
import torch

from lava_local.data import load_dataset
from lava_local.torch.accounting import (
    LearningStateMeter,
    analytic_macs,
    analytic_memory_values,
    measure_step,
)
from lava_local.torch.train import TrainConfig, build, cost_report, iterate_batches


def test_analytic_formulas_by_hand():
    sizes = [64, 128, 128, 10]          # Σ N_l = 266, Σ N_l N_{l-1} = 8192+16384+1280 = 25856
    assert analytic_memory_values("bptt", sizes, 200) == 200 * 266
    assert analytic_memory_values("stllr", sizes, 200) == 2 * 266
    assert analytic_macs("bptt", sizes, 20) == 2 * 20 * 25856
    assert analytic_macs("stllr", sizes, 20, t_l=15) == 3 * 5 * 25856
    # merged terms: one pending coefficient per hidden neuron more
    from lava_local.rules import STLLRParams, TESSParams
    assert analytic_memory_values("stllr", sizes, 200, STLLRParams(merge_terms=True)) \
        == 2 * 266 + 256
    assert analytic_memory_values("tess", sizes, 200, TESSParams(merge_terms=True)) \
        == 2 * 266 + 256
    assert analytic_memory_values("stllr", sizes, 200, STLLRParams(
        merge_terms=True, alpha_post=0.0)) == 266
    with pytest.raises(ValueError):
        analytic_macs("nope", sizes, 1)


def test_meter_counts_saved_tensors_once_and_releases_them():
    a = torch.rand(1000, requires_grad=True)          # a leaf we do not exclude
    w = torch.nn.Parameter(torch.rand(1000))
    with LearningStateMeter(exclude=[w]) as m:
        b = a * a          # saves a (twice, one storage): 4000 B
        c = (b * w).sin()  # mul saves b (4000 B) and w (excluded); sin saves b*w (4000 B)
        assert m.saved_bytes == 12000
        c.sum().backward()
        assert m.saved_bytes == 0
        m.set_state("traces", [torch.zeros(10), torch.zeros(5, dtype=torch.float64)])
    assert m.peak_saved_bytes == 12000
    assert m.state_bytes == 80
    assert m.peak_bytes == 12000


def _cost(rule, n_steps, signal="bp", **params):
    cfg = TrainConfig.from_flat(strict=False, rule=rule, n_steps=n_steps, batch_size=16,
                                signal=signal, **params)
    ds = load_dataset("digits", "train", n_steps=n_steps)
    _, _, trainer = build(cfg, ds.n_inputs, ds.n_classes, torch.device("cpu"))
    x, y = next(iterate_batches(ds, cfg.batch_size, None, torch.device("cpu")))
    return cost_report(cfg, trainer, x, y)


@pytest.mark.parametrize("signal", ["bp", "dfa"])
def test_stllr_learning_state_is_flat_in_T_and_far_below_bptt(signal):
    s10, s200 = _cost("stllr", 10, signal), _cost("stllr", 200, signal)
    assert s10["memory_measured_bytes_batch"] == s200["memory_measured_bytes_batch"] > 0
    b10, b200 = _cost("bptt", 10), _cost("bptt", 200)
    assert b200["memory_measured_bytes_batch"] > 15 * b10["memory_measured_bytes_batch"]
    assert b200["memory_measured_bytes_batch"] >= 20 * s200["memory_measured_bytes_batch"]


def test_measured_macs_match_the_operation_count():
    """Every matmul of a step, counted by hand for the 64-128-128-10 net, batch 16."""
    n_steps, b = 6, 16
    n0, n1, n2, c = 64, 128, 128, 10
    syn = n0 * n1 + n1 * n2 + n2 * c
    # BPTT: forward + weight grads (T·B·syn each) + input grads of all layers but the first
    bptt = _cost("bptt", n_steps)["macs_measured_per_sample"] * b
    assert bptt == n_steps * b * (3 * syn - n0 * n1)
    # S-TLLR (bp, α_post ≠ 0): forward, same-step input grads, two trace products per
    # hidden layer and one for the readout
    stllr = _cost("stllr", n_steps)["macs_measured_per_sample"] * b
    assert stllr == n_steps * b * (syn + (syn - n0 * n1) + 2 * (n0 * n1 + n1 * n2) + n2 * c)
    # merged terms: one product per hidden layer and step (none pending at the first
    # step, the flush at the end)
    merged = _cost("stllr", n_steps, merge_terms=True)
    assert merged["macs_measured_per_sample"] * b \
        == n_steps * b * (syn + (syn - n0 * n1) + (n0 * n1 + n1 * n2) + n2 * c)
    # and the measured state holds the pending coefficients, as the formula says
    plain = _cost("stllr", n_steps)
    assert (merged["memory_measured_bytes_per_sample"]
            - plain["memory_measured_bytes_per_sample"]) == (n1 + n2) * 4
    assert (merged["memory_analytic_bytes_per_sample"]
            - plain["memory_analytic_bytes_per_sample"]) == (n1 + n2) * 4


def test_measure_step_leaves_the_trainer_unchanged():
    cfg = TrainConfig(n_steps=5, batch_size=8)
    ds = load_dataset("digits", "train", n_steps=5)
    model, opt, trainer = build(cfg, ds.n_inputs, ds.n_classes, torch.device("cpu"))
    before = [w.detach().clone() for w in model.weights]
    x, y = next(iterate_batches(ds, 8, None, torch.device("cpu")))
    measure_step(trainer, x, y)
    for a, w in zip(before, model.weights):
        assert torch.equal(a, w.detach())
    assert not opt.state  # Adam moments untouched
