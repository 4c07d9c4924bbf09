"""Event data sets through tonic: offline construction, the papers' binning, a disk cache.

Each data set is read by tonic's own class (subclassed only so that construction never
downloads: ``lava-local data fetch`` does) from ``ROOT/<TonicClass>/`` in the layout
tonic extracts, binned into time-first spike frames ``(T, features)`` (counts clipped to
1) exactly as the batched trainer and the Lava dataloader consume them, and cached on
disk (``ROOT/.lava-local-cache/``) so later epochs do not re-bin.

Binning (from the rule specs):

- N-MNIST: first saccade (t < 100 ms), 1 ms bins, T = 100, 2×34×34 = 2312 inputs;
- SHD / SSC: 10 ms bins, T = 100, 700 channels;
- DVS Gesture: 128×128 downsampled to 32×32, T = 20 equal bins over each recording;
- N-Caltech101: recordings (up to 240×180) downsampled by 1/5 into a 48×48 frame
  (the lower rows stay empty), T = 10 equal bins; no official split: every fifth
  recording of each class (sorted by file name) is the test split;
- CIFAR10-DVS (AEDAT 4 files, read by tonic through the ``aedat`` package): 128×128
  downsampled to 48×48 (factor 3/8), T = 10 equal bins; no official split: every tenth
  recording of each class (sorted by file name) is the test split (900/100 per class).

A missing root, a wrong layout or a truncated file raises :class:`DatasetError` naming the
fetch command and the expected layout; nothing on disk is deleted or rewritten.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CACHE_DIR = ".lava-local-cache"


class DatasetError(RuntimeError):
    """A data set is missing, in the wrong layout, or unreadable."""


@dataclass(frozen=True)
class EventSpec:
    """How one event data set is found, read and binned."""

    name: str
    tonic_class: str                       # attribute of tonic.datasets
    splits: dict                           # our split -> tonic kwargs
    layout: str                            # expected files, for error messages
    size: str                              # download size, for `data list`
    sensor_size: tuple
    n_classes: int
    bin_us: float                          # bin width (µs)
    n_steps: int                           # default T
    t_max_us: float | None = None          # keep events with t < t_max (None: all)
    frame_shape: tuple = field(default=())
    spatial_factor: float = 1.0            # tonic Downsample before binning
    fixed_bins: bool = False               # T equal bins over each sample's duration

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.frame_shape))


SPECS = {
    "nmnist": EventSpec(
        "nmnist", "NMNIST", {"train": {"train": True}, "test": {"train": False}},
        "NMNIST/Train/<0..9>/*.bin and NMNIST/Test/<0..9>/*.bin (tonic's extracted layout)",
        "1.1 GB", (34, 34, 2), 10, 1000.0, 100, 100_000.0, (2, 34, 34)),
    "shd": EventSpec(
        "shd", "SHD", {"train": {"train": True}, "test": {"train": False}},
        "SHD/shd_train.h5 and SHD/shd_test.h5",
        "0.5 GB", (700, 1, 1), 20, 10_000.0, 100, None, (700,)),
    "ssc": EventSpec(
        "ssc", "SSC", {"train": {"split": "train"}, "test": {"split": "test"},
                       "valid": {"split": "valid"}},
        "SSC/ssc_train.h5, SSC/ssc_valid.h5 and SSC/ssc_test.h5",
        "2.7 GB", (700, 1, 1), 35, 10_000.0, 100, None, (700,)),
    "dvsgesture": EventSpec(
        "dvsgesture", "DVSGesture", {"train": {"train": True}, "test": {"train": False}},
        "DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy and "
        "DVSGesture/ibmGestureTest/... (tonic's preprocessed (x, y, p, t[ms]) arrays)",
        "2.4 GB", (32, 32, 2), 11, 0.0, 20, None, (2, 32, 32), 0.25, True),
    "ncaltech101": EventSpec(
        "ncaltech101", "NCALTECH101", {"train": {}, "test": {}},
        "NCALTECH101/Caltech101/<class name>/*.bin (tonic's extracted layout)",
        "2.2 GB", (48, 48, 2), 101, 0.0, 10, None, (2, 48, 48), 0.2, True),
    "cifar10dvs": EventSpec(
        "cifar10dvs", "CIFAR10DVS", {"train": {}, "test": {}},
        "CIFAR10DVS/<airplane|automobile|...|truck>/*.aedat4 (tonic's extracted layout)",
        "10k recordings", (48, 48, 2), 10, 0.0, 10, None, (2, 48, 48), 0.375, True),
}

# data sets without an official split: every ``TEST_EVERY``-th recording of each class
# (files sorted by name) is the test split
TEST_EVERY = {"ncaltech101": 5, "cifar10dvs": 10}


def _fetch_hint(name: str, root: Path) -> str:
    return f"`lava-local data fetch {name} --root {root}`"


def _check_layout(spec: EventSpec, root: Path, split: str) -> Path:
    """Validate the on-disk layout of ``split`` without reading samples."""
    if root is None:
        raise DatasetError(f"the {spec.name} data set needs --root, the folder that holds "
                           f"{spec.layout}; get it with `lava-local data fetch {spec.name} "
                           "--root DIR`")
    root = Path(root).expanduser()
    where = root / spec.tonic_class
    if not root.is_dir():
        raise DatasetError(f"data root {root} does not exist; get {spec.name} with "
                           f"{_fetch_hint(spec.name, root)} (expected: {spec.layout})")
    if spec.name in ("nmnist", "dvsgesture", "ncaltech101", "cifar10dvs"):
        sub = {"nmnist": ("Train", "Test", "*/*.bin"),
               "dvsgesture": ("ibmGestureTrain", "ibmGestureTest", "user*_*/*.npy"),
               "ncaltech101": ("Caltech101", "Caltech101", "*/*.bin"),
               "cifar10dvs": ("", "", "*/*.aedat4")}[spec.name]
        folder = where / (sub[0] if split == "train" else sub[1])
        if not any(folder.glob(sub[2])):
            raise DatasetError(f"no {spec.name} samples in {folder}; expected {spec.layout}. "
                               f"Fetch with {_fetch_hint(spec.name, root)}")
        return folder
    fname = where / f"{spec.name}_{split}.h5"
    if not fname.is_file():
        raise DatasetError(f"{fname} is missing; expected {spec.layout}. Fetch with "
                           f"{_fetch_hint(spec.name, root)}")
    try:
        import h5py

        with h5py.File(fname, "r") as f:
            for key in ("spikes/times", "spikes/units", "labels", "extra/keys"):
                f[key]
    except (OSError, KeyError) as e:
        raise DatasetError(f"{fname} is unreadable or not an SHD/SSC file ({e}); fetch it "
                           f"again with {_fetch_hint(spec.name, root)} (nothing was deleted)"
                           ) from None
    return fname


def _offline(base):
    """tonic's class, unchanged except that construction never downloads."""

    def download(self):  # noqa: ARG001
        raise DatasetError("lava-local never downloads on construction; use "
                           "`lava-local data fetch`")

    def _check_exists(self):  # the layout was validated by _check_layout
        return True

    return type(base.__name__, (base,), {"download": download, "_check_exists": _check_exists,
                                         "__module__": __name__})


