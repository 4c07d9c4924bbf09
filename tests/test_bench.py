"""The speed benchmarks (``lava-local bench speed`` / ``bench lava-speed``): they run,
write what they say, and their numbers are consistent (no timing is asserted)."""

import json

import numpy as np
import pytest

from lava_local.bench import VARIANTS, SpeedSetup, trainer_speed
from lava_local.cli import main


def test_trainer_speed_rows_are_consistent():
    setup = SpeedSetup(n_in=12, hidden=(16, 8), n_out=4, n_steps=4, batch_size=6)
    res = trainer_speed(setup, "cpu", repeats=2, warmup=1, progress=False)
    rows = res["rows"]
    assert [r["variant"] for r in rows] == [v[0] for v in VARIANTS.values()]
    assert rows[0]["ratio_to_bptt"] == 1.0 and res["matmul_flops_per_s"] > 0
    for r in rows:
        assert len(r["seconds_per_batch_all"]) == 2
        assert r["seconds_per_batch"] == pytest.approx(np.median(r["seconds_per_batch_all"]))
        assert r["ratio_to_bptt"] == pytest.approx(r["seconds_per_batch"]
                                                   / rows[0]["seconds_per_batch"])
        assert r["memory_ratio"] == pytest.approx(r["memory_measured_bytes_per_sample"]
                                                  / r["memory_analytic_bytes_per_sample"])
    # BPTT keeps every step's graph: far more learning state than the local rules
    by = {r["variant"]: r for r in rows}
    assert by["BPTT"]["memory_measured_bytes_per_sample"] > \
        2 * by["S-TLLR (bp)"]["memory_measured_bytes_per_sample"]
    # S-TLLR (bp) keeps no step graph any more: its measured state is its traces
    assert by["S-TLLR (bp)"]["memory_ratio"] < 1.3
    # merged terms: the pending coefficients (16 + 8 hidden neurons) on top, in the formula
    merged = by["S-TLLR (bp, merged)"]
    assert merged["memory_measured_bytes_per_sample"] \
        - by["S-TLLR (bp)"]["memory_measured_bytes_per_sample"] == 24 * 4
    assert merged["memory_ratio"] < 1.3


def test_trainer_speed_window_learns_only_the_last_steps():
    # S-TLLR computes its signal and update products only in the window: with the last
    # step of 6 learning, its measured MACs drop by 5 steps' learning products; the
    # forward pass (every step) stays
    kw = dict(n_in=12, hidden=(16,), n_out=4, n_steps=6, batch_size=6)
    variants = [VARIANTS["bptt"], VARIANTS["stllr-dfa"]]
    full, last = (trainer_speed(SpeedSetup(**kw, window=w), "cpu", repeats=1, warmup=0,
                                variants=variants, progress=False) for w in (None, 1))
    assert last["setup"]["window"] == 1 and full["setup"]["window"] is None
    f, l1 = full["rows"][1]["macs_per_sample"], last["rows"][1]["macs_per_sample"]
    forward = 6 * (12 * 16 + 16 * 4)
    learn_step = (f - forward) / 6          # every step: forward + the same learning work
    assert learn_step > 0 and l1 == pytest.approx(forward + learn_step)
    with pytest.raises(ValueError, match="--window"):
        SpeedSetup(**kw, window=7)


