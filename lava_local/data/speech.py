"""Google Speech Commands as log-mel features (Traces Propagation's keyword spotting).

tonic has no class for it, so this reads the data set's own release layout
(``ROOT/SpeechCommands/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav`` with
``validation_list.txt`` and ``testing_list.txt``) with scipy and computes, with librosa,
120 log-mel bands every 10 ms over 1 s of 16 kHz audio (T = 101 frames), scaled to [0, 1]
per sample. The frames are real-valued input currents, time-first ``(T, 120)``; they are
cached on disk per file like the event data. Classes: the word folders (sorted;
``_background_noise_`` excluded). Splits: the release's lists (train = the rest), or
``"all"``.

Speakers (the file-name prefix before ``_nohash_``) support TP's speaker-adaptation
protocol: pre-train with one speaker held out of every split (``exclude_speaker``), then
fine-tune on a few of that speaker's clips (``only_speaker``; see
:mod:`lava_local.torch.finetune`). ``"auto"`` picks the speaker with the most clips.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np

from .events import CACHE_DIR, DatasetError, cached_frames

SR = 16_000
N_MELS = 120
HOP = 160            # 10 ms
N_STEPS = 101        # 1 s
FOLDER = Path("SpeechCommands") / "speech_commands_v0.02"
LAYOUT = ("SpeechCommands/speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav plus "
          "validation_list.txt and testing_list.txt (the release's layout)")
SPLITS = ("train", "valid", "test", "all")


def log_mel(audio: np.ndarray, n_steps: int = N_STEPS) -> np.ndarray:
    """(n_steps, 120) log-mel features of a 16 kHz clip, padded/cut to 1 s, in [0, 1]."""
    import librosa

    audio = np.asarray(audio, dtype=np.float32)
    n = (n_steps - 1) * HOP
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    mel = librosa.feature.melspectrogram(y=audio, sr=SR, n_fft=480, hop_length=HOP,
                                         n_mels=N_MELS)
    feat = librosa.power_to_db(mel + 1e-10).T[:n_steps]     # (T, 120)
    feat = feat - feat.min()
    return (feat / max(float(feat.max()), 1e-6)).astype(np.float32)


def speaker_of(name: str) -> str:
    """The speaker id of a release file name ``<word>/<speaker>_nohash_<n>.wav``."""
    return Path(name).name.split("_nohash_")[0]


def _release(root: Path):
    """(base folder, sorted words, sorted relative file names, {valid, test} lists)."""
    base = root / FOLDER
    lists = [base / "validation_list.txt", base / "testing_list.txt"]
    if not base.is_dir() or not all(p.is_file() for p in lists):
        raise DatasetError(f"no Speech Commands release under {base}; expected {LAYOUT}. "
                           f"Fetch with `lava-local data fetch gsc --root {root}`")
    words = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("_"))
    held = {name: set(p.read_text().split()) for name, p in zip(("valid", "test"), lists)}
    files = sorted(str(p.relative_to(base)).replace("\\", "/")
                   for w in words for p in (base / w).glob("*.wav"))
    return base, words, files, held


def resolve_speaker(root, speaker: str) -> str:
    """``speaker`` itself, or for ``"auto"`` the speaker with the most clips in the release
    (ties: the first by name). Unknown speakers are an error."""
    _, _, files, _ = _release(Path(root).expanduser())
    counts = Counter(speaker_of(f) for f in files)
    if speaker == "auto":
        if not counts:
            raise DatasetError("the Speech Commands release holds no clips")
        return min(counts, key=lambda s: (-counts[s], s))
    if speaker not in counts:
        raise DatasetError(f"speaker {speaker!r} has no clips in the release; speaker ids are "
                           "the file-name prefix before _nohash_ (or use auto)")
    return speaker


class SpeechCommandsFeatures:
    """``ds[i] -> (features (T, 120) float32, label)`` for split train/valid/test/all.

    Parameters
    ----------
    split : {"train", "valid", "test", "all"}
    root : path
        The folder given to ``lava-local data fetch gsc``.
    n_steps : int, optional
        T (default 101 frames of 10 ms).
    cache : bool
        Cache features under ``root/.lava-local-cache`` (one file per clip).
    exclude_speaker, only_speaker : str, optional
        Leave out one speaker's clips, or keep only one speaker's (``"auto"``: the
        speaker with the most clips, :func:`resolve_speaker`).
    """

    n_inputs = N_MELS
    frame_shape = None
    graded = True          # real-valued input currents, not spikes (the Lava graph cares)

    def __init__(self, split: str, root, n_steps: int | None = None, cache: bool = True,
                 exclude_speaker: str | None = None, only_speaker: str | None = None):
        if split not in SPLITS:
            raise ValueError(f"speech commands has splits {', '.join(SPLITS)}, not {split!r}")
        if root is None:
            raise DatasetError("the gsc data set needs --root, the folder that holds "
                               f"{LAYOUT}")
        self.root = Path(root).expanduser()
        base, words, files, held = _release(self.root)
        if split == "train":
            chosen = [f for f in files if f not in held["valid"] and f not in held["test"]]
        elif split == "all":
            chosen = files
        else:
            chosen = [f for f in files if f in held[split]]
        self.excluded = self.only = None
        if exclude_speaker is not None:
            self.excluded = resolve_speaker(self.root, exclude_speaker)
            chosen = [f for f in chosen if speaker_of(f) != self.excluded]
        if only_speaker is not None:
            self.only = resolve_speaker(self.root, only_speaker)
            chosen = [f for f in chosen if speaker_of(f) == self.only]
        self._names = chosen
        self.files = [base / f for f in chosen]
        self.labels = np.array([words.index(f.split("/")[0]) for f in chosen], dtype=np.int64)
        self.speakers = np.array([speaker_of(f) for f in chosen], dtype=object)
        self.classes, self.n_classes = words, len(words)
        self.name, self.split = "gsc", split
        self.n_steps = int(n_steps or N_STEPS)
        if self.n_steps < 1:
            raise ValueError(f"the number of time steps T must be positive, got {n_steps}")
        self.stats = {"hits": 0, "misses": 0}
        self.cache_dir = None
        if cache:
            key = hashlib.sha1(json.dumps([self.n_steps, N_MELS, HOP]).encode())
            self.cache_dir = self.root / CACHE_DIR / f"gsc-{key.hexdigest()[:10]}"
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self.files)

    def frames(self, i: int) -> np.ndarray:
        """Log-mel features (T, 120) float32 of clip ``i`` (cached per file)."""
        key = self._names[i][:-4].replace("/", "__")
        return cached_frames(self.cache_dir, key, self.stats, lambda: self._features(i))

    def _features(self, i: int) -> np.ndarray:
        from scipy.io import wavfile

        try:
            sr, audio = wavfile.read(self.files[i])
        except (OSError, ValueError) as e:
            raise DatasetError(f"{self.files[i]} is unreadable ({e}); fetch the data set "
                               f"again (nothing was deleted)") from None
        if sr != SR:
            raise DatasetError(f"{self.files[i]} is sampled at {sr} Hz, expected {SR}")
        if audio.dtype == np.int16:
            audio = audio.astype(np.float32) / 32768.0
        return log_mel(audio, self.n_steps)

    def __getitem__(self, i: int):
        return self.frames(i), int(self.labels[i])

