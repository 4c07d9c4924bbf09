"""The lava-local command: errors are one clear line and a non-zero exit, runs write
their results."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from lava_local.cli import main


@pytest.mark.parametrize("argv, match", [
    (["train", "--rule", "hebb"], "invalid choice: 'hebb'"),
    (["train", "--dataset", "mnistdvs"], "invalid choice: 'mnistdvs'"),
    (["train", "--dataset", "nmnist", "--no-progress"], "lava-local data fetch nmnist"),
    (["train", "--steps", "-5"], "positive integer"),
    (["train", "--steps", "0"], "positive integer"),
    (["train", "--hidden", "12,x"], "comma-separated"),
    (["train", "--window", "50", "--steps", "20"], "learning window"),
    (["train", "--resume", "--out", "{tmp}/missing"], "no checkpoint"),
    (["bench", "nope"], "invalid choice"),
])
def test_bad_input_is_a_clear_error(argv, match, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert match in err
    assert "Traceback" not in err


def test_console_script_error_has_no_traceback():
    p = subprocess.run([sys.executable, "-m", "lava_local.cli", "train", "--steps", "-1"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "positive integer" in p.stderr and "Traceback" not in p.stderr


def test_train_writes_results_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--rule", "stllr", "--epochs", "1", "--steps", "6", "--hidden", "16",
            "--out", str(out), "--no-progress", "--signal", "dfa"]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["signal"] == "dfa" and len(res["history"]) == 1
    assert (out / "checkpoint.pt").is_file() and (out / "training.png").is_file()
    assert main(args) == 2  # refuses to overwrite
    assert "--resume" in capsys.readouterr().err
    args[args.index("--epochs") + 1] = "2"
    assert main(args + ["--resume"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [h["epoch"] for h in res["history"]] == [1, 2]


def test_demo_small(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--epochs", "1", "--steps", "6", "--hidden", "16",
                 "--sweep-steps", "4,12", "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "stllr" in text and "bptt" in text and "test acc" in text
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"stllr", "bptt"}
    assert {r["n_steps"] for r in summary["memory_vs_steps"]} == {4, 12}
    assert (out / "summary.png").stat().st_size > 1000
    assert main(["demo", "--out", str(out), "--no-progress"]) == 2  # not empty: refused


def test_bench_memory(tmp_path, capsys):
    assert main(["bench", "memory", "--sweep-steps", "5,10", "--hidden", "16",
                 "--no-progress", "--out", str(tmp_path / "b")]) == 0
    rows = json.loads((tmp_path / "b" / "memory.json").read_text())
    by = {(r["rule"], r["n_steps"]): r["memory_measured_bytes_batch"] for r in rows}
    assert by[("stllr", 5)] == by[("stllr", 10)] < by[("bptt", 10)]
    assert "BPTT / S-TLLR" in capsys.readouterr().out


def test_run_errors_are_clear(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nothing"), "--no-progress"]) == 2
    assert "no trained run" in capsys.readouterr().err
    out = tmp_path / "r"
    assert main(["train", "--epochs", "1", "--steps", "5", "--hidden", "8", "--out", str(out),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["run", str(out), "--backend", "loihi2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "lava-loihi" in err and "Traceback" not in err
    assert main(["run", str(out), "--samples", "3", "--no-progress"]) == 0
    res = json.loads((out / "lava-sim-float.json").read_text())
    assert res["n_samples"] == 3 and len(res["predictions"]) == 3


def test_compare_and_sweep_small(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--rules", "stllr,tess,ttlbptt,bptt", "--epochs", "1", "--steps",
                 "6", "--hidden", "16", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "compare.json").read_text())
    assert set(res) == {"stllr", "tess", "ttlbptt", "bptt"}
    assert (out / "compare.png").stat().st_size > 1000
    assert "tess" in capsys.readouterr().out
    assert main(["compare", "--rules", "stllr,hebb", "--no-progress"]) == 2
    assert "hebb" in capsys.readouterr().err
    sw = tmp_path / "sw"
    assert main(["sweep", "ttlbptt", "--window", "1,T", "--block", "1,all", "--epochs", "1",
                 "--steps", "6", "--hidden", "8,8", "--out", str(sw), "--no-progress"]) == 0
    rows = json.loads((sw / "sweep.json").read_text())
    assert {(r["K"], r["block"]) for r in rows} == {(1, 1), (1, 2), (6, 1), (6, 2)}
    mem = {(r["K"], r["block"]): r["memory_measured_bytes_per_sample"] for r in rows}
    assert mem[(1, 1)] < mem[(6, 1)]
    assert main(["sweep", "ttlbptt", "--window", "x", "--no-progress"]) == 2


def test_run_learn_measures_test_accuracy_before_and_after(tmp_path, capsys):
    """`run --learn` streams training samples through the learning graph and measures
    test samples it never learned from, before and after; the learned net is kept."""
    from lava_local.networks import load_exported

    out = tmp_path / "t"
    assert main(["train", "--rule", "tess", "--epochs", "1", "--steps", "5", "--hidden", "12",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["run", str(out), "--backend", "sim-fixed", "--learn", "tess", "--samples",
                 "6", "--learn-samples", "4", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "test acc before" in text and "test acc after" in text
    res = json.loads((out / "lava-sim-fixed-tess.json").read_text())
    assert res["learning"]["mode"] == "tess" and res["learning"]["f"] == "identity"
    assert res["stream"]["split"] == "train" and res["stream"]["n_samples"] == 4
    assert res["test"]["n_samples"] == 6 and len(res["test"]["predictions_after"]) == 6
    # the images it learned from and the images it reports accuracy on are disjoint
    from sklearn.datasets import load_digits

    from lava_local.data.digits import _split_indices

    split = _split_indices(load_digits().target)
    learned_from = set(split["train"][res["stream"]["indices"]])
    evaluated_on = set(split["test"][:6])
    assert len(learned_from) == 4 and not learned_from & evaluated_on
    learned = load_exported(out / "lava-sim-fixed-tess.h5")
    original = load_exported(out / "net.h5")
    assert any(np.abs(a - b).max() > 0 for a, b in zip(learned.weights, original.weights))
    assert max(res["weight_change_norm"]) > 0
    # the learned net is also a run folder that run, finetune and train --resume take
    lr = tmp_path / "t-lava-sim-fixed-tess"
    assert res["learned_run"] == str(lr)
    rec = json.loads((lr / "learned-on-graph.json").read_text())
    assert rec["from_run"] == str(out) and rec["stream"]["split"] == "train"
    assert main(["run", str(lr), "--backend", "sim-fixed", "--samples", "3",
                 "--no-progress"]) == 0
    from lava_local.networks import export_run

    again = load_exported(export_run(lr))
    for a, b in zip(again.weights, learned.weights):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)   # float32 checkpoint
    assert main(["train", "--rule", "tess", "--epochs", "2", "--steps", "5", "--hidden",
                 "12", "--out", str(lr), "--resume", "--no-progress"]) == 0
    # a second --learn into the same folder is refused before any work
    capsys.readouterr()
    assert main(["run", str(out), "--backend", "sim-fixed", "--learn", "tess", "--samples",
                 "2", "--learn-samples", "2", "--no-progress"]) == 2
    assert "give another --learned-out" in capsys.readouterr().err
    # an option of another learning mode is refused before anything runs
    assert main(["run", str(out), "--learn", "stllr-dfa", "--tess-f", "identity",
                 "--no-progress"]) == 2
    assert "--tess-f apply to --learn tess" in capsys.readouterr().err
    assert main(["train", "--rule", "tess", "--signal", "dfa", "--no-progress",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--signal does not apply to rule tess" in capsys.readouterr().err


def test_data_list_names_a_missing_root(tmp_path, capsys):
    assert main(["data", "list", "--root", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_on_data_of_another_input_size_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--rule", "bptt", "--dataset", "temporal", "--epochs", "1",
                 "--hidden", "8", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", str(out), "--dataset", "digits", "--no-progress"]) == 2
    assert "inputs but the data" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["--lr", "1e38"], "use e.g. --lr 1e-3"),
    (["--steps", "1000000000"], "out of memory|lower --steps"),
    (["--alpha-pre", "nan"], "finite"),
    (["--v-th", "nan"], "finite"),
])
def test_options_that_cannot_train_end_in_one_line(argv, match, tmp_path, capsys):
    code = main(["train", "--rule", "stllr", "--epochs", "1", "--hidden", "8",
                 "--no-progress", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and re.search(match, err) and "Traceback" not in err
    assert not (tmp_path / "r" / "results.json").exists()
