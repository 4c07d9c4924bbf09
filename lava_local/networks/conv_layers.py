"""Conv nets on the Lava graph: torch layers → Lava connections, pooling folded in.

The batched :class:`~lava_local.torch.conv.ConvSNN` average-pools a layer's *spikes*
(2×2, or k×k for stacked poolings) before the next layer. Pooling and the next layer's
weights are both linear, so on the graph they are one connection fed by the unpooled
spikes — the same numbers, no graded messages:

- pooling then a 3×3 convolution (padding 1) = one convolution with a 3k×3k kernel
  ``K'[o, i, k·a + r, k·b + s] = K[o, i, a, b] / k²``, stride k, padding k (Lava's
  ``Conv``);
- pooling, flattening and a dense layer = one ``Dense`` with ``W' = W P``, P the pooling
  matrix (every unpooled position of a pooling cell gets the cell's weight / k²).

Layouts: torch maps are (C, H, W) and flatten as c·H·W + h·W + w; Lava's ``Conv`` works
on (X, Y, C) = (W, H, C) maps, flattens them as x·Y·C + y·C + c, takes kernels as
(C_out, kx, ky, C_in) and computes a true convolution (the kernel is flipped against
torch's correlation).
"""

from __future__ import annotations

import numpy as np


def map_order(shape: tuple[int, int, int]) -> np.ndarray:
    """For a torch map of ``shape`` (C, H, W): the torch flat index of each Lava flat
    index (Lava order x, y, c)."""
    c, h, w = shape
    x, y, ch = np.meshgrid(np.arange(w), np.arange(h), np.arange(c), indexing="ij")
    return (ch * h * w + y * w + x).ravel()


def lava_conv(kernel: np.ndarray, pool: int) -> dict:
    """A torch 3×3 kernel (C_out, C_in, 3, 3) behind a k×k average pooling of its input
    as one Lava ``Conv``: weight (C_out, kx, ky, C_in), kernel size, stride, padding."""
    k = int(pool)
    kern = np.asarray(kernel, dtype=np.float64)
    if k > 1:
        kern = np.repeat(np.repeat(kern, k, axis=2), k, axis=3) / (k * k)
    weight = np.ascontiguousarray(kern[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
    size = kern.shape[2]
    return {"weight": weight, "kernel_size": (size, size), "stride": (k, k), "padding": (k, k)}


def dense_from_map(weight: np.ndarray, shape: tuple[int, int, int], pool: int) -> np.ndarray:
    """A dense layer's weights (N_out, C·(H/k)·(W/k)) behind a k×k pooling of a (C, H, W)
    map, as weights on the unpooled map in Lava order (N_out, W·H·C)."""
    c, h, w = shape
    k = int(pool)
    wt = np.asarray(weight, dtype=np.float64).reshape(-1, c, h // k, w // k)
    if k > 1:
        wt = np.repeat(np.repeat(wt, k, axis=2), k, axis=3) / (k * k)
    return wt.reshape(wt.shape[0], -1)[:, map_order(shape)]


def dense_to_torch(weight: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of :func:`dense_from_map` for an unpooled map (a permutation)."""
    out = np.empty_like(np.asarray(weight, dtype=np.float64))
    out[:, map_order(shape)] = weight
    return out


def frames_to_lava(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Time-first frames (T, C·H·W) in torch order → (T, W·H·C) in Lava order."""
    return np.ascontiguousarray(np.asarray(x)[:, map_order(shape)])


def lava_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(C, H, W) → Lava's (X, Y, C)."""
    c, h, w = shape
    return (w, h, c)
