"""Write small event data sets in their real on-disk formats (the layouts tonic extracts).

Used by the tests, the tutorials and the loader benchmark when the real data is absent:
the files go through exactly the same tonic readers as downloaded data.
"""

import struct
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


def write_ncaltech101(root: Path, samples) -> list[Path]:
    """tonic's N-Caltech101: Caltech101/<class name>/image_<NNNN>.bin in N-MNIST's binary
    format. ``samples``: list of (x, y, t_us, p, class_name)."""
    folder = Path(root) / "NCALTECH101" / "Caltech101"
    paths, count = [], {}
    for x, y, t, p, name in samples:
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        count[name] = count.get(name, 0) + 1
        path = d / f"image_{count[name]:04d}.bin"
        path.write_bytes(nmnist_bytes(x, y, t, p))
        paths.append(path)
    return paths


AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
# the flatbuffer struct Event {t: int64; x: int16; y: int16; on: bool} (16 bytes, aligned 8)
AEDAT4_EVENT = np.dtype({"names": ["t", "x", "y", "on"],
                         "formats": ["<i8", "<i2", "<i2", "u1"],
                         "offsets": [0, 8, 10, 12], "itemsize": 16})
CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                      "horse", "ship", "truck")


def _pad(buf: bytearray, align: int) -> None:
    buf.extend(b"\0" * (-len(buf) % align))


def aedat4_ioheader(description: str, data_position: int = -1) -> bytes:
    """The IOHeader flatbuffer (file identifier "IOHE"): compression none, the data table
    position (-1: none, read to the end) and the XML stream description."""
    buf = bytearray(struct.pack("<I", 24)) + b"IOHE"         # root table at 24
    buf += struct.pack("<HHHHH", 10, 20, 4, 8, 16)             # vtable: 3 fields
    _pad(buf, 8)
    buf += struct.pack("<iiqI", 24 - 8, 0, data_position, 4)   # description at 44
    text = description.encode()
    buf += struct.pack("<I", len(text)) + text + b"\0"
    _pad(buf, 8)
    return bytes(buf)


def aedat4_event_packet(t, x, y, on) -> bytes:
    """A size-prefixed EventPacket flatbuffer (identifier "EVTS") holding the events."""
    ev = np.zeros(len(t), dtype=AEDAT4_EVENT)
    ev["t"], ev["x"], ev["y"], ev["on"] = t, x, y, on
    buf = bytearray(4) + struct.pack("<I", 24 - 4) + b"EVTS"   # root table at 24
    buf += struct.pack("<HHH", 6, 8, 4)                         # vtable: 1 field
    _pad(buf, 8)
    buf += struct.pack("<iI", 24 - 12, 8) + bytes(4)            # vector at 36
    buf += struct.pack("<I", len(ev)) + ev.tobytes()            # elements at 40
    _pad(buf, 8)
    buf[0:4] = struct.pack("<I", len(buf) - 4)
    return bytes(buf)


def aedat4_bytes(x, y, t_us, p, width: int = 128, height: int = 128,
                 packet: int = 4096) -> bytes:
    """An AEDAT 4.0 file (DV's container: magic, size-prefixed IOHeader, then
    ``stream id, size, EventPacket`` records, uncompressed) with one event stream."""
    desc = ('<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
            '<node name="0" path="/mainloop/Recorder/outInfo/0/">'
            '<attr key="compression" type="string">NONE</attr>'
            '<attr key="typeIdentifier" type="string">EVTS</attr>'
            '<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
            f'<attr key="sizeX" type="int">{width}</attr>'
            f'<attr key="sizeY" type="int">{height}</attr>'
            '</node></node></node></dv>')
    head = aedat4_ioheader(desc)
    out = [AEDAT4_MAGIC, struct.pack("<I", len(head)), head]
    x, y, t, p = (np.asarray(v) for v in (x, y, t_us, p))
    for s in range(0, max(len(t), 1), packet):
        body = aedat4_event_packet(t[s:s + packet], x[s:s + packet], y[s:s + packet],
                                   p[s:s + packet])
        out += [struct.pack("<II", 0, len(body)), body]
    return b"".join(out)


def write_cifar10dvs(root: Path, samples) -> list[Path]:
    """tonic's CIFAR10-DVS: CIFAR10DVS/<class>/cifar10_<class>_<n>.aedat4 (128×128 DVS).
    ``samples``: list of (x, y, t_us, p, label 0..9)."""
    folder = Path(root) / "CIFAR10DVS"
    paths, count = [], {}
    for x, y, t, p, label in samples:
        name = CIFAR10DVS_CLASSES[label]
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        n = count[name] = count.get(name, -1) + 1
        path = d / f"cifar10_{name}_{n}.aedat4"
        path.write_bytes(aedat4_bytes(x, y, t, p))
        paths.append(path)
    return paths


def write_speech_commands(root: Path, clips, valid=(), test=()) -> Path:
    """The Speech Commands release layout: <word>/<speaker>_nohash_<n>.wav (16-bit PCM,
    16 kHz) and the validation/testing lists. ``clips``: list of (word, speaker, audio
    float in [-1, 1]); ``valid``/``test``: indices of clips listed there."""
    from scipy.io import wavfile

    base = Path(root) / "SpeechCommands" / "speech_commands_v0.02"
    names = []
    for k, (word, speaker, audio) in enumerate(clips):
        (base / word).mkdir(parents=True, exist_ok=True)
        name = f"{word}/{speaker}_nohash_{k}.wav"
        wavfile.write(base / name, 16_000,
                      (np.clip(np.asarray(audio), -1, 1) * 32767).astype(np.int16))
        names.append(name)
    (base / "_background_noise_").mkdir(exist_ok=True)
    (base / "validation_list.txt").write_text("\n".join(names[i] for i in valid) + "\n")
    (base / "testing_list.txt").write_text("\n".join(names[i] for i in test) + "\n")
    return base


def synthetic_samples(name: str, n: int, seed: int = 0, events: int = 4000):
    """``n`` random samples for ``write_*`` with realistic sizes: N-MNIST ~4k events over
    300 ms, SHD ~5k spikes over 1 s, DVS Gesture ~100k events over 6 s, CIFAR10-DVS over
    1.3 s (scale with ``events``)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        if name == "nmnist":
            out.append((rng.integers(0, 34, events), rng.integers(0, 34, events),
                        np.sort(rng.integers(0, 300_000, events)), rng.integers(0, 2, events),
                        k % 10))
        elif name in ("shd", "ssc"):
            out.append((np.sort(rng.random(events)).astype(np.float32),
                        rng.integers(0, 700, events), k % 20))
        elif name == "cifar10dvs":
            out.append((rng.integers(0, 128, events), rng.integers(0, 128, events),
                        np.sort(rng.integers(0, 1_300_000, events)),
                        rng.integers(0, 2, events), k % 10))
        elif name == "dvsgesture":
            out.append((rng.integers(0, 128, events), rng.integers(0, 128, events),
                        rng.integers(0, 2, events), np.sort(rng.random(events) * 6000.0),
                        k % 11, 1 + k // 11))
        else:
            raise ValueError(f"no synthetic samples for {name!r}")
    return out