def open_tonic(name: str, root: Path, split: str = "train"):
    """The tonic data set object of ``name``/``split`` under ``root`` (never downloads)."""
    import tonic

    spec = get_spec(name)
    if split not in spec.splits:
        raise ValueError(f"{name} has splits {tuple(spec.splits)}, not {split!r}")
    _check_layout(spec, root, split)
    cls = _offline(getattr(tonic.datasets, spec.tonic_class))
    return cls(str(Path(root).expanduser()), **spec.splits[split])


def get_spec(name: str) -> EventSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown event data set {name!r}; available: "
                         f"{', '.join(SPECS)}") from None


def cached_frames(cache_dir: Path | None, key, stats: dict, compute) -> np.ndarray:
    """Frames cached as ``cache_dir/<key>.npy`` (counted in ``stats``), else ``compute()``
    written there atomically. ``key``: the sample's index or a file-derived name."""
    if cache_dir is not None:
        path = cache_dir / f"{key}.npy"
        if path.is_file():
            stats["hits"] += 1
            return np.load(path)
    stats["misses"] += 1
    out = compute()
    if cache_dir is not None:
        tmp = cache_dir / f"{key}.tmp.npy"
        np.save(tmp, out)
        tmp.replace(cache_dir / f"{key}.npy")
    return out


