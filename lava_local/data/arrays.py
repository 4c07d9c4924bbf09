"""Your own spike data: numpy arrays in memory, or an ``.npz`` file on disk.

>>> import lava_local as ll
>>> train = ll.data.from_arrays(x_train, y_train)     # x: (N, T, F) spikes in {0, 1}
>>> test = ll.data.from_arrays(x_test, y_test, n_classes=train.n_classes)

On the command line, ``lava-local train --data my.npz`` reads arrays ``x``, ``y`` (the
training split) and, optionally, ``x_test``, ``y_test``; without them a fixed 20% of the
samples (every fifth, after a seeded shuffle that depends only on N) is held out as the
test split. Real-valued inputs are encoded first, e.g. with
:func:`~lava_local.data.digits.encode_rate`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .digits import SpikeDataset

#: The split of an ``.npz`` file without ``x_test``/``y_test``: every fifth sample of a
#: permutation seeded by this and N.
_HOLDOUT_SEED = 20261128


def from_arrays(x, y, n_classes: int | None = None, name: str = "arrays") -> SpikeDataset:
    """A spike data set from arrays.

    Parameters
    ----------
    x : array_like, shape (N, T, F)
        Spikes, each 0 or 1 (bool or any numeric type), time-first per sample.
    y : array_like of int, shape (N,)
        Labels in ``[0, n_classes)``.
    n_classes : int, optional
        Number of classes (default ``max(y) + 1``; give it when a split may miss the
        last classes).
    name : str
        Shown in results and plots.

    Returns
    -------
    SpikeDataset
        Spikes stored as uint8; ``ds[i]`` is ``(spikes (T, F) float32, label)``.

    Raises
    ------
    ValueError
        Wrong shapes, values other than 0/1, NaN/inf, labels out of range; the message
        names the fix.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, F) — samples, time steps, features; got "
                         f"shape {x.shape}" + (" (add a time axis: x[:, None, :] for one "
                                               "step)" if x.ndim == 2 else ""))
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape (N,) = ({x.shape[0]},) to match x; got {y.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"x is empty (shape {x.shape})")
    if x.dtype != bool:
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"x must be numeric spikes, got dtype {x.dtype}")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise ValueError("x holds NaN or inf values; spikes must be 0 or 1")
        if not np.isin(x, (0, 1)).all():
            raise ValueError("x must hold spikes, 0 or 1; encode real-valued inputs first "
                             "(e.g. lava_local.data.digits.encode_rate) or binarise them "
                             "(x > threshold)")
    if not (np.issubdtype(y.dtype, np.integer) or
            (np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all()
             and (y == np.round(y)).all())):
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"labels must be >= 0, got {y.min()}")
    c = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if c < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got n_classes={c}")
    if y.max() >= c:
        raise ValueError(f"label {y.max()} is out of range for n_classes={c}")
    return SpikeDataset(x.astype(np.uint8), y, c, name)


def load_npz(path, split: str, n_steps: int | None = None) -> SpikeDataset:
    """Split ``split`` ("train"/"test") of an ``.npz`` file (see module doc);
    ``n_steps``, if given, must equal the file's T."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"no data file {path}" + (" (it is a folder; give the .npz file)"
                                                  if path.is_dir() else ""))
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:      # zip/format errors of a file that is not an .npz
        raise ValueError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}); "
                         "write one with numpy.savez(path, x=..., y=...)") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks array(s) {missing}; it needs x (N, T, F) spikes and "
                         f"y (N,) labels, optionally x_test and y_test (has: "
                         f"{sorted(arrays)})")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{path} has only one of x_test, y_test; give both or neither")
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise ValueError(f"{path}: x has {len(x)} samples, y {len(y)}")
    if "x_test" in arrays:
        xt, yt = arrays["x_test"], arrays["y_test"]
    else:
        order = np.random.default_rng([_HOLDOUT_SEED, len(y)]).permutation(len(y))
        test = np.zeros(len(y), dtype=bool)
        test[order[::5]] = True
        x, y, xt, yt = x[~test], y[~test], x[test], y[test]
    c = int(max(np.max(y), np.max(yt))) + 1 if len(y) and len(yt) else None
    name = path.stem
    ds = from_arrays(x, y, c, name) if split == "train" else from_arrays(xt, yt, c, name)
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; use train or test")
    if n_steps is not None and n_steps != ds.n_steps:
        raise ValueError(f"{path} has T = {ds.n_steps} time steps; drop --steps or give "
                         f"--steps {ds.n_steps}")
    return ds


def from_tonic(dataset, n_steps: int, n_classes: int | None = None,
               name: str | None = None, progress: bool = True) -> SpikeDataset:
    """A spike data set from any tonic data set (or anything indexable like one).

    Each item ``(data, label)`` is either raw events (a structured array with fields
    ``x``, ``t``, ``p`` and, for 2-D sensors, ``y``: binned into ``n_steps`` frames with
    ``tonic.transforms.ToFrame(dataset.sensor_size, n_time_bins=n_steps)``) or frames
    already (an array ``(T, ...)`` from the data set's own transform, with T =
    ``n_steps``). A frame's counts become spikes (count > 0), flattened to features.

    Parameters
    ----------
    dataset : tonic.Dataset, torch Dataset or any sequence of (data, label)
        Raw events need ``dataset.sensor_size``; frames may be numpy arrays or torch
        tensors (e.g. a ``torch.utils.data.TensorDataset`` of (N, T, F) spikes).
    n_steps : int
        Time steps T per sample.
    n_classes : int, optional
        Default: ``len(dataset.classes)`` if the data set has it, else max label + 1.
    name : str, optional
        Default: the data set's class name.

    Returns
    -------
    SpikeDataset
        Every sample in memory (N × T × features bytes); for the large event data sets
        use the built-in lazy loaders (``lava-local data list``).
    """
    from tqdm.auto import tqdm

    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    to_frame = None
    xs, ys = [], []
    for i in tqdm(range(len(dataset)), desc="tonic → spikes", disable=not progress):
        data, label = dataset[i]
        data = np.asarray(data)
        if data.dtype.names is not None:            # raw events
            if to_frame is None:
                sensor = getattr(dataset, "sensor_size", None)
                if sensor is None:
                    raise ValueError("raw events need the data set's sensor_size (tonic "
                                     "data sets have it); or give frames with a transform")
                from tonic.transforms import ToFrame

                to_frame = ToFrame(sensor_size=tuple(sensor), n_time_bins=n_steps)
            missing = {"x", "t", "p"} - set(data.dtype.names)
            if missing:
                raise ValueError(f"sample {i}: events without field(s) {sorted(missing)}")
            data = to_frame(data)
        if data.ndim < 2 or data.shape[0] != n_steps:
            raise ValueError(f"sample {i} has shape {data.shape}; frames must be (T={n_steps}, "
                             "...) — let tonic bin the raw events, or use ToFrame("
                             f"n_time_bins={n_steps})")
        xs.append((data.reshape(n_steps, -1) > 0).astype(np.uint8))
        ys.append(int(np.asarray(label).reshape(-1)[0]))
    if not xs:
        raise ValueError("the data set is empty")
    if len({x.shape[1] for x in xs}) > 1:
        raise ValueError("the samples have different numbers of features; give every "
                         "sample the same sensor size")
    if n_classes is None and getattr(dataset, "classes", None) is not None:
        n_classes = len(dataset.classes)
    return from_arrays(np.stack(xs), np.asarray(ys), n_classes,
                       name or type(dataset).__name__)
