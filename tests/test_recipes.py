"""Every recipe builds its network and runs one training step on fixture-sized input."""

import numpy as np
import pytest
import torch

from lava_local.cli import main
from lava_local.data.events import SPECS
from lava_local.recipes import NOT_ON_CARDS, RECIPES, card_fields, get_recipe
from lava_local.torch.train import TrainConfig, build


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_builds_and_steps(name):
    rec = get_recipe(name)
    conf = dict(rec.config)
    steps = 3
    conf["n_steps"] = steps
    if conf.get("window"):
        conf["window"] = min(conf["window"], steps)
    cfg = TrainConfig.from_flat(**conf)
    if cfg.dataset == "gsc":                       # 120 mel features, 35 words
        n_in, n_cls, frame = 120, 35, None
    else:
        spec = SPECS[cfg.dataset]
        n_in, n_cls = spec.n_inputs, spec.n_classes
        frame = spec.frame_shape if len(spec.frame_shape) == 3 else None
    model, _, trainer = build(cfg, n_in, n_cls, torch.device("cpu"), frame)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, 2, n_in, generator=g) < 0.2).float()
    y = torch.tensor([0, 1])
    before = [w.detach().clone() for w in model.weights]
    trainer.train_batch(x, y)
    assert any(not torch.equal(a, w.detach()) for a, w in zip(before, model.weights))
    assert rec.reported


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_card_covers_every_setting_that_reaches_the_run(name):
    """No default reaches a recipe's run without a card line: the card's keys are exactly
    the settings of the resulting configuration (less the run's plumbing), each with the
    value the run gets and a source."""
    rec = get_recipe(name)
    cfg = TrainConfig.from_flat(**rec.config)
    flat = cfg.to_dict()
    fields = card_fields(cfg)
    missing = sorted(set(fields) - set(rec.card))
    extra = sorted(set(rec.card) - set(fields))
    assert not missing, f"{name}: settings without a card line: {missing}"
    assert not extra, f"{name}: card lines that do not reach the run: {extra}"
    for k, s in rec.card.items():
        got = flat[k]
        want = list(s.value) if isinstance(s.value, tuple) else s.value
        assert got == want, (name, k, got, want)
        assert s.source.strip(), (name, k)
    assert not set(NOT_ON_CARDS) & set(rec.card)
    if rec.code:        # a recipe from public code says where it cannot follow it
        assert rec.departures and all(d.what and d.code and d.here for d in rec.departures)
        tag = {"S-TLLR": "[S]", "TESS": "[T]", "traces": "[TP]"}
        mark = next(v for k, v in tag.items() if k in rec.code)
        assert sum(mark in s.source for s in rec.card.values()) >= len(rec.card) // 2


def test_recipes_follow_the_public_code_where_it_differs_from_the_paper():
    """The settings the issue lists, as the public code has them."""
    for name in ("stllr-dvsgesture", "stllr-cifar10dvs", "stllr-ncaltech101", "stllr-shd"):
        c = get_recipe(name).config
        assert c["post_form"] == "code" and c["v_th"] == 0.6 and c["v_th_min"] == 0.5
        assert c["weight_std"] and c["bias"] and not c["learn_leak"]
    assert get_recipe("stllr-shd-dfa").config["dfa_bound"] == "layer"
    assert get_recipe("stllr-shd").config["window"] == 90
    assert get_recipe("stllr-cifar10dvs").config["surrogate"] == "sigmoid_prime4"
    assert get_recipe("tess-dvsgesture").config["alpha_post"] == 0.0
    assert get_recipe("tess-dvsgesture-as-released").config["rule"] == "stllr"
    assert get_recipe("tp-nmnist").statistic.top == 5