def bin_events(events: np.ndarray, spec: EventSpec, n_steps: int) -> np.ndarray:
    """Events -> time-first binary frames (n_steps, features), uint8.

    Keeps events with t < ``t_max`` (N-MNIST's first saccade), bins them into windows of
    ``bin_us`` from t = 0 (tonic's ``ToFrame`` with fixed start and end), clips counts to 1
    and flattens each frame as (polarity/channel, y, x)."""
    from tonic.transforms import Downsample, ToFrame

    if spec.spatial_factor != 1.0:
        events = Downsample(spatial_factor=spec.spatial_factor)(events)
    if spec.fixed_bins:
        out = np.zeros((n_steps, spec.n_inputs), dtype=np.uint8)
        if len(events) == 0:
            return out
        frames = ToFrame(sensor_size=spec.sensor_size, n_time_bins=n_steps)(events)
        frames = np.asarray(frames).reshape(len(frames), -1)
        out[: len(frames)] = np.minimum(frames, 1)
        return out
    if spec.t_max_us is not None:
        events = events[events["t"] < spec.t_max_us]
    end = n_steps * spec.bin_us
    events = events[events["t"] < end]
    if len(events) == 0:
        return np.zeros((n_steps, spec.n_inputs), dtype=np.uint8)
    frames = ToFrame(sensor_size=spec.sensor_size, time_window=spec.bin_us, start_time=0,
                     end_time=end, include_incomplete=True)(events)
    frames = np.asarray(frames)[:n_steps].reshape(min(len(frames), n_steps), -1)
    out = np.zeros((n_steps, spec.n_inputs), dtype=np.uint8)
    out[: len(frames)] = np.minimum(frames, 1)
    return out


