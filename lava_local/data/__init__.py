"""Data sets as time-first spike trains ``(T, features)`` per sample."""

from __future__ import annotations

from .digits import ENCODINGS, SpikeDataset, load_digits_spikes

DATASETS = ("digits",)


def load_dataset(name: str, split: str, **options) -> SpikeDataset:
    """Load data set ``name`` (one of :data:`DATASETS`) for ``split`` ("train"/"test")."""
    if name == "digits":
        return load_digits_spikes(split, **options)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


__all__ = ["DATASETS", "ENCODINGS", "SpikeDataset", "load_dataset", "load_digits_spikes"]
