"""Speaker adaptation: pre-train without one speaker, fine-tune on k of its clips."""

import json

import numpy as np
import pytest

from lava_local.cli import main
from lava_local.data.fixtures import write_speech_commands
from lava_local.data.speech import SpeechCommandsFeatures, resolve_speaker
from lava_local.torch.finetune import shot_split, shots_of


def test_shot_split_is_disjoint_nested_and_seeded():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 5)
    pool, held = shot_split(labels, 3, seed=1)
    assert not set(pool) & set(held) and len(pool) + len(held) == len(labels)
    assert sorted(np.bincount(labels[pool]).tolist()) == [3, 3, 3]
    one, two = shots_of(pool, labels, 1), shots_of(pool, labels, 2)
    assert sorted(labels[one].tolist()) == [0, 1, 2] and set(one) <= set(two)
    again, _ = shot_split(labels, 3, seed=1)
    np.testing.assert_array_equal(pool, again)
    other, _ = shot_split(labels, 3, seed=2)
    assert not np.array_equal(pool, other)


def _tone(f, rng):
    t = np.arange(16_000) / 16_000
    return 0.3 * np.sin(2 * np.pi * f * (1 + 0.03 * rng.standard_normal()) * t)


@pytest.fixture
def speakers(tmp_path):
    """Speakers a, b say yes at 300 Hz and no at 1.2 kHz; speaker c (the most clips)
    says them the other way round, so a network pre-trained on a and b fails on c."""
    rng = np.random.default_rng(0)
    clips = []
    for spk, n, yes, no in (("aaaa", 6, 300, 1200), ("bbbb", 6, 300, 1200),
                            ("cccc", 8, 1200, 300)):
        for _ in range(n):
            clips.append(("yes", spk, _tone(yes, rng)))
            clips.append(("no", spk, _tone(no, rng)))
    write_speech_commands(tmp_path, clips, valid=[0, 13], test=[1, 2, 14, 15])
    return tmp_path


def test_holdout_speaker_is_out_of_every_pretraining_split(speakers):
    assert resolve_speaker(speakers, "auto") == "cccc"
    for split in ("train", "valid", "test"):
        ds = SpeechCommandsFeatures(split, speakers, exclude_speaker="auto", cache=False)
        assert ds.excluded == "cccc" and "cccc" not in set(ds.speakers)
    only = SpeechCommandsFeatures("all", speakers, only_speaker="cccc", cache=False)
    assert len(only) == 16 and set(only.speakers) == {"cccc"}
    with pytest.raises(Exception, match="no clips"):
        resolve_speaker(speakers, "zzzz")


def test_finetune_adapts_to_the_held_out_speaker(speakers, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--rule", "tp", "--dataset", "gsc", "--root", str(speakers),
                 "--holdout-speaker", "auto", "--steps", "20", "--hidden", "16",
                 "--window", "1", "--kappa", "1", "--gamma", "0.9", "--tp-beta", "0.9",
                 "--epochs", "8", "--batch-size", "4",
                 "--lr", "1e-2", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["dataset"]["holdout_speaker"] == "cccc" and res["dataset"]["n_train"] == 18
    assert main(["finetune", str(out), "--shots", "1,3", "--epochs", "15", "--lr", "3e-2",
                 "--no-progress"]) == 0
    ft = json.loads((out / "finetune.json").read_text())
    assert ft["speaker"] == "cccc" and ft["n_eval"] == 16 - 2 * 3
    assert [r["n_train"] for r in ft["rows"]] == [2, 6]
    # pre-trained on the swapped mapping: worse than chance on c; the shots fix it
    assert ft["before"] <= 0.3, ft
    assert ft["rows"][-1]["accuracy"] >= ft["before"] + 0.5, ft
    assert (out / "finetune.png").is_file()
    text = capsys.readouterr().out
    assert "3-shot" in text and "before" in text


@pytest.mark.parametrize("net", [["--hidden", "16,16"], ["--hidden", "16", "--preset",
                                                          "rec-mlp"]])
def test_finetune_on_the_graph_beside_the_batched_one(speakers, tmp_path, capsys, net):
    """The same shots and evaluation clips through the Lava graph (--learn tp, float and
    fixed point): the graded first layer's weights stay, the layers after them (the
    second layer, or the recurrent weights) and the readout learn the held-out speaker's
    swapped mapping."""
    out = tmp_path / "run"
    assert main(["train", "--rule", "tp", "--tp-contrast", "prototype", "--dataset", "gsc",
                 "--root", str(speakers), "--holdout-speaker", "auto", "--steps", "20",
                 *net, "--window", "1", "--kappa", "1", "--gamma", "0.9",
                 "--epochs", "8", "--batch-size", "4", "--lr", "1e-2", "--out", str(out),
                 "--no-progress"]) == 0
    assert main(["finetune", str(out), "--shots", "1,3", "--epochs", "15", "--lr", "3e-2",
                 "--on-graph", "--eta", "0.03125", "--no-progress"]) == 0
    ft = json.loads((out / "finetune.json").read_text())
    g = ft["graph"]
    assert g["mode"] == "tp" and g["learning"]["frozen"] == ["dense0 (graded inputs)"]
    assert set(g["backends"]) == {"sim-float", "sim-fixed"}
    for res in g["backends"].values():
        assert [r["n_train"] for r in res["rows"]] == [r["n_train"] for r in ft["rows"]]
        assert [r["n_stream"] for r in res["rows"]] == [2 * 15, 6 * 15]
        assert res["before"] <= 0.3 and res["rows"][-1]["accuracy"] >= res["before"] + 0.5
    text = capsys.readouterr().out
    assert "Lava sim-fixed" in text and "frozen: dense0" in text
    assert main(["finetune", str(out), "--on-graph", "--learn", "nope",
                 "--no-progress"]) == 2
    assert "unknown on-graph learning mode" in capsys.readouterr().err


def test_finetune_errors_are_clear(speakers, tmp_path, capsys):
    out = tmp_path / "plain"
    assert main(["train", "--rule", "tp", "--dataset", "gsc", "--root", str(speakers),
                 "--steps", "5", "--hidden", "4", "--epochs", "1", "--batch-size", "4",
                 "--out", str(out), "--no-progress"]) == 0
    assert main(["finetune", str(out), "--no-progress"]) == 2
    assert "held-out speaker" in capsys.readouterr().err
    assert main(["finetune", str(tmp_path / "none"), "--no-progress"]) == 2
    assert main(["train", "--dataset", "digits", "--holdout-speaker", "x",
                 "--no-progress"]) == 2
    assert "applies to --dataset gsc" in capsys.readouterr().err