def test_bench_speed_command_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--n-in", "10", "--hidden", "8", "--n-out", "3",
                 "--steps", "3", "--batch-size", "4", "--repeats", "1", "--warmup", "0",
                 "--rules", "tess", "--threads", "1", "--no-progress",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ratio to BPTT" in text and "TESS" in text
    res = json.loads((out / "speed.json").read_text())
    assert [r["variant"] for r in res["rows"]] == ["BPTT", "TESS"]
    assert (out / "speed.png").stat().st_size > 0
    assert main(["bench", "speed", "--rules", "nope", "--no-progress"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["bench", "speed", "--batch-size", "1", "--no-progress"]) == 2
    assert main(["bench", "speed", "--steps", "3", "--window", "4", "--no-progress"]) == 2
    assert "--window must be between 1 and --steps (3)" in capsys.readouterr().err


def test_bench_lava_speed_command(tmp_path, capsys):
    from lava_local.torch.train import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(epochs=1, n_steps=6, hidden=(12,), params={"signal": "dfa"}), run,
          progress=False)
    out = tmp_path / "lava"
    assert main(["bench", "lava-speed", "--run", str(run), "--samples", "2", "--learn",
                 "stllr-dfa", "--repeats", "2", "--no-progress", "--out", str(out)]) == 0
    assert "ratio to inference" in capsys.readouterr().out
    (res,) = json.loads((out / "lava-speed.json").read_text())
    assert res["repeats"] == 2
    for r in res["rows"]:       # the median of the graph's two runs
        assert len(r["runs"]) == 2 and r["steps_per_second"] == np.median(r["runs"])
    got = {(r["backend"], r["mode"], r["models"]) for r in res["rows"]}
    assert got == {(b, m, "lava-local") for b in ("sim-float", "sim-fixed")
                   for m in ("none", "stllr-dfa")} | \
        {(b, "stllr-dfa", k) for b in ("sim-float", "sim-fixed")
         for k in ("lava-local, separate processes", "Lava's stock")}
    for r in res["rows"]:
        assert r["steps_per_second"] > 0
        if r["models"] != "lava-local":
            assert r["fast_over_this"] > 0
    assert (out / "lava-speed.png").stat().st_size > 0
    assert main(["bench", "lava-speed", "--run", str(run), "--learn", "nope",
                 "--no-progress"]) == 2
    assert main(["bench", "lava-speed", "--run", str(run), "--repeats", "0",
                 "--no-progress"]) == 2


def test_bench_recipes_times_a_recipe_at_full_size(tmp_path, capsys):
    """One batch of tp-nmnist (2312-200-10, T = 100, batch 128) in its own process: the
    row says what ran, and the full-run estimate is its own arithmetic."""
    out = tmp_path / "r"
    assert main(["bench", "recipes", "--recipes", "tp-nmnist", "--threads", "1",
                 "--out", str(out), "--no-progress"]) == 0
    assert "tp-nmnist" in capsys.readouterr().out
    (row,) = json.loads((out / "recipes.json").read_text())
    assert row["layer_sizes"] == [2312, 200, 10] and row["n_steps"] == 100
    assert row["batch_size"] == 128 and row["threads"] == 1
    assert row["seconds_per_batch"] > 0 and row["memory_bytes_per_batch"] >= 0
    assert row["batches_per_epoch"] == -(-60_000 // 128)
    assert row["full_run_hours"] == pytest.approx(
        row["seconds_per_batch"] * row["batches_per_epoch"] * 100 / 3600)
    assert main(["bench", "recipes", "--recipes", "nope", "--no-progress"]) == 2


def test_gpu_speed_script_needs_only_torch_and_writes_what_it_measured(tmp_path):
    """benchmarks/gpu_speed.py, as a device machine without Lava runs it (dry run on the
    CPU, tiny net): every import beyond torch and numpy blocked, one result per T in the
    JSON; then the plots from that JSON here."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gpu"
    blocked = ("lava", "numba", "tqdm", "matplotlib", "h5py", "tonic", "scipy")
    code = ("import sys, runpy\n"
            f"for m in {blocked!r}: sys.modules[m] = None\n"
            "sys.argv = ['gpu_speed.py'] + sys.argv[1:]\n"
            "runpy.run_path('benchmarks/gpu_speed.py', run_name='__main__')\n")
    args = ["--out", str(out), "--device", "cpu", "--steps", "3,5", "--hidden", "8,8",
            "--n-in", "6", "--n-out", "3", "--batch-size", "4", "--repeats", "1",
            "--warmup", "0"]
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=root, capture_output=True,
                       text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "gpu_speed.json").read_text())
    assert [x["setup"]["n_steps"] for x in res] == [3, 5]
    assert [x["variant"] for x in res[0]["rows"]] == [v[0] for v in VARIANTS.values()]
    assert "ratio to BPTT" in r.stdout
    r = subprocess.run([sys.executable, "benchmarks/gpu_speed.py", "--out", str(out),
                        "--plot"], cwd=root, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(root), "PATH": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "gpu_speed_T3.png").stat().st_size > 0
    assert (out / "gpu_speed_T5.png").stat().st_size > 0
    import torch

    if not torch.cuda.is_available():       # the default device is cuda: a clear refusal
        r = subprocess.run([sys.executable, "benchmarks/gpu_speed.py", "--out",
                            str(tmp_path / "none")], cwd=root, capture_output=True,
                           text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": ""})
        assert r.returncode == 2 and "--device cpu for a dry run" in r.stderr
        assert not (tmp_path / "none").exists()
