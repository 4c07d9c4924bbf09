"""Data sets as time-first spike trains ``(T, features)`` per sample."""

from __future__ import annotations

from .digits import ENCODINGS, SpikeDataset, load_digits_spikes
from .temporal import load_temporal_spikes

DATASETS = ("digits", "temporal", "nmnist", "shd", "ssc", "dvsgesture", "ncaltech101",
            "cifar10dvs", "gsc", "npz", "arrays")
EVENT_DATASETS = ("nmnist", "shd", "ssc", "dvsgesture", "ncaltech101", "cifar10dvs")


def load_dataset(name: str, split: str, root=None, **options):
    """Load data set ``name`` (one of :data:`DATASETS`) for ``split`` ("train"/"test").

    ``encoding`` applies to the digits only (the temporal task and the event data sets
    are their own spike code and accept only the default; ``exclude_speaker`` applies to
    ``gsc`` only). The event data sets
    (:mod:`lava_local.data.events`) need ``root`` and are read lazily, sample by sample.
    ``npz`` is your own file (``root`` = the file; :mod:`lava_local.data.arrays`);
    ``arrays`` names data given in Python, which cannot be loaded by name.
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
    if name == "npz":
        from .arrays import load_npz

        if options.pop("encoding", "rate") != "rate":
            raise ValueError("an .npz file holds spikes already; drop --encoding")
        if root is None:
            raise ValueError("--dataset npz needs the file: --data FILE.npz")
        return load_npz(root, split, n_steps=options.pop("n_steps", None))
    if name == "arrays":
        raise ValueError("this run was trained on arrays given in Python, which were not "
                         "saved with it: pass the data (lava_local.run_on_lava(run, data)), "
                         "or save them with numpy.savez(FILE, x=, y=, x_test=, y_test=) and "
                         "use --data FILE.npz")
    if name == "digits":
        return load_digits_spikes(split, **options)
    if name == "temporal":
        enc = options.pop("encoding", "rate")
        if enc != "rate":
            raise ValueError("the temporal task has its own spike code; drop --encoding")
        return load_temporal_spikes(split, **options)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


from .arrays import from_arrays, from_tonic, load_npz  # noqa: E402
from .digits import encode_latency, encode_rate  # noqa: E402

__all__ = ["DATASETS", "ENCODINGS", "SpikeDataset", "encode_latency", "encode_rate",
           "from_arrays", "from_tonic", "load_dataset", "load_digits_spikes", "load_npz",
           "load_temporal_spikes"]
