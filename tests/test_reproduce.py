"""`lava-local reproduce`: one run per seed on fixture data, resumable after a kill, the
aggregate computed from the seeds' own results."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lava_local.cli import main
from lava_local.recipes import get_recipe
from lava_local.reproduce import aggregate, seed_configs
from lava_local.torch.train import RunError

#: Small enough for the tests; everything else as the recipe has it.
SMALL = ["--hidden", "16", "--batch-size", "4", "--steps", "20", "--no-progress",
         "--device", "cpu"]


def _nmnist(root, n_train=24, n_test=8):
    from lava_local.data.fixtures import write_nmnist

    rng = np.random.default_rng(0)

    def sample(k):
        return (rng.integers(0, 34, 200), rng.integers(0, 34, 200),
                np.sort(rng.integers(0, 20_000, 200)), rng.integers(0, 2, 200), k % 10)

    write_nmnist(root, "train", [sample(k) for k in range(n_train)])
    write_nmnist(root, "test", [sample(k) for k in range(n_test)])


def test_aggregate_is_mean_and_sample_std():
    agg = aggregate([90.0, 92.0, 97.0])
    assert agg["mean"] == pytest.approx(93.0)
    assert agg["std"] == pytest.approx(math.sqrt((9 + 1 + 16) / 2))
    assert aggregate([80.0]) == {"mean": 80.0, "std": 0.0, "n": 1}
    # Traces Propagation's statistic: top 5 of the seeds, population std
    vals = [91.0, 95.0, 90.0, 96.0, 94.0, 93.0, 97.0]
    top = aggregate(vals, ddof=0, top=5)
    assert top["n"] == 5 and top["mean"] == pytest.approx(95.0)
    assert top["std"] == pytest.approx(np.std([93, 94, 95, 96, 97]))


def test_seed_configs_refuse_bad_seeds():
    rec = get_recipe("tp-nmnist")
    with pytest.raises(RunError, match="at least one seed"):
        seed_configs(rec, [])
    with pytest.raises(RunError, match="repeat"):
        seed_configs(rec, [0, 0])
    with pytest.raises(RunError, match="--seeds"):
        seed_configs(rec, [0, 1], {"seed": 3})
    cfgs = seed_configs(rec, [3, 5], {"hidden": (16,)})
    assert [c.seed for c in cfgs.values()] == [3, 5]
    assert all(c.params.beta == 0.98 and c.hidden == (16,) for c in cfgs.values())


def test_reproduce_resumes_after_a_kill_and_aggregates(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "rep"
    _nmnist(data)
    args = ["reproduce", "tp-nmnist", "--seeds", "0,1", "--root", str(data), "--epochs",
            "3", "--out", str(out), *SMALL]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "lava_local.cli", *args], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "seed0" / "checkpoint.pt"
    try:
        for _ in range(3000):           # kill it as soon as seed 0 has a first epoch
            if ckpt.exists() or p.poll() is not None:
                break
            time.sleep(0.01)
        assert ckpt.exists(), p.stderr.read().decode() if p.poll() is not None else ""
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(30)
    assert not (out / "seed1" / "results.json").exists()   # killed before the end
    import torch

    killed = torch.load(ckpt, weights_only=False)["history"]
    assert 1 <= len(killed) <= 3

    assert main(args) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "reproduce.json").read_text())
    assert summary["complete"] and summary["n_seeds"] == 2
    per_seed = [json.loads((out / f"seed{s}" / "results.json").read_text()) for s in (0, 1)]
    # seed 0 continued from its checkpoint: the killed run's epochs are kept as they were
    assert per_seed[0]["history"][:len(killed)] == killed
    assert [len(r["history"]) for r in per_seed] == [3, 3]
    assert [r["config"]["seed"] for r in per_seed] == [0, 1]
    best = [100 * max(h["test_acc"] for h in r["history"]) for r in per_seed]
    assert summary["mean"] == pytest.approx(np.mean(best))       # tp: best epoch, top 5,
    assert summary["std"] == pytest.approx(np.std(best, ddof=0))  # population std
    finals = [100 * r["history"][-1]["test_acc"] for r in per_seed]
    assert [s["final_test_acc"] for s in summary["seeds"]] == [f / 100 for f in finals]
    assert summary["all_seeds_sample_std"] == pytest.approx(np.std(best, ddof=1))
    assert summary["paper_mean"] == 97.33
    assert summary["difference"] == pytest.approx(summary["mean"] - 97.33)
    assert "97.33" in printed and (out / "reproduce.png").stat().st_size > 0

    # run again: nothing is trained, the same aggregate comes back
    mtimes = [(out / f"seed{s}" / "results.json").stat().st_mtime_ns for s in (0, 1)]
    assert main(args) == 0
    assert [(out / f"seed{s}" / "results.json").stat().st_mtime_ns for s in (0, 1)] == mtimes
    again = json.loads((out / "reproduce.json").read_text())
    assert again["mean"] == summary["mean"] and again["std"] == summary["std"]


def test_reproduce_refuses_a_folder_with_other_settings(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "rep"
    _nmnist(data, 8, 4)
    args = ["reproduce", "tp-nmnist", "--seeds", "0", "--root", str(data), "--epochs", "1",
            "--out", str(out), *SMALL]
    assert main(args) == 0
    before = (out / "seed0" / "results.json").read_bytes()
    capsys.readouterr()
    assert main([*args, "--lr", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "lr" in err
    assert (out / "seed0" / "results.json").read_bytes() == before


def test_reproduce_of_a_recipe_without_a_number(tmp_path):
    """The aggregate is still written; the comparison says the paper gives no number."""
    rec = get_recipe("solsa-shd")
    assert rec.paper_acc is None
    from lava_local.reproduce import summarise

    s = summarise(rec, [{"seed": 0, "final_test_acc": 0.5, "best_test_acc": 0.6}])
    assert s["paper_mean"] is None and s["difference"] is None and s["mean"] == 50.0


def test_reproduce_unknown_recipe(capsys):
    assert main(["reproduce", "nope", "--no-progress"]) == 2
    assert "unknown recipe" in capsys.readouterr().err
