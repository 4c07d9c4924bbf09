"""Speaker adaptation: k-shot fine-tuning of a pre-trained keyword spotter.

Traces Propagation's protocol (Google Speech Commands): pre-train on every speaker but
one (``lava-local train --dataset gsc --holdout-speaker S``), then, for each k, fine-tune
a copy of the pre-trained network with the same rule on k clips per word of the held-out
speaker and measure the accuracy on that speaker's other clips, before and after.

Selection (seeded): per word, the held-out speaker's clips are put in a random order;
the first ``max(shots)`` of each word form the shot pool (k-shot uses the first k) and all
the other clips are the evaluation set, the same for "before" and every k. Words the
speaker said at most ``max(shots)`` times contribute shots but no evaluation clips.

On the Lava graph (``on_graph``): the same shots and evaluation clips, for each backend.
The exported net streams ``epochs`` passes over the k-shot clips (seeded order) through
its learning graph (the run's rule's on-graph mode, e.g. ``tp``: SGD steps of η, batch
1) and the evaluation clips through inference graphs before and after. The log-mel
features are graded inputs: the graph's first layer does not learn on them (see
:mod:`lava_local.networks.graph`); the layers after it and the readout do.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.speech import SpeechCommandsFeatures
from ..data.subset import Subset
from .loop import first_learning_step
from .train import (
    CHECKPOINT,
    RESULTS,
    RunError,
    TrainConfig,
    build,
    evaluate,
    iterate_batches,
    load_weights,
    read_checkpoint,
    resolve_device,
)

FINETUNE = "finetune.json"


def shot_split(labels: np.ndarray, shots: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, eval) indices: per class, a seeded order; the first ``shots`` are the pool.

    ``pool`` is ordered shot-major (every class's first clip, then every class's second,
    ...), so ``pool_for(k)`` is a selection of it (see :func:`shots_of`)."""
    rng = np.random.default_rng(seed)
    pool, rest = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        pool.append(idx[:shots])
        rest.append(idx[shots:])
    ordered = [p[j] for j in range(shots) for p in pool if j < len(p)]
    return np.array(ordered, dtype=np.int64), np.sort(np.concatenate(rest)).astype(np.int64)