class EventFrames:
    """A binned, disk-cached event data set: ``ds[i] -> (frames (T, F) float32, label)``.

    Parameters
    ----------
    name : {"nmnist", "shd", "ssc", "dvsgesture", "ncaltech101", "cifar10dvs"}
    split : str
    root : path
        The folder given to ``lava-local data fetch``.
    n_steps : int, optional
        T (default: the paper's).
    cache : bool
        Cache binned frames under ``root/.lava-local-cache``.
    """

    def __init__(self, name: str, split: str, root, n_steps: int | None = None,
                 cache: bool = True):
        self.spec = get_spec(name)
        self.root = Path(root).expanduser() if root is not None else None
        self.split = split
        self.n_steps = int(n_steps or self.spec.n_steps)
        if self.n_steps < 1:
            raise ValueError(f"the number of time steps T must be positive, got {n_steps}")
        self._tonic = open_tonic(name, self.root, split)
        self._index = None
        if name in TEST_EVERY:
            self._index, self.labels = self._fixed_split(split, TEST_EVERY[name])
        else:
            self.labels = (np.asarray(self._tonic.targets, dtype=np.int64)
                           if name in ("nmnist", "dvsgesture") else self._h5_labels())
        self.n_classes = self.spec.n_classes
        self.name = name
        self.frame_shape = self.spec.frame_shape if len(self.spec.frame_shape) == 3 else None
        self.stats = {"hits": 0, "misses": 0}
        self.cache_dir = None
        # one file per sample (tonic's `data` holds the paths), or one HDF5 file for all
        self._files = None if name in ("shd", "ssc") else [str(p) for p in self._tonic.data]
        if cache:
            source = []       # one file holds every sample (SHD/SSC): key on its version
            if self._files is None:
                h5 = self.root / self.spec.tonic_class / f"{name}_{split}.h5"
                source = [h5.stat().st_size, h5.stat().st_mtime_ns]
            key = hashlib.sha1(json.dumps([name, split, self.n_steps, self.spec.bin_us,
                                           self.spec.t_max_us, *source]).encode())
            self.cache_dir = (self.root / CACHE_DIR /
                              f"{name}-{split}-T{self.n_steps}-{key.hexdigest()[:10]}")
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def _source(self, i: int) -> int:
        """Index in tonic's data set of our sample ``i``."""
        return int(self._index[i]) if self._index is not None else int(i)

    def _cache_key(self, i: int):
        """A sample's cache name: its file (relative to the data set folder) where each
        sample is a file, so added or removed files never shift the cache; else ``i``."""
        if self._files is None:
            return int(i)
        rel = Path(self._files[self._source(i)]).relative_to(
            self.root / self.spec.tonic_class)
        return "__".join(rel.with_suffix("").parts)

    def _fixed_split(self, split: str, every: int):
        """Fixed split: per class (sorted file names), every ``every``-th file is test.

        Labels: tonic's integer targets (CIFAR10-DVS), or the index of the class name
        among the sorted class folders (N-Caltech101, whose tonic targets are names)."""
        data, names = self._tonic.data, self._tonic.targets
        classes = sorted(set(names))
        order = sorted(range(len(data)), key=lambda i: (names[i], _natural(data[i])))
        rank: dict = {}
        index = []
        for i in order:
            r = rank.get(names[i], 0)
            rank[names[i]] = r + 1
            if (r % every == every - 1) == (split == "test"):
                index.append(i)
        labels = np.array([names[i] if isinstance(names[i], (int, np.integer))
                           else classes.index(names[i]) for i in index], dtype=np.int64)
        return np.array(index, dtype=np.int64), labels

    def _h5_labels(self) -> np.ndarray:
        import h5py

        fname = self.root / self.spec.tonic_class / f"{self.spec.name}_{self.split}.h5"
        with h5py.File(fname, "r") as f:
            return np.asarray(f["labels"][()], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_inputs(self) -> int:
        return self.spec.n_inputs

    def frames(self, i: int) -> np.ndarray:
        """Binary frames (T, F) uint8 of sample ``i`` (cached)."""
        return cached_frames(self.cache_dir, self._cache_key(i), self.stats,
                             lambda: self._bin(i))

    def _bin(self, i: int) -> np.ndarray:
        try:
            events, _ = self._tonic[self._source(i)]
        except ImportError as e:
            raise DatasetError(f"reading {self.name} needs a package that is missing ({e}); "
                               "reinstall lava-local (`uv sync`)") from None
        except (OSError, ValueError, IndexError, RuntimeError) as e:
            raise DatasetError(f"sample {i} of {self.name}/{self.split} is unreadable ({e}); "
                               f"fetch the data set again with "
                               f"{_fetch_hint(self.name, self.root)}") from None
        return bin_events(events, self.spec, self.n_steps)

    def __getitem__(self, i: int):
        return self.frames(i).astype(np.float32), int(self.labels[i])


def _natural(path) -> tuple:
    """Sort key that orders ``x_2`` before ``x_10``."""
    import re

    return tuple(int(part) if part.isdigit() else part
                 for part in re.split(r"(\d+)", str(path)))


def dataset_status(root) -> list[dict]:
    """One row per downloadable data set: name, size, expected layout, present splits."""
    from .speech import LAYOUT, SpeechCommandsFeatures

    rows = []
    for spec in SPECS.values():
        present = []
        if root is not None:
            for split in spec.splits:
                try:
                    _check_layout(spec, Path(root), split)
                    present.append(split)
                except DatasetError:
                    pass
        rows.append({"name": spec.name, "size": spec.size, "layout": spec.layout,
                     "present": present,
                     "where": str(Path(root).expanduser() / spec.tonic_class) if root else None})
    present = []
    if root is not None:
        for split in ("train", "valid", "test"):
            try:
                SpeechCommandsFeatures(split, root, cache=False)
                present.append(split)
            except DatasetError:
                pass
    rows.append({"name": "gsc", "size": "2.3 GB", "layout": LAYOUT, "present": present,
                 "where": str(Path(root).expanduser() / "SpeechCommands") if root else None})
    return rows


GSC_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"


def fetch_gsc(root) -> Path:
    """Download and extract the Speech Commands v0.02 release (progress bar)."""
    import tarfile
    import urllib.request

    from tqdm.auto import tqdm

    dest = Path(root).expanduser() / "SpeechCommands"
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "speech_commands_v0.02.tar.gz"
    if not archive.is_file():
        tmp = archive.with_suffix(".part")
        with urllib.request.urlopen(GSC_URL) as r, open(tmp, "wb") as f, tqdm(
                total=int(r.headers.get("Content-Length", 0)) or None, unit="B",
                unit_scale=True, desc="speech commands") as bar:
            while chunk := r.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
        tmp.replace(archive)
    with tarfile.open(archive) as t:
        t.extractall(dest / "speech_commands_v0.02")
    return dest


def fetch(name: str, root) -> Path:
    """Download ``name`` into ``root`` through tonic (with its progress output); the
    Speech Commands release, which tonic does not have, directly."""
    import tonic

    if name == "gsc":
        return fetch_gsc(root)
    spec = get_spec(name)
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    cls = getattr(tonic.datasets, spec.tonic_class)
    for kwargs in spec.splits.values():
        cls(str(root), **kwargs)        # tonic downloads and extracts what is missing
    return root / spec.tonic_class
