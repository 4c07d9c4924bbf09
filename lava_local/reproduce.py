"""Reproduce a recipe over several seeds: one run per seed, mean ± std beside the paper's.

:func:`reproduce` trains ``recipe`` once per seed into ``OUT/seed{S}`` (an ordinary run
folder of :func:`lava_local.torch.train.train`), and is resumable at any point: a seed whose
results are complete is read back, a seed with a checkpoint continues from its last
epoch, a seed with neither starts. After every seed it writes ``OUT/reproduce.json``
(each seed's final and best test accuracy, the aggregate, the paper's number and the
difference) so a killed reproduction loses at most the epoch in progress.

The aggregate is the statistic the recipe's paper reports (``Recipe.statistic``): per
seed the last or the best epoch's test accuracy, the mean over every seed or over the best
k of them (Traces Propagation: top 5 of 10), and the population or sample standard
deviation. The mean ± sample std over every seed is written beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from .recipes import Recipe
from .torch.train import CHECKPOINT, RESULTS, RunError, TrainConfig, _write_json, train

#: File an aggregate is written to, in the reproduction's folder.
REPRODUCE = "reproduce.json"
#: Fields that may differ between the seeds' runs of one reproduction.
_PER_SEED = ("seed", "epochs", "device")   # as `train --resume` allows


def seed_configs(recipe: Recipe, seeds: list[int], overrides: dict | None = None
                 ) -> dict[int, TrainConfig]:
    """The run configuration of every seed (the recipe, ``overrides`` on top)."""
    if not seeds:
        raise RunError("give at least one seed, e.g. --seeds 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise RunError(f"seeds repeat: {seeds}; give each seed once")
    overrides = dict(overrides or {})
    if "seed" in overrides:
        raise RunError("give the seeds with --seeds (not --seed) to reproduce")
    return {s: TrainConfig.from_flat(**{**recipe.config, **overrides, "seed": s})
            for s in seeds}


def _same_run(a: dict, b: dict) -> dict:
    """Fields (other than per-seed ones) in which two saved configs differ."""
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k not in _PER_SEED and a.get(k) != b.get(k)}


def _check_folder(folder: Path, cfg: TrainConfig) -> str:
    """What to do with a seed's folder: "done", "resume" or "start" (a folder holding a
    run of other settings is refused before any work)."""
    results, ckpt = folder / RESULTS, folder / CHECKPOINT
    if folder.exists() and not folder.is_dir():
        raise RunError(f"{folder} is a file; remove it or choose another --out")
    saved = None
    if results.is_file():
        saved = json.loads(results.read_text())["config"]
    elif ckpt.is_file():
        import torch

        saved = torch.load(ckpt, map_location="cpu", weights_only=False)["config"]
    if saved is None:
        return "start"
    diff = _same_run(TrainConfig.from_dict(saved).to_dict(), cfg.to_dict())
    if diff:
        raise RunError(f"{folder} holds a run with other settings {diff} (saved vs now); "
                       "reproduce with the same options, or choose another --out")
    if results.is_file():
        res = json.loads(results.read_text())
        if len(res["history"]) >= cfg.epochs:
            return "done"
        if not ckpt.is_file():
            raise RunError(f"{folder} holds a finished run of {len(res['history'])} epochs "
                           f"and no checkpoint to continue it to {cfg.epochs}; choose "
                           "another --out")
    return "resume"


def seed_summary(seed: int, res: dict) -> dict:
    """A seed's figures from its results: final and best test accuracy."""
    accs = [h["test_acc"] for h in res["history"]]
    return {"seed": seed, "final_test_acc": accs[-1], "best_test_acc": max(accs),
            "best_epoch": 1 + accs.index(max(accs)), "epochs": len(accs),
            "train_time_s": res["train_time_s"], "device": res["device"],
            "history_epochs": [h["epoch"] for h in res["history"]], "history_acc": accs}


def aggregate(values: list[float], ddof: int = 1, top: int | None = None) -> dict:
    """Mean and standard deviation (n − ``ddof``; 0 for one value) of ``values``, or of
    the ``top`` largest of them."""
    if top is not None:
        values = sorted(values)[-top:]
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - ddof)) if n > ddof else 0.0
    return {"mean": mean, "std": std, "n": n}


def summarise(recipe: Recipe, seeds: list[dict]) -> dict:
    """The reproduction's aggregate (percent, the paper's statistic) beside the paper's
    number, and the mean ± sample std over every seed."""
    st = recipe.statistic
    key = "best_test_acc" if st.metric == "best" else "final_test_acc"
    vals = [100 * s[key] for s in seeds]
    agg = aggregate(vals, st.ddof, st.top)
    every = aggregate(vals, 1)
    paper = recipe.paper_acc
    return {
        "recipe": recipe.name, "paper": recipe.paper, "reported": recipe.reported,
        "metric": f"{'best' if st.metric == 'best' else 'last'}-epoch test accuracy (%)",
        "statistic": st.describe(),
        "seeds": seeds,
        "mean": agg["mean"], "std": agg["std"], "n_seeds": len(seeds),
        "n_aggregated": agg["n"],
        "all_seeds_mean": every["mean"], "all_seeds_sample_std": every["std"],
        "paper_mean": None if paper is None else paper[0],
        "paper_std": None if paper is None else paper[1],
        "difference": None if paper is None else agg["mean"] - paper[0],
    }


def reproduce(recipe: Recipe, seeds: list[int], out: Path, overrides: dict | None = None,
              progress: bool = True, on_seed: Callable[[dict], None] | None = None) -> dict:
    """Train ``recipe`` once per seed into ``out/seed{S}`` and aggregate (module doc).

    Every seed's folder is checked before any training (a folder with a run of other
    settings is an error). ``on_seed`` is called with each seed's summary as it is done.
    Returns the aggregate, also written to ``out/reproduce.json``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder for the reproduction")
    cfgs = seed_configs(recipe, seeds, overrides)
    plan = {s: _check_folder(out / f"seed{s}", c) for s, c in cfgs.items()}
    out.mkdir(parents=True, exist_ok=True)
    done: list[dict] = []
    for s, cfg in cfgs.items():
        folder = out / f"seed{s}"
        if plan[s] == "done":
            res = json.loads((folder / RESULTS).read_text())
        else:
            res = train(cfg, folder, resume=plan[s] == "resume", progress=progress)
        done.append(seed_summary(s, res))
        summary = summarise(recipe, done)
        summary["complete"] = len(done) == len(cfgs)
        summary["config"] = {k: v for k, v in cfg.to_dict().items() if k != "seed"}
        _write_json(summary, out / REPRODUCE)
        if on_seed is not None:
            on_seed(done[-1])
    return summary