def shots_of(pool: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The k-shot training set: at most the first k pool clips of each class."""
    seen: dict = {}
    out = []
    for i in pool:
        c = int(labels[i])
        if seen.get(c, 0) < k:
            seen[c] = seen.get(c, 0) + 1
            out.append(i)
    return np.array(out, dtype=np.int64)


def _batches(n: int, batch_size: int) -> int:
    """Number of near-equal batches of at most ``batch_size`` (each >= 2 when n >= 2)."""
    return max(1, math.ceil(n / batch_size))


def finetune_speaker(run_dir, shots=(1, 5), epochs: int = 20, lr: float | None = None,
                     seed: int = 0, root=None, device: str = "auto",
                     progress: bool = True, on_graph: bool = False,
                     backends: tuple[str, ...] = ("sim-float", "sim-fixed"),
                     learn: str | None = None, eta: float | None = None) -> dict:
    """Fine-tune the run in ``run_dir`` on k shots of its held-out speaker, for each k.

    Returns (and writes to ``run_dir/finetune.json``, with a plot) the speaker, the
    evaluation-set size, the accuracy before and, per k, the accuracy after fine-tuning;
    with ``on_graph`` also the same protocol on the Lava graph for every backend of
    ``backends`` (``learn``: the on-graph mode, default the run's rule's; ``eta``: its
    SGD step, default the mode's).
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).is_file() or not (run_dir / RESULTS).is_file():
        raise RunError(f"{run_dir} holds no finished run (checkpoint.pt and results.json); "
                       "train one with `lava-local train --recipe tp-gsc-kws --root DIR`")
    res = json.loads((run_dir / RESULTS).read_text())
    cfg = TrainConfig.from_dict(res["config"])
    speaker = res["dataset"].get("holdout_speaker")
    if cfg.dataset != "gsc" or speaker is None:
        raise RunError("speaker fine-tuning needs a run pre-trained on gsc with a held-out "
                       "speaker (`--holdout-speaker auto` or an id; the tp-gsc-kws recipe "
                       "sets it)")
    shots = sorted({int(k) for k in shots})
    if not shots or shots[0] < 1:
        raise RunError(f"--shots must be positive integers, got {shots}")
    if epochs < 1:
        raise RunError(f"--epochs must be >= 1, got {epochs}")
    cfg = replace(cfg, lr=cfg.lr if lr is None else float(lr), epochs=epochs,
                  root=str(root) if root is not None else cfg.root)
    mode = None
    if on_graph:
        mode = _graph_mode(cfg, learn, backends)
    dev = resolve_device(device)
    from ..data.events import DatasetError

    try:
        clips = SpeechCommandsFeatures("all", cfg.root, n_steps=cfg.n_steps,
                                       only_speaker=speaker)
    except DatasetError as e:
        raise RunError(str(e)) from None
    pool, held = shot_split(clips.labels, max(shots), seed)
    if len(held) == 0:
        raise RunError(f"speaker {speaker} has no clips left to evaluate on after "
                       f"{max(shots)} shots per word; use fewer --shots")
    eval_ds = Subset(clips, held)
    t_l = first_learning_step(cfg.n_steps, cfg.window)
    ck = read_checkpoint(run_dir / CHECKPOINT, dev)

    def pretrained():
        model, _, trainer = build(cfg, clips.n_inputs, clips.n_classes, dev,
                                    clips.frame_shape)
        load_weights(ck, cfg, model, trainer, dev)
        return model, trainer

    model, _ = pretrained()
    before, _ = evaluate(model, eval_ds, t_l, dev)
    rows = []
    for k in shots:
        idx = shots_of(pool, clips.labels, k)
        need = cfg.spec.min_batch_of(cfg.params)
        if len(idx) < need:
            raise RunError(f"{k}-shot gives {len(idx)} clip(s); {cfg.spec.title} needs "
                           f"batches of at least {need} clips")
        train_ds = Subset(clips, idx)
        model, trainer = pretrained()
        n_batches = _batches(len(idx), cfg.batch_size)
        bar = tqdm(range(epochs), desc=f"{k}-shot fine-tuning ({len(idx)} clips)",
                   disable=not progress, leave=True, dynamic_ncols=True)
        losses = []
        for epoch in bar:
            trainer.start_epoch(epoch, epochs)
            order = np.random.default_rng([seed, k, epoch]).permutation(len(idx))
            size = math.ceil(len(idx) / n_batches)
            for x, y in iterate_batches(train_ds, size, order, dev):
                losses.append(trainer.train_batch(x, y))
            bar.set_postfix(loss=f"{np.mean(losses[-n_batches:]):.3f}")
        after, _ = evaluate(model, eval_ds, t_l, dev)
        rows.append({"shots": k, "n_train": int(len(idx)), "accuracy": after,
                     "final_loss": float(np.mean(losses[-n_batches:]))})
    out = {"run": str(run_dir), "rule": cfg.rule, "speaker": speaker,
           "n_eval": int(len(held)), "words_in_eval": int(len(np.unique(eval_ds.labels))),
           "before": before, "rows": rows, "epochs": epochs, "lr": cfg.lr, "seed": seed,
           "device": str(dev)}
    if on_graph:
        out["graph"] = _finetune_on_graph(run_dir, clips, pool, eval_ds, shots, backends,
                                          mode, epochs, eta, seed, progress)
    (run_dir / FINETUNE).write_text(json.dumps(out, indent=2) + "\n")
    _plot(out, run_dir / "finetune.png")
    return out


def _graph_mode(cfg, learn: str | None, backends) -> str:
    """The on-graph learning mode to fine-tune with (checked before any work)."""
    from .. import rules
    from ..networks.graph import BACKENDS, check_backend

    for b in backends:
        if b not in BACKENDS or b == "loihi2":
            raise RunError(f"--backends takes sim-float and sim-fixed, got {b!r}")
        check_backend(b)
    if learn is None:
        g = cfg.spec.graph
        if g is None:
            raise RunError(f"{cfg.spec.title} has no on-graph learning "
                           f"({cfg.spec.no_graph_reason}); pass --learn with one of "
                           f"{', '.join(rules.graph_modes())}")
        return g.mode
    try:
        return rules.graph_mode(learn).mode
    except ValueError as e:
        raise RunError(str(e)) from None


def _finetune_on_graph(run_dir: Path, clips, pool, eval_ds, shots, backends, mode: str,
                       passes: int, eta: float | None, seed: int, progress: bool) -> dict:
    """The k-shot protocol on the Lava graph (see module doc), per backend."""
    from ..networks import export_run, load_exported
    from ..networks.online import learn_online

    try:
        net = load_exported(export_run(run_dir))
    except RunError as e:
        raise RunError(f"on-graph fine-tuning needs the run in Lava: {e}") from None
    out: dict = {"mode": mode, "passes": passes, "backends": {}}
    for backend in backends:
        res = {"rows": []}
        for k in shots:
            idx = shots_of(pool, clips.labels, k)
            stream = Subset(clips, np.tile(idx, passes))
            r = learn_online(net, stream, eval_ds, backend, mode, eta=eta, rng_seed=seed,
                             progress=progress)
            res["before"] = r.before.accuracy
            res["rows"].append({"shots": k, "n_train": int(len(idx)),
                                "n_stream": int(len(stream)), "accuracy": r.after.accuracy,
                                "learning_steps_per_second": r.stream.steps_per_second})
            out["learning"] = r.stream.learning
        out["backends"][backend] = res
    return out


def _plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ks = [r["shots"] for r in res["rows"]]
    ax.plot(ks, [100 * r["accuracy"] for r in res["rows"]], "o-",
            label="after fine-tuning (batched)")
    ax.axhline(100 * res["before"], color="gray", ls="--", label="before")
    dx = 0.03 * (max(ks) - min(ks) or 1)   # side by side where the curves coincide
    for i, (b, g) in enumerate((res.get("graph") or {}).get("backends", {}).items()):
        ax.plot([k + (i + 1) * dx for k in ks], [100 * r["accuracy"] for r in g["rows"]],
                "s--", color=f"C{i + 1}",
                label=f"after, Lava {b} (--learn {res['graph']['mode']})")
    ax.set_xlabel("shots per word (held-out speaker)")
    ax.set_ylabel("accuracy on the speaker's other clips (%)")
    ax.set_xticks(ks)
    ax.set_title(f"{res['rule']} fine-tuned on speaker {res['speaker']}: {res['n_eval']} "
                 f"evaluation clips, {res['epochs']} passes", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
