"""Event data sets read through tonic from files in their real on-disk formats."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lava_local.data.events import DatasetError, EventFrames, dataset_status
from lava_local.data.fixtures import write_hsd, write_nmnist


@pytest.fixture
def nmnist_root(tmp_path):
    rng = np.random.default_rng(0)
    samples = []
    for label in (3, 7, 3):
        n = 50
        samples.append((rng.integers(0, 34, n), rng.integers(0, 34, n),
                        np.sort(rng.integers(0, 250_000, n)), rng.integers(0, 2, n), label))
    # one hand-made event: x=3, y=5, p=1 at t=2.5 ms -> frame 2, feature 1*1156 + 5*34 + 3
    samples.append(([3, 10], [5, 0], [2500, 150_000], [1, 0], 9))
    write_nmnist(tmp_path, "train", samples)
    write_nmnist(tmp_path, "test", samples[:1])
    return tmp_path


def test_nmnist_binning_shapes_labels(nmnist_root):
    ds = EventFrames("nmnist", "train", nmnist_root)
    assert len(ds) == 4 and ds.n_inputs == 2312 and ds.frame_shape == (2, 34, 34)
    assert sorted(ds.labels.tolist()) == [3, 3, 7, 9]
    i = int(np.nonzero(ds.labels == 9)[0][0])
    x, y = ds[i]
    assert x.shape == (100, 2312) and x.dtype == np.float32 and y == 9
    assert np.argwhere(x).tolist() == [[2, 1 * 1156 + 5 * 34 + 3]]  # t=150 ms dropped
    for j in range(len(ds)):
        assert set(np.unique(ds[j][0])) <= {0.0, 1.0}


def test_cache_is_hit_on_the_second_read(nmnist_root):
    ds = EventFrames("nmnist", "train", nmnist_root)
    a = ds.frames(0)
    assert ds.stats == {"hits": 0, "misses": 1}
    b = ds.frames(0)
    assert ds.stats == {"hits": 1, "misses": 1}
    np.testing.assert_array_equal(a, b)
    again = EventFrames("nmnist", "train", nmnist_root)   # a new reader uses the cache too
    again.frames(0)
    assert again.stats["hits"] == 1


@pytest.mark.parametrize("name, n_keys", [("shd", 20), ("ssc", 35)])
def test_shd_ssc_binning(tmp_path, name, n_keys):
    samples = [([0.0255, 0.5, 2.0], [42, 7, 1], 4), ([0.001], [699], 0)]
    write_hsd(tmp_path, name, "train", samples, n_keys)
    ds = EventFrames(name, "train", tmp_path)
    assert len(ds) == 2 and ds.n_inputs == 700 and ds.labels.tolist() == [4, 0]
    x, y = ds[0]
    assert x.shape == (100, 700) and y == 4
    # 25.5 ms -> bin 2, unit 42; 500 ms -> bin 50, unit 7; 2 s is past T = 100 bins
    assert np.argwhere(x).tolist() == [[2, 42], [50, 7]]
    assert np.argwhere(ds[1][0]).tolist() == [[0, 699]]


def test_missing_root_wrong_layout_truncated_file(tmp_path):
    with pytest.raises(DatasetError, match="lava-local data fetch nmnist"):
        EventFrames("nmnist", "train", tmp_path / "nope")
    (tmp_path / "NMNIST" / "Train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="NMNIST/Train/<0..9>"):
        EventFrames("nmnist", "train", tmp_path)
    with pytest.raises(DatasetError, match="--root"):
        EventFrames("shd", "train", None)
    path = write_hsd(tmp_path, "shd", "test", [([0.1], [1], 1)], 20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])               # truncated download
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    with pytest.raises(DatasetError, match="unreadable"):
        EventFrames("shd", "test", tmp_path)
    assert hashlib.sha1(path.read_bytes()).hexdigest() == digest   # nothing touched


def test_status_lists_what_is_present(nmnist_root):
    rows = {r["name"]: r for r in dataset_status(nmnist_root)}
    assert rows["nmnist"]["present"] == ["train", "test"]
    assert rows["shd"]["present"] == [] and "shd_train.h5" in rows["shd"]["layout"]


def test_training_reads_event_data_through_the_cache(nmnist_root):
    from lava_local.torch.train import TrainConfig, train

    res = train(TrainConfig(dataset="nmnist", root=str(nmnist_root), n_steps=100,
                            hidden=(8,), epochs=2, batch_size=2), progress=False)
    assert res["dataset"]["n_inputs"] == 2312 and res["dataset"]["n_steps"] == 100
    assert len(res["history"]) == 2
    cache = list((nmnist_root / ".lava-local-cache").glob("nmnist-train-*/*.npy"))
    assert len(cache) == 4


def test_lava_dataloader_delivers_the_same_spikes_as_the_batched_loader(tmp_path):
    """SpikeDataloader (time-last adapter) vs EventFrames (time-first), step by step."""
    from lava_local.lava_runtime import ensure_lava_runtime

    ensure_lava_runtime()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.dataloader import SpikeDataloader
    from lava.proc.io.sink import RingBuffer as Sink

    from lava_local.networks.graph import SpikeAdapter
    from lava_local.networks.guard import LavaGuard

    rng = np.random.default_rng(3)
    samples = [(np.sort(rng.random(40) * 0.2), rng.integers(0, 700, 40), k % 20)
               for k in range(3)]
    write_hsd(tmp_path, "shd", "test", samples, 20)
    ds = EventFrames("shd", "test", tmp_path, n_steps=20)
    interval, n_steps = 22, 3 * 22 + 1
    loader = SpikeDataloader(dataset=SpikeAdapter(ds), interval=interval, offset=0)
    sink = Sink(shape=(700,), buffer=n_steps)
    loader.s_out.connect(sink.a_in)
    cfg = Loihi2SimCfg(select_tag="floating_pt")
    with LavaGuard() as guard:
        guard.start(lambda: loader.create_runtime(run_cfg=cfg), loader.stop)
        loader.run(condition=RunSteps(num_steps=n_steps), run_cfg=cfg)
        got = np.asarray(sink.data.get()).T          # (steps, 700), step 1 first
    # step 1 sends zeros; sample k occupies steps k·interval + 2 ... (+T)
    for k in range(3):
        start = k * interval + 1
        np.testing.assert_array_equal(got[start:start + 20], ds.frames(k))
        assert not got[start + 20:start + interval].any()
    assert sum(ds.frames(k).sum() for k in range(3)) > 30


def test_dvsgesture_downsampling_and_fixed_bins(tmp_path):
    from lava_local.data.fixtures import write_dvsgesture

    # events (x, y, p, t): (100, 8, 1, 0 ms), (4, 127, 0, 900 ms), (50, 50, 0, 1000 ms);
    # 32×32 after the 1/4 downsampling -> (25, 2) and (1, 31); 20 equal bins of 50 ms
    # over [0, 1000) ms: bins 0 and 18 (tonic's slicing leaves out the event at t_max)
    write_dvsgesture(tmp_path, "train", [([100, 4, 50], [8, 127, 50], [1, 0, 0],
                                          [0.0, 900.0, 1000.0], 5, 1),
                                         ([1], [1], [0], [10.0], 2, 2)])
    ds = EventFrames("dvsgesture", "train", tmp_path)
    assert ds.frame_shape == (2, 32, 32) and ds.n_inputs == 2048 and len(ds) == 2
    i = int(np.nonzero(ds.labels == 5)[0][0])
    x, _ = ds[i]
    assert x.shape == (20, 2048)
    assert np.argwhere(x).tolist() == [[0, 1 * 1024 + 2 * 32 + 25], [18, 31 * 32 + 1]]


def test_dataloader_workers_give_the_same_batches(nmnist_root):
    import torch

    from lava_local.torch.train import iterate_batches

    ds = EventFrames("nmnist", "train", nmnist_root)
    order = np.array([3, 1, 0, 2])
    a = list(iterate_batches(ds, 3, order, torch.device("cpu"), workers=0))
    b = list(iterate_batches(ds, 3, order, torch.device("cpu"), workers=2))
    assert [x.shape for x, _ in a] == [(100, 3, 2312), (100, 1, 2312)]
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    np.testing.assert_array_equal(a[0][0][:, 0].numpy(), ds.frames(3))


def test_ncaltech101_split_resize_and_bins(tmp_path):
    from lava_local.data.fixtures import write_ncaltech101

    samples = []
    for name in ("airplanes", "Faces_easy"):
        for k in range(6):
            # events at (x, y) = (10 + k, 20), (239, 179); t = 0 .. 300 ms
            samples.append(([10 + k, 239, 12], [20, 179, 21], [0, 150_000, 300_000],
                            [1, 0, 1], name))
    write_ncaltech101(tmp_path, samples)
    train = EventFrames("ncaltech101", "train", tmp_path)
    test = EventFrames("ncaltech101", "test", tmp_path)
    assert (len(train), len(test)) == (10, 2)              # every fifth file per class
    assert sorted(test.labels.tolist()) == [0, 1]          # Faces_easy < airplanes (sorted)
    x, _ = train[0]
    assert x.shape == (10, 2 * 48 * 48) and train.frame_shape == (2, 48, 48)
    # tonic shifts x, y to start at 0: (10, 20) -> (0, 0), (239, 179) -> (229, 159);
    # 1/5 downsampling -> (0, 0) and (45, 31); 10 equal bins over 300 ms
    hits = np.argwhere(x).tolist()
    assert [0, 1 * 2304 + 0] in hits and [5, 31 * 48 + 45] in hits


def test_speech_commands_features(tmp_path):
    from lava_local.data.fixtures import write_speech_commands
    from lava_local.data.speech import SpeechCommandsFeatures

    t = np.arange(16_000) / 16_000
    clips = [(w, f"spk{k}", 0.3 * np.sin(2 * np.pi * f * t))
             for k, (w, f) in enumerate([("yes", 300), ("no", 1200), ("yes", 320),
                                         ("no", 1150), ("yes", 310), ("no", 1180)])]
    write_speech_commands(tmp_path, clips, valid=[4], test=[5])
    tr = SpeechCommandsFeatures("train", tmp_path)
    te = SpeechCommandsFeatures("test", tmp_path)
    assert (len(tr), len(te), tr.n_classes) == (4, 1, 2) and tr.classes == ["no", "yes"]
    x, y = tr[0]
    assert x.shape == (101, 120) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    # a 300 Hz tone puts its energy in lower mel bands than a 1.2 kHz one
    low = tr.frames(int(np.nonzero(tr.labels == 1)[0][0])).mean(0).argmax()
    high = tr.frames(int(np.nonzero(tr.labels == 0)[0][0])).mean(0).argmax()
    assert low < high
    tr.frames(0)
    assert tr.stats["hits"] >= 1
    rows = {r["name"]: r for r in dataset_status(tmp_path)}
    assert rows["gsc"]["present"] == ["train", "valid", "test"]
    (tmp_path / "SpeechCommands" / "speech_commands_v0.02" / "testing_list.txt").unlink()
    with pytest.raises(DatasetError, match="testing_list"):
        SpeechCommandsFeatures("test", tmp_path)


def test_aedat4_fixture_reads_back_through_tonic(tmp_path):
    """Our AEDAT 4 writer against the reader tonic uses (the `aedat` package)."""
    from tonic.io import read_aedat4

    from lava_local.data.fixtures import aedat4_bytes

    rng = np.random.default_rng(5)
    n = 9000                                    # three packets of up to 4096 events
    t = np.sort(rng.integers(0, 2_000_000, n)) + 1_600_000_000_000_000
    x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    path = tmp_path / "a.aedat4"
    path.write_bytes(aedat4_bytes(x, y, t, p))
    ev = read_aedat4(str(path))
    assert len(ev) == n
    for name, want in (("t", t), ("x", x), ("y", y), ("on", p)):
        np.testing.assert_array_equal(ev[name].astype(np.int64), want)


def test_cifar10dvs_split_resize_and_bins(tmp_path):
    from lava_local.data.fixtures import write_cifar10dvs

    samples = []
    for label in (0, 9):                        # airplane, truck
        for k in range(12):
            # (x, y, p, t): (3, 5, 1, 0), (127, 127, 0, 450 ms) and (64, 0, 1, 1 s)
            samples.append(([3, 127, 64], [5, 127, 0], [10**6 * k, 10**6 * k + 450_000,
                                                        10**6 * (k + 1)], [1, 0, 1], label))
    write_cifar10dvs(tmp_path, samples)
    train = EventFrames("cifar10dvs", "train", tmp_path)
    test = EventFrames("cifar10dvs", "test", tmp_path)
    # every tenth recording per class (sorted naturally: _9 is the tenth) is test
    assert (len(train), len(test)) == (22, 2) and sorted(test.labels.tolist()) == [0, 9]
    assert all(Path(train._tonic.data[j]).name != "cifar10_truck_9.aedat4"
               for j in train._index)
    x, y = train[0]
    assert x.shape == (10, 2 * 48 * 48) and train.frame_shape == (2, 48, 48) and y == 0
    # 3/8 downsampling: (3, 5) -> (1, 1), (127, 127) -> (47, 47); 10 equal bins over the
    # recording's 1 s: 0 ms -> bin 0, 450 ms -> bin 4 (tonic leaves out the event at t_max)
    assert np.argwhere(x).tolist() == [[0, 1 * 2304 + 1 * 48 + 1], [4, 47 * 48 + 47]]


def test_cifar10dvs_corrupt_file_is_a_clear_error(tmp_path):
    from lava_local.data.fixtures import write_cifar10dvs

    paths = write_cifar10dvs(tmp_path, [([1], [1], [0], [1], 3)] * 10)
    paths[0].write_bytes(paths[0].read_bytes()[:40])       # truncated download
    digest = hashlib.sha1(paths[0].read_bytes()).hexdigest()
    ds = EventFrames("cifar10dvs", "train", tmp_path, cache=False)
    with pytest.raises(DatasetError, match="unreadable.*lava-local data fetch cifar10dvs"):
        ds.frames(0)
    assert hashlib.sha1(paths[0].read_bytes()).hexdigest() == digest
    with pytest.raises(DatasetError, match="CIFAR10DVS/<airplane"):
        EventFrames("cifar10dvs", "train", tmp_path / "elsewhere")


def test_cifar10dvs_train_then_stream_into_lava(tmp_path, capsys):
    """`train --dataset cifar10dvs` then `run --dataset cifar10dvs`: the Lava graph, fed
    by the SpikeDataloader from the same frames, predicts what the batched model does."""
    import json

    import torch

    from lava_local.cli import main
    from lava_local.data.fixtures import synthetic_samples, write_cifar10dvs
    from lava_local.torch.train import TrainConfig, build

    samples = synthetic_samples("cifar10dvs", 20, events=3000)
    write_cifar10dvs(tmp_path / "data", samples[:2] * 2)           # 2 of 10 per class:
    assert main(["train", "--dataset", "cifar10dvs", "--root", str(tmp_path / "data"),
                 "--no-progress"]) == 2                              # no test split
    assert "test split of cifar10dvs is empty" in capsys.readouterr().err
    write_cifar10dvs(tmp_path / "data", [s[:4] + (k % 2,) for k, s in enumerate(samples)])
    out = tmp_path / "run"
    assert main(["train", "--dataset", "cifar10dvs", "--root", str(tmp_path / "data"),
                 "--hidden", "24", "--steps", "10", "--epochs", "1", "--batch-size", "4",
                 "--out", str(out), "--no-progress"]) == 0
    assert main(["run", str(out), "--dataset", "cifar10dvs", "--no-progress"]) == 0
    got = json.loads((out / "lava-sim-float.json").read_text())
    test = EventFrames("cifar10dvs", "test", tmp_path / "data")
    assert got["n_samples"] == len(test) == 2
    res = json.loads((out / "results.json").read_text())
    cfg = TrainConfig.from_dict(res["config"])
    model, _, _ = build(cfg, 4608, 10, torch.device("cpu"))
    model.load_state_dict(torch.load(out / "checkpoint.pt")["model"])
    x = torch.tensor(np.stack([test[i][0] for i in range(2)])).permute(1, 0, 2)
    want = model.predict_logits(x, 0).argmax(-1).tolist()
    assert got["predictions"] == want


def test_cache_follows_files_not_positions(nmnist_root):
    """A file added later (sorting first) shifts every index; the cache still gives each
    sample its own frames."""
    ds = EventFrames("nmnist", "train", nmnist_root)
    for i in range(len(ds)):
        ds.frames(i)
    (nmnist_root / "NMNIST" / "Train" / "0").mkdir()
    from lava_local.data.fixtures import nmnist_bytes

    (nmnist_root / "NMNIST" / "Train" / "0" / "00000.bin").write_bytes(
        nmnist_bytes([1], [2], [500], [0]))
    again = EventFrames("nmnist", "train", nmnist_root)
    fresh = EventFrames("nmnist", "train", nmnist_root, cache=False)
    assert len(again) == 5
    for i in range(5):
        np.testing.assert_array_equal(again.frames(i), fresh.frames(i))
    assert again.stats == {"hits": 4, "misses": 1}


def test_shd_cache_is_keyed_on_the_file_version(tmp_path):
    write_hsd(tmp_path, "shd", "train", [([0.015], [5], 1)], 20)
    assert np.argwhere(EventFrames("shd", "train", tmp_path).frames(0)).tolist() == [[1, 5]]
    import os

    path = write_hsd(tmp_path, "shd", "train", [([0.035], [9], 1)], 20)   # a new download
    os.utime(path, ns=(1, 1))
    ds = EventFrames("shd", "train", tmp_path)
    assert np.argwhere(ds.frames(0)).tolist() == [[3, 9]] and ds.stats["misses"] == 1
