"""Every recipe builds its network and runs one training step on fixture-sized input."""

import numpy as np
import pytest
import torch

from lava_local.cli import main
from lava_local.data.events import SPECS
from lava_local.recipes import RECIPES, get_recipe
from lava_local.torch.train import TrainConfig, build


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_builds_and_steps(name):
    rec = get_recipe(name)
    conf = dict(rec.config)
    steps = 3
    conf["n_steps"] = steps
    if conf.get("window"):
        conf["window"] = min(conf["window"], steps)
    cfg = TrainConfig(**conf)
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
