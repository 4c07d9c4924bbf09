"""Learning-state memory and MACs: the papers' formulas, and measurements of a real step.

Analytic (S-TLLR paper, batch 1, values per sample; L layers of widths N_1..N_L, the
readout included, N_0 the inputs):

.. math::

    \\mathrm{Mem}_{BPTT} = T \\sum_l N_l \\qquad \\mathrm{Mem}_{S\\text{-}TLLR} = 2 \\sum_l N_l

    \\mathrm{MAC}_{BPTT} = 2 T \\sum_l N_l N_{l-1} \\qquad
    \\mathrm{MAC}_{S\\text{-}TLLR} = 3 (T - T_l) \\sum_l N_l N_{l-1}

(the MAC formulas count the learning part: BPTT's backward pass, S-TLLR's trace
products; the forward pass, T Σ N_l N_{l-1}, is common to both and not included).
Every rule's own formulas are part of its registry entry (``lava-local rules`` lists
them).

Measured:

- learning-state bytes: the peak, over one training step, of the bytes autograd keeps
  for the backward pass (captured by ``torch.autograd.graph.saved_tensors_hooks``,
  counted once per storage, parameters and the input batch excluded) plus the explicit
  state a rule carries across steps (S-TLLR's traces, reported by the trainer);
- MACs: every matrix product and convolution the step executes, forward, backward and
  update, counted by ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2);
- on CUDA also ``torch.cuda.max_memory_allocated`` over the step (all tensors).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

BYTES_PER_VALUE = 4  # float32


def analytic_memory_values(rule: str, layer_sizes: list[int], n_steps: int, params=None,
                           recurrent: bool = False) -> int:
    """Learning-state values per sample from rule ``rule``'s formula (its registry
    entry, :meth:`lava_local.rules.Rule.memory_values`; ``params``: its defaults)."""
    from ..rules import Costs, get

    r = get(rule)
    return r.memory_values(Costs(layer_sizes, n_steps, 0, recurrent),
                           params if params is not None else r.Params())


def analytic_macs(rule: str, layer_sizes: list[int], n_steps: int, t_l: int = 0,
                  forward_macs: list[int] | None = None, params=None) -> int:
    """Learning MACs per sample from rule ``rule``'s formula (its registry entry;
    ``forward_macs`` per weight layer replaces Σ N_l N_{l-1} for conv nets)."""
    from ..rules import Costs, get

    r = get(rule)
    return r.learning_macs(Costs(layer_sizes, n_steps, t_l, False, forward_macs),
                           params if params is not None else r.Params())


class _Saved:
    """Handle that autograd stores instead of a saved tensor; its death frees the bytes."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


class LearningStateMeter:
    """Track the peak learning-state bytes of a training step.

    Use as a context manager around ``trainer.train_batch(x, y, meter=meter)``.

    Parameters
    ----------
    exclude : list of torch.Tensor
        Tensors whose storages are not learning state (parameters, the input batch).
    """

    def __init__(self, exclude: list[torch.Tensor]):
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self._refs: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        self._state: dict[str, int] = {}
        self.saved_bytes = 0
        self.peak_bytes = 0
        self.peak_saved_bytes = 0
        self._hooks = None

    # -- explicit state ---------------------------------------------------------------
    def set_state(self, name: str, tensors: list[torch.Tensor]) -> None:
        """Declare the explicit state ``name`` a rule carries across steps right now."""
        self._state[name] = sum(t.numel() * t.element_size() for t in tensors)
        self._update_peak()

    @property
    def state_bytes(self) -> int:
        return sum(self._state.values())

    # -- autograd saved tensors -------------------------------------------------------
    def _pack(self, t: torch.Tensor):
        key = t.untyped_storage().data_ptr()
        if key in self._exclude or t.untyped_storage().nbytes() == 0:
            return t
        if self._refs.get(key, 0) == 0:
            self._sizes[key] = t.untyped_storage().nbytes()
            self.saved_bytes += self._sizes[key]
            self._update_peak()
        self._refs[key] = self._refs.get(key, 0) + 1
        handle = _Saved(t)
        weakref.finalize(handle, self._release, key)
        return handle

    def _release(self, key: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.saved_bytes -= self._sizes.pop(key)

    @staticmethod
    def _unpack(h):
        return h.tensor if isinstance(h, _Saved) else h

    def _update_peak(self) -> None:
        self.peak_saved_bytes = max(self.peak_saved_bytes, self.saved_bytes)
        self.peak_bytes = max(self.peak_bytes, self.saved_bytes + self.state_bytes)

    def __enter__(self) -> LearningStateMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


@dataclass(frozen=True)
class StepCost:
    """Measured cost of one training step on one batch."""

    batch: int
    learning_state_bytes: int          # peak saved-for-backward + explicit state
    saved_for_backward_bytes: int      # the autograd part alone
    macs: int                          # all matmul/conv MACs of the step
    cuda_peak_bytes: int | None        # torch.cuda.max_memory_allocated over the step

    @property
    def learning_state_bytes_per_sample(self) -> float:
        return self.learning_state_bytes / self.batch

    @property
    def macs_per_sample(self) -> float:
        return self.macs / self.batch


def _addmm_inplace_flops(acc, a, b, *args, out=None, **kwargs) -> int:
    """FLOPs of ``acc.addmm_(a, b)`` (the trainers' fused gradient accumulation), which
    torch's FlopCounterMode does not count by itself."""
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


_addmm_inplace_flops._get_raw = True


def measure_step(trainer, x: torch.Tensor, labels: torch.Tensor) -> StepCost:
    """Run one real training step of ``trainer`` on ``(x, labels)`` and measure it.

    Memory and MACs are measured in two real runs of the step; the weights and the
    optimiser state are restored after each, so the trainer is left as it was.
    """
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    model, opt = trainer.model, trainer.optimizer
    extra = getattr(trainer, "state_dict", None)
    w0 = copy.deepcopy(model.state_dict())
    o0 = copy.deepcopy(opt.state_dict())
    e0 = copy.deepcopy(extra()) if extra else None

    def restore():
        model.load_state_dict(w0)
        opt.load_state_dict(o0)
        if e0 is not None:
            trainer.load_state_dict(copy.deepcopy(e0))

    cuda = x.is_cuda
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(x.device)
        base = torch.cuda.memory_allocated(x.device)
    params = trainer.parameters() if hasattr(trainer, "parameters") else model.parameters()
    meter = LearningStateMeter(exclude=[*params, x])
    with meter:
        trainer.train_batch(x, labels, meter=meter)
    cuda_peak = None
    if cuda:
        torch.cuda.synchronize()
        cuda_peak = torch.cuda.max_memory_allocated(x.device) - base
    restore()
    counter = FlopCounterMode(display=False,
                              custom_mapping={torch.ops.aten.addmm_: _addmm_inplace_flops})
    with counter:
        trainer.train_batch(x, labels)
    restore()
    return StepCost(
        batch=int(x.shape[1]),
        learning_state_bytes=meter.peak_bytes,
        saved_for_backward_bytes=meter.peak_saved_bytes,
        macs=counter.get_total_flops() // 2,
        cuda_peak_bytes=cuda_peak,
    )
