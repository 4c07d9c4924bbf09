"""Data sets as time-first spike trains ``(T, features)`` per sample."""

from __future__ import annotations

from .digits import ENCODINGS, SpikeDataset, load_digits_spikes
from .temporal import load_temporal_spikes

DATASETS = ("digits", "temporal")


def load_dataset(name: str, split: str, **options) -> SpikeDataset:
    """Load data set ``name`` (one of :data:`DATASETS`) for ``split`` ("train"/"test").

    ``encoding`` applies to the digits only (the temporal task is its own spike code and
    accepts only the default).
    """
    if name == "digits":
        return load_digits_spikes(split, **options)
    if name == "temporal":
        enc = options.pop("encoding", "rate")
        if enc != "rate":
            raise ValueError("the temporal task has its own spike code; drop --encoding")
        return load_temporal_spikes(split, **options)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


__all__ = ["DATASETS", "ENCODINGS", "SpikeDataset", "load_dataset", "load_digits_spikes",
           "load_temporal_spikes"]
