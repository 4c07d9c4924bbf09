"""The Python API and your own data: the README's example runs as written, arrays and
.npz files are checked before any work, and runs trained on them go to Lava."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import lava_local as ll
from lava_local.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "ll.learn_on_lava" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})         # noqa: S102
    out = capsys.readouterr().out
    assert "batched test accuracy" in out and "on-graph learning" in out
    assert (tmp_path / "runs/readme-example/checkpoint.pt").is_file()
    res = json.loads((tmp_path / "runs/readme-example/results.json").read_text())
    assert res["config"]["dataset"] == "arrays" and res["dataset"]["n_train"] == 80
    # the two-class rate task is easy: the trained net beats chance clearly
    assert res["test_acc"] > 0.8


@pytest.mark.parametrize("x, y, match", [
    (np.zeros((4, 3)), np.zeros(4), "shape \\(N, T, F\\)"),
    (np.zeros((4, 3, 2)), np.zeros(3), "y must have shape"),
    (np.full((4, 3, 2), 0.5), np.zeros(4), "0 or 1"),
    (np.full((4, 3, 2), np.nan), np.zeros(4), "NaN or inf"),
    (np.zeros((4, 3, 2)), np.array([0, 1, 2, -1]), ">= 0"),
    (np.zeros((4, 3, 2)), np.array([0.5, 1, 0, 1]), "integer class labels"),
    (np.zeros((4, 3, 2)), np.zeros(4), "at least 2 classes"),
])
def test_from_arrays_refuses_what_is_not_a_spike_data_set(x, y, match):
    with pytest.raises(ValueError, match=match):
        ll.data.from_arrays(x, y)


def test_from_arrays_keeps_spikes_and_labels():
    rng = np.random.default_rng(1)
    x = rng.random((6, 5, 3)) < 0.3
    y = np.array([0, 2, 1, 0, 2, 1])
    ds = ll.data.from_arrays(x, y, n_classes=4)
    assert (len(ds), ds.n_steps, ds.n_inputs, ds.n_classes) == (6, 5, 3, 4)
    s, label = ds[1]
    np.testing.assert_array_equal(s, x[1].astype(np.float32))
    assert label == 2
    with pytest.raises(ValueError, match="out of range"):
        ll.data.from_arrays(x, y, n_classes=2)


def test_npz_data_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 50)
    x = (rng.random((50, 6, 10)) < 0.1 + 0.3 * (np.arange(10) % 3 == y[:, None, None])
         ).astype(np.uint8)
    f = tmp_path / "mine.npz"
    np.savez(f, x=x, y=y)
    before = f.read_bytes()
    run = tmp_path / "run"
    assert main(["train", "--rule", "tess", "--data", str(f), "--hidden", "12", "--epochs",
                 "1", "--no-progress", "--out", str(run)]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["config"]["dataset"] == "npz" and res["config"]["n_steps"] == 6
    assert (res["dataset"]["n_train"], res["dataset"]["n_test"]) == (40, 10)  # every fifth
    assert main(["run", str(run), "--backend", "sim-float", "--samples", "3",
                 "--no-progress"]) == 0
    assert f.read_bytes() == before
    capsys.readouterr()
    # a wrong T, a file without y, a file that is not an npz: clear errors, nothing written
    assert main(["train", "--data", str(f), "--steps", "9", "--no-progress",
                 "--out", str(tmp_path / "a")]) == 2
    assert "T = 6" in capsys.readouterr().err
    np.savez(tmp_path / "nolabels.npz", x=x)
    assert main(["train", "--data", str(tmp_path / "nolabels.npz"), "--no-progress",
                 "--out", str(tmp_path / "b")]) == 2
    assert "lacks array(s) ['y']" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_text("not a zip")
    assert main(["train", "--data", str(tmp_path / "junk.npz"), "--no-progress",
                 "--out", str(tmp_path / "c")]) == 2
    assert "not a readable .npz" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c"))


def test_in_memory_runs_say_how_to_run_them_in_lava(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 20)
    x = (rng.random((20, 4, 5)) < 0.3).astype(np.uint8)
    ds = ll.data.from_arrays(x, y, n_classes=2)
    run = ll.train("bptt", ds, ds, hidden=(6,), epochs=1, progress=False)
    assert run.path is None and 0 <= run.test_acc <= 1
    from lava_local.torch.train import RunError

    with pytest.raises(RunError, match="out="):
        ll.run_on_lava(run, ds)
    with pytest.raises(RunError, match="n_steps = 4"):
        ll.train("bptt", ds, ll.data.from_arrays(x[:, :3], y, n_classes=2), hidden=(6,),
                 epochs=1, progress=False)


def test_from_tonic_bins_a_real_tonic_data_set(tmp_path):
    """N-MNIST files in their real format, read by tonic's own class: raw events are
    binned with tonic's ToFrame, counts become spikes; frames from a transform pass."""
    import tonic

    from lava_local.data.events import open_tonic
    from lava_local.data.fixtures import synthetic_samples, write_nmnist

    samples = synthetic_samples("nmnist", 6, events=300)
    write_nmnist(tmp_path, "train", samples)
    write_nmnist(tmp_path, "test", samples[:1])
    raw = open_tonic("nmnist", tmp_path, "train")
    ds = ll.data.from_tonic(raw, n_steps=5, progress=False)
    assert (len(ds), ds.n_steps, ds.n_inputs, ds.n_classes) == (6, 5, 2 * 34 * 34, 10)
    events, label = raw[2]
    want = tonic.transforms.ToFrame(sensor_size=raw.sensor_size, n_time_bins=5)(events)
    np.testing.assert_array_equal(ds.spikes[2], (want.reshape(5, -1) > 0))
    assert ds.labels[2] == label and ds.spikes.sum() > 0
    framed = [(want, label)]
    np.testing.assert_array_equal(ll.data.from_tonic(framed, 5, n_classes=10,
                                                     progress=False).spikes[0], ds.spikes[2])
    with pytest.raises(ValueError, match="T=7"):
        ll.data.from_tonic(framed, 7, n_classes=10, progress=False)
    with pytest.raises(ValueError, match="sensor_size"):
        ll.data.from_tonic([(events, label)], 5, n_classes=10, progress=False)


def test_a_torch_dataset_of_frames_is_taken_too():
    import torch

    rng = np.random.default_rng(4)
    x = (rng.random((5, 3, 2, 4)) < 0.4).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    ds = ll.data.from_tonic(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                            n_steps=3, progress=False)
    assert (ds.n_inputs, ds.n_classes) == (8, 3)
    np.testing.assert_array_equal(ds.spikes, x.reshape(5, 3, 8))
    np.testing.assert_array_equal(ds.labels, y)
