"""The embedded default data set: scikit-learn's handwritten digits as spike trains.

1,797 grey-level 8×8 images (values 0..16) ship inside scikit-learn, so nothing is
downloaded. Each image becomes 64 input channels over ``T`` steps, time-first
``(T, 64)`` per sample, with one of two encodings:

``rate``
    Bernoulli spikes, :math:`P(x_j[t] = 1) = g \\cdot p_j` with :math:`p_j` = pixel / 16
    and gain ``g`` (``rate_gain``, default 1).
``latency``
    One spike per non-zero pixel at step :math:`t_j = \\mathrm{round}((1 - p_j)(T - 1))`:
    brighter pixels fire earlier; black pixels never fire.

The train/test split is fixed (stratified 80/20, independent of the seed): 1,437 train
and 360 test samples. The seed only drives the rate encoding's randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENCODINGS = ("rate", "latency")
SPLITS = ("train", "test")
N_CLASSES = 10
N_INPUTS = 64
_SPLIT_SEED = 0  # the split never changes; do not tie it to the training seed


@dataclass(frozen=True)
class SpikeDataset:
    """An in-memory spike data set, time-first.

    Attributes
    ----------
    spikes : numpy.ndarray, uint8, shape (N, T, n_inputs)
    labels : numpy.ndarray, int64, shape (N,)
    n_classes : int
    name : str
    """

    spikes: np.ndarray
    labels: np.ndarray
    n_classes: int
    name: str
    frame_shape: tuple[int, ...] | None = None  # (C, H, W) of a frame, for conv nets

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """Return ``(spikes (T, n_inputs) float32, label)`` of sample ``i``."""
        return self.spikes[i].astype(np.float32), int(self.labels[i])

    @property
    def n_steps(self) -> int:
        return int(self.spikes.shape[1])

    @property
    def n_inputs(self) -> int:
        return int(self.spikes.shape[2])


def encode_rate(intensity: np.ndarray, n_steps: int, rng: np.random.Generator,
                gain: float = 1.0) -> np.ndarray:
    """Bernoulli rate code of ``intensity`` in [0, 1], shape (N, F) -> (N, T, F) uint8."""
    p = np.clip(gain * intensity, 0.0, 1.0)
    u = rng.random((intensity.shape[0], n_steps, intensity.shape[1]))
    return (u < p[:, None, :]).astype(np.uint8)


def encode_latency(intensity: np.ndarray, n_steps: int) -> np.ndarray:
    """Time-to-first-spike code of ``intensity`` in [0, 1], shape (N, F) -> (N, T, F)."""
    n, f = intensity.shape
    out = np.zeros((n, n_steps, f), dtype=np.uint8)
    t_spike = np.rint((1.0 - intensity) * (n_steps - 1)).astype(np.int64)
    rows, cols = np.nonzero(intensity > 0)
    out[rows, t_spike[rows, cols], cols] = 1
    return out


def _split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(labels.shape[0])
    train, test = train_test_split(
        idx, test_size=0.2, random_state=_SPLIT_SEED, stratify=labels
    )
    return {"train": np.sort(train), "test": np.sort(test)}


def load_digits_spikes(
    split: str = "train",
    n_steps: int = 20,
    encoding: str = "rate",
    seed: int = 0,
    rate_gain: float = 1.0,
) -> SpikeDataset:
    """Load the digits split ``split`` encoded into ``n_steps`` spike steps.

    Parameters
    ----------
    split : {"train", "test"}
    n_steps : int
        Number of time steps T, >= 1.
    encoding : {"rate", "latency"}
    seed : int
        Seed of the rate encoding (the split does not depend on it).
    rate_gain : float
        Spike probability of a full-intensity pixel per step (rate encoding), in (0, 1].

    Returns
    -------
    SpikeDataset
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; use one of {ENCODINGS}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"the number of time steps T must be a positive integer, got {n_steps!r}")
    if not 0.0 < rate_gain <= 1.0:
        raise ValueError(f"rate_gain must be in (0, 1], got {rate_gain}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    labels = digits.target.astype(np.int64)
    idx = _split_indices(labels)[split]
    intensity = digits.data[idx].astype(np.float64) / 16.0
    if encoding == "rate":
        rng = np.random.default_rng([seed, SPLITS.index(split)])
        spikes = encode_rate(intensity, n_steps, rng, rate_gain)
    else:
        spikes = encode_latency(intensity, n_steps)
    return SpikeDataset(spikes, labels[idx], N_CLASSES, f"digits-{encoding}", (1, 8, 8))
