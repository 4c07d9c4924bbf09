"""Faster ProcessModels for Lava's ``Conv`` (same results).

Lava 0.10's ``Conv`` models convolve with scipy, one input/output channel pair at a time
(its torch path is switched off), which makes a conv layer the slowest Process of a
graph. These models compute the same true convolution with torch's ``conv2d`` in float64
— exact for the fixed model's integers (every sum is an integer far below 2^53), equal
to rounding for the float model — and keep Lava's buffering and 24-bit clamp. Select them
with ``exception_proc_model_map`` (:func:`fast_conv_models`).
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv.models import PyConvModelFixed, PyConvModelFloat
from lava.proc.conv.process import Conv


def conv_torch(x: np.ndarray, weight: np.ndarray, stride, padding, dilation,
               groups: int) -> np.ndarray:
    """Lava's convolution (X, Y, C) ⊛ (C_out, kx, ky, C_in) with torch, in float64."""
    import torch
    import torch.nn.functional as F

    if torch.get_num_threads() != 1:
        # a forked Lava worker must not use the parent's (copied, dead) thread pool
        torch.set_num_threads(1)
    inp = torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.float64)
                                                .transpose(2, 1, 0)))[None]
    ker = torch.from_numpy(np.ascontiguousarray(
        np.asarray(weight, dtype=np.float64)[:, ::-1, ::-1].transpose(0, 3, 2, 1)))
    out = F.conv2d(inp, ker, stride=tuple(int(v) for v in stride[::-1]),
                   padding=tuple(int(v) for v in padding[::-1]),
                   dilation=tuple(int(v) for v in dilation[::-1]), groups=int(groups))
    return out[0].numpy().transpose(2, 1, 0)


class _FastConv:
    def run_spk(self) -> None:
        if self.a_buf is None:
            self.a_buf = np.zeros(self.a_out.shape)
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv()
        if self.num_message_bits.item() == 0:
            s_in = s_in.astype(bool)
        out = conv_torch(s_in, self.weight, self.stride, self.padding, self.dilation,
                         self.groups[0])
        self.a_buf = self.clamp_precision(self._cast(out))


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class FastConvModelFloat(_FastConv, PyConvModelFloat):
    """``PyConvModelFloat`` with torch's convolution."""

    def _cast(self, out: np.ndarray) -> np.ndarray:
        return out


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class FastConvModelFixed(_FastConv, PyConvModelFixed):
    """``PyConvModelFixed`` with torch's convolution (exact integer sums)."""

    def _cast(self, out: np.ndarray) -> np.ndarray:
        return np.rint(out).astype(np.int64)


def fast_conv_models(backend: str) -> dict:
    """``exception_proc_model_map`` entry selecting the fast model for a backend."""
    if backend == "sim-float":
        return {Conv: FastConvModelFloat}
    if backend == "sim-fixed":
        return {Conv: FastConvModelFixed}
    return {}
