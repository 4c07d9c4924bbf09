"""Data sets as time-first spike trains ``(T, features)`` per sample."""

from __future__ import annotations

from .digits import ENCODINGS, SpikeDataset, load_digits_spikes
from .temporal import load_temporal_spikes

DATASETS = ("digits", "temporal", "nmnist", "shd", "ssc", "dvsgesture", "ncaltech101",
            "cifar10dvs", "gsc")
EVENT_DATASETS = ("nmnist", "shd", "ssc", "dvsgesture", "ncaltech101", "cifar10dvs")


def load_dataset(name: str, split: str, root=None, **options):
    """Load data set ``name`` (one of :data:`DATASETS`) for ``split`` ("train"/"test").

    ``encoding`` applies to the digits only (the temporal task and the event data sets
    are their own spike code and accept only the default; ``exclude_speaker`` applies to
    ``gsc`` only). The event data sets
    (:mod:`lava_local.data.events`) need ``root`` and are read lazily, sample by sample.
    """
    if name == "gsc":
        from .speech import SpeechCommandsFeatures

        if options.pop("encoding", "rate") != "rate":
            raise ValueError("gsc is audio features; drop --encoding")
        return SpeechCommandsFeatures(split, root, n_steps=options.pop("n_steps", None),
                                      exclude_speaker=options.pop("exclude_speaker", None))
    if name in EVENT_DATASETS:
        from .events import EventFrames

        if options.pop("encoding", "rate") != "rate":
            raise ValueError(f"{name} is event data; drop --encoding")
        options.pop("seed", None)
        return EventFrames(name, split, root, n_steps=options.pop("n_steps", None))
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
