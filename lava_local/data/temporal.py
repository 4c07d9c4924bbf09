"""An embedded temporal task: the class is in the *order and timing* of two spike
patterns, not in spike rates.

K fixed spike patterns (each: every channel fires with probability 1/2 at a fixed offset
inside a burst of ``burst`` steps) are drawn once from a fixed task seed. A sample shows
pattern a in a first burst, then, after a silent gap, pattern b in a second burst; its
class is (b - a) mod K. The samples (a, b) and (b, a) have the same spike count on every
channel, so the classes cannot be told apart from rates: the network must remember the
first pattern across the gap and relate it to the second (temporal credit assignment).
Timing jitter (uniform in [-J, J]) and Bernoulli noise spikes are added.

Defaults: 40 channels, T = 40 steps, K = 4 classes (chance 25%), bursts at steps
[4, 12) and [24, 32), 1,000 train / 300 test samples, jitter 1 step, noise 0.01.
Nothing is downloaded; generation is seeded.
"""

from __future__ import annotations

import numpy as np

from .digits import SPLITS, SpikeDataset

_TASK_SEED = 2024  # the patterns never change


def temporal_patterns(n_classes: int, n_channels: int, burst: int) -> np.ndarray:
    """Pattern offsets (K, n_channels): the step within a burst at which each channel
    fires, -1 for silent channels (fixed seed)."""
    rng = np.random.default_rng([_TASK_SEED, n_classes, n_channels, burst])
    offsets = rng.integers(0, burst, size=(n_classes, n_channels))
    return np.where(rng.random((n_classes, n_channels)) < 0.5, offsets, -1)


def load_temporal_spikes(split: str = "train", n_steps: int = 40, n_channels: int = 40,
                         n_classes: int = 4, n_samples: int | None = None, jitter: int = 1,
                         noise: float = 0.01, seed: int = 0) -> SpikeDataset:
    """Generate the ``split`` of the temporal task (see module doc).

    Parameters
    ----------
    split : {"train", "test"}
    n_steps : int
        T >= 20; bursts start at T/10 and T/10 + T/2 and last T/5 steps.
    n_channels : int
    n_classes : int
        K >= 2 (number of patterns = number of classes).
    n_samples : int, optional
        Default 1,000 (train) / 300 (test).
    jitter : int
        Maximal timing jitter J in steps (>= 0).
    noise : float
        Probability of a noise spike per channel and step, in [0, 1).
    seed : int
        Seed of the samples (pattern pairs, jitter, noise); the patterns do not depend
        on it.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 20:
        raise ValueError(f"the temporal task needs T >= 20 steps, got {n_steps!r}")
    if jitter < 0 or not 0.0 <= noise < 1.0:
        raise ValueError("jitter must be >= 0 and noise in [0, 1)")
    if n_classes < 2 or n_channels < 1:
        raise ValueError("the temporal task needs >= 2 classes and >= 1 channel")
    n = n_samples if n_samples is not None else (1000 if split == "train" else 300)
    burst = max(2, n_steps // 5)
    starts = (n_steps // 10, n_steps // 10 + n_steps // 2)
    pat = temporal_patterns(n_classes, n_channels, burst)
    rng = np.random.default_rng([seed, SPLITS.index(split), 17])
    a = rng.integers(0, n_classes, n)
    b = rng.integers(0, n_classes, n)
    labels = (b - a) % n_classes
    spikes = (rng.random((n, n_steps, n_channels)) < noise).astype(np.uint8)
    for which, start in zip((a, b), starts):
        off = pat[which]                                   # (n, channels)
        t = start + off + rng.integers(-jitter, jitter + 1, size=off.shape)
        t = np.clip(t, 0, n_steps - 1)
        rows, cols = np.nonzero(off >= 0)
        spikes[rows, t[rows, cols], cols] = 1
    return SpikeDataset(spikes, labels.astype(np.int64), n_classes, "temporal")