def test_recipes_command_lists_and_shows_cards(capsys):
    import json

    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in RECIPES) and "mapolinario94/S-TLLR" in out
    assert main(["recipes", "show", "stllr-shd"]) == 0
    out = capsys.readouterr().out
    rec = get_recipe("stllr-shd")
    assert all(k in out for k in rec.card) and "README.md:107" in out
    assert all(d.what in out for d in rec.departures)
    assert main(["recipes", "show", "tp-dvsgesture", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["card"]["tp_beta"]["value"] == 0.98 and card["departures"]
    assert main(["recipes", "show", "nope"]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["recipes", "show"]) == 2


def test_train_with_a_recipe_on_fixture_data(tmp_path, capsys):
    from lava_local.data.fixtures import write_nmnist

    rng = np.random.default_rng(0)
    samples = [(rng.integers(0, 34, 30), rng.integers(0, 34, 30),
                np.sort(rng.integers(0, 90_000, 30)), rng.integers(0, 2, 30), k % 10)
               for k in range(4)]
    write_nmnist(tmp_path / "data", "train", samples)
    write_nmnist(tmp_path / "data", "test", samples[:2])
    out = tmp_path / "run"
    code = main(["train", "--recipe", "tp-nmnist", "--root", str(tmp_path / "data"),
                 "--epochs", "1", "--batch-size", "2", "--hidden", "16", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    import json

    res = json.loads((out / "results.json").read_text())
    assert res["config"]["rule"] == "tp" and res["config"]["tp_beta"] == 0.98
    assert res["config"]["hidden"] == [16]               # the command line wins
    assert main(["train", "--recipe", "nope", "--no-progress"]) == 2


def _fixture_data(root, dataset):
    """A few samples of ``dataset`` in its real on-disk format under ``root``."""
    from lava_local.data import fixtures as fx

    rng = np.random.default_rng(1)

    def dvs(n, size, t_max):
        return (rng.integers(0, size, n), rng.integers(0, size, n),
                np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n))

    if dataset == "nmnist":
        for split, n in (("train", 5), ("test", 2)):
            fx.write_nmnist(root, split, [(*dvs(300, 34, 100_000), k % 10) for k in range(n)])
    elif dataset in ("shd", "ssc"):
        for split, n in (("train", 5), ("test", 2)):
            fx.write_hsd(root, dataset, split, [(np.sort(rng.random(200)),
                                                 rng.integers(0, 700, 200), k % 20)
                                                for k in range(n)], 20 if dataset == "shd" else 35)
    elif dataset == "dvsgesture":
        for split, n in (("train", 5), ("test", 2)):
            fx.write_dvsgesture(root, split, [(*dvs(2000, 128, 10**6)[:2],
                                               rng.integers(0, 2, 2000),
                                               np.sort(rng.random(2000) * 1000), k % 11, k)
                                              for k in range(n)])
    elif dataset == "ncaltech101":
        fx.write_ncaltech101(root, [(*dvs(500, 200, 300_000), name)
                                    for name in ("airplanes", "Motorbikes") for _ in range(5)])
    elif dataset == "cifar10dvs":
        fx.write_cifar10dvs(root, [(*dvs(2000, 128, 10**6), c) for c in (0, 1)
                                   for _ in range(10)])
    elif dataset == "gsc":
        t = np.arange(16_000) / 16_000
        clips = [(w, spk, 0.3 * np.sin(2 * np.pi * f * t))
                 for spk, n in (("aaaa", 3), ("bbbb", 3), ("c50f55b8", 4))
                 for _ in range(n) for w, f in (("yes", 300), ("no", 1200))]
        fx.write_speech_commands(root, clips, valid=[0], test=[1, 6, 7])
    else:
        raise AssertionError(dataset)


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)  # full-size nets on CPU
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_runs_as_is_on_fixture_data(name, tmp_path):
    """`train --recipe NAME --epochs 1`: every other setting as the recipe has it (T,
    batch, network at full size), on a few samples in the data set's own format."""
    import json

    rec = get_recipe(name)
    _fixture_data(tmp_path / "data", rec.config["dataset"])
    out = tmp_path / "run"
    assert main(["train", "--recipe", name, "--root", str(tmp_path / "data"), "--epochs",
                 "1", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["n_steps"] == rec.config["n_steps"]
    assert res["config"]["batch_size"] == rec.config["batch_size"]
    assert res["dataset"]["n_steps"] == rec.config["n_steps"]
