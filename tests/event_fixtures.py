"""Write tiny event data sets in their real on-disk formats (what tonic extracts)."""

from pathlib import Path

import numpy as np


def nmnist_bytes(x, y, t_us, p) -> bytes:
    """N-MNIST binary: 5 bytes per event — x, y, p<<7 | t[22:16], t[15:8], t[7:0]."""
    x, y, t, p = (np.asarray(v, dtype=np.uint32) for v in (x, y, t_us, p))
    raw = np.zeros((len(x), 5), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = (p << 7) | ((t >> 16) & 127)
    raw[:, 3] = (t >> 8) & 255
    raw[:, 4] = t & 255
    return raw.tobytes()


def write_nmnist(root: Path, split: str, samples) -> list[Path]:
    """``samples``: list of (x, y, t_us, p, label)."""
    folder = Path(root) / "NMNIST" / ("Train" if split == "train" else "Test")
    paths = []
    for i, (x, y, t, p, label) in enumerate(samples):
        d = folder / str(label)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{i:05d}.bin"
        path.write_bytes(nmnist_bytes(x, y, t, p))
        paths.append(path)
    return paths


def write_hsd(root: Path, name: str, split: str, samples, n_keys: int) -> Path:
    """SHD/SSC HDF5: spikes/times (vlen float, s), spikes/units (vlen uint16), labels,
    extra/keys, extra/speaker. ``samples``: list of (times_s, units, label)."""
    import h5py

    folder = Path(root) / name.upper()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{split}.h5"
    with h5py.File(path, "w") as f:
        vt = h5py.vlen_dtype(np.dtype("float32"))
        vu = h5py.vlen_dtype(np.dtype("uint16"))
        times = f.create_dataset("spikes/times", (len(samples),), dtype=vt)
        units = f.create_dataset("spikes/units", (len(samples),), dtype=vu)
        for i, (t, u, _) in enumerate(samples):
            times[i] = np.asarray(t, dtype=np.float32)
            units[i] = np.asarray(u, dtype=np.uint16)
        f["labels"] = np.array([s[2] for s in samples], dtype=np.uint16)
        f["extra/keys"] = np.array([f"k{i}".encode() for i in range(n_keys)])
        f["extra/speaker"] = np.zeros(len(samples), dtype=np.uint16)
    return path


def write_dvsgesture(root: Path, split: str, samples) -> list[Path]:
    """tonic's DVS Gesture: <folder>/user<NN>_<lighting>/<label>.npy, float arrays with
    columns x, y, p, t[ms]. ``samples``: list of (x, y, p, t_ms, label, user)."""
    folder = Path(root) / "DVSGesture" / ("ibmGestureTrain" if split == "train"
                                          else "ibmGestureTest")
    paths = []
    for x, y, p, t, label, user in samples:
        d = folder / f"user{user:02d}_fluorescent"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{label}.npy"
        np.save(path, np.stack([x, y, p, t], axis=1).astype(np.float64))
        paths.append(path)
    return paths
