"""The rule registry: every rule is one complete object, and nothing outside
``lava_local/rules/`` branches on a rule's name."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from lava_local import rules
from lava_local.cli import main
from lava_local.networks import ExportedNet
from lava_local.rules import LAYER_KINDS, REGISTRY, Costs
from lava_local.torch.loop import Trainer
from lava_local.torch.train import RunError, TrainConfig

PACKAGE = Path(rules.__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_rule_is_complete(name):
    r = rules.get(name)
    assert r.name == name and r.title and r.paper
    p = r.Params()
    assert r.Params.from_flat(p.to_flat()) == p            # flat keys round-trip
    assert issubclass(r.trainer_class(), Trainer)
    assert "dense" in r.layers and r.layers <= set(LAYER_KINDS)
    c = Costs([64, 32, 16, 10], n_steps=20, t_l=5)
    assert r.memory_values(c, p) > 0 and r.learning_macs(c, p) > 0
    assert r.memory_formula() and r.macs_formula()
    if r.graph is None:
        assert len(r.no_graph_reason) > 20, "a rule without graph parts says why"
    else:
        g = r.graph
        assert rules.graph_mode(g.mode) is not None and g.rule == name
        assert g.neuron and g.signal and g.product_series
        net = ExportedNet(weights=[np.zeros((8, 6)), np.zeros((3, 8))], gamma=0.5,
                          v_th=0.8, kappa=0.9, surrogate="triangle", n_steps=5,
                          window_start=0, rule=name, params=p.to_flat())
        parts = g.bind(net, "sim-float")
        assert parts.record()["mode"] == g.mode


def test_unknown_rule_and_foreign_options_are_clear_errors():
    with pytest.raises(ValueError, match="choose one of stllr, tess"):
        rules.get("hebb")
    with pytest.raises(RunError, match="--signal does not apply to rule bptt"):
        TrainConfig.from_flat(rule="bptt", signal="dfa")
    with pytest.raises(RunError, match="--tess-f, --tp-beta do not apply to rule stllr"):
        TrainConfig.from_flat(rule="stllr", tess_f="identity", tp_beta=0.5)
    # a saved run may carry every rule's options (format 1): they are ignored on reading
    cfg = TrainConfig.from_dict({"rule": "tp", "tp_beta": 0.7, "signal": "bp"})
    assert cfg.params.beta == 0.7


@pytest.mark.parametrize("key", ["lam_pre", "alpha_pre", "alpha_post", "tess_f_lo",
                                 "tp_beta", "solsa_sigma"])
def test_non_finite_options_are_refused(key):
    rule = next(r for r in REGISTRY.values() if key in r.Params.keys())
    with pytest.raises(RunError, match="finite|must"):
        TrainConfig.from_flat(rule=rule.name, **{key: math.nan})


def test_layer_kinds_come_from_the_rule():
    with pytest.raises(RunError, match="solsa does not train conv"):
        TrainConfig(rule="solsa", preset="vgg9")
    with pytest.raises(RunError, match="ttlbptt does not train recurrent"):
        TrainConfig(rule="ttlbptt", preset="rec-mlp")
    with pytest.raises(RunError, match="batch size >= 2"):
        TrainConfig(rule="tp", batch_size=1)


def test_lava_local_rules_lists_every_rule(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for r in REGISTRY.values():
        assert r.name in out and r.memory_formula() in out
        assert (f"--learn {r.graph.mode}" if r.graph else r.no_graph_reason[:40]) in out
    assert main(["rules", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert [d["rule"] for d in described] == list(REGISTRY)


def test_every_rule_trains_and_shows_in_compare(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--rules", "all", "--epochs", "1", "--steps", "4", "--hidden",
                 "8", "--batch-size", "64", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "compare.json").read_text())
    assert list(res) == list(REGISTRY)
    for name, r in res.items():
        assert r["config"]["rule"] == name and len(r["history"]) == 1
        assert r["cost"]["memory_analytic_bytes_per_sample"] > 0
        assert r["cost"]["macs_analytic_learning_per_sample"] > 0
    # an option that applies to none of the rules compared is an error, not ignored
    assert main(["compare", "--rules", "stllr,bptt", "--tp-beta", "0.5", "--no-progress",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--tp-beta apply to none" in capsys.readouterr().err


_RULE = "|".join(REGISTRY)
_BRANCH = re.compile(
    rf"rule ?(==|!=|in) ?[\(\"']|\.rule ?(==|!=|in)\b|(==|!=) ?[\"']({_RULE})[\"']"
    rf"|[\"']({_RULE})[\"'] ?(==|!=)|in \([\"']({_RULE})[\"']")


def test_no_branch_on_a_rule_name_outside_the_registry():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "rules" in path.relative_to(PACKAGE).parts:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if _BRANCH.search(line):
                hits.append(f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)
    # the pattern finds what it is meant to find
    assert _BRANCH.search('    if cfg.rule == "tp":') and _BRANCH.search('x if "tess" != r')
