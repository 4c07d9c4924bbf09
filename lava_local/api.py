"""The Python API: train a rule on your data, run the trained net in Lava, keep learning
on the Lava graph — one call each.

>>> import numpy as np
>>> import lava_local as ll
>>> train = ll.data.from_arrays(x_train, y_train)        # (N, T, F) spikes of 0/1, (N,)
>>> test = ll.data.from_arrays(x_test, y_test, n_classes=train.n_classes)
>>> run = ll.train("stllr", train, test, hidden=(64,), epochs=5, out="runs/mine")
>>> run.test_acc
>>> ll.run_on_lava(run, test, backend="sim-fixed")        # accuracy, agreement, steps/s
>>> ll.learn_on_lava(run, stream=train, evaluate=test, rule="stllr-dfa")

Everything else is the command line's machinery (``lava_local.torch.train``,
``lava_local.networks``): the same checkpoints, results and Lava graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Run:
    """A trained run: its folder (None when trained without ``out``) and its results
    (the dictionary of ``results.json``)."""

    path: Path | None
    results: dict

    @property
    def test_acc(self) -> float:
        """Test accuracy after the last epoch."""
        return self.results["test_acc"]


def train(rule: str, train_data, test_data, out=None, *, epochs: int = 10,
          overwrite: bool = False, progress: bool = True, **options) -> Run:
    """Train ``rule`` on your data.

    Parameters
    ----------
    rule : str
        A rule of the registry (``lava-local rules``): stllr, tess, tp, solsa, ttlbptt,
        bptt.
    train_data, test_data : SpikeDataset
        E.g. :func:`lava_local.data.from_arrays`; the test data is evaluated after every
        epoch, never learned from.
    out : path, optional
        Run folder (checkpoint each epoch, ``results.json``); ``lava-local run`` and
        :func:`run_on_lava` read it. None: train in memory only.
    epochs : int
    overwrite : bool
        Replace a run already in ``out``.
    progress : bool
        A progress bar per epoch.
    **options
        Any run option or rule option by its flat key, as on the command line without the
        dashes: ``hidden=(128,)``, ``lr=1e-3``, ``batch_size=32``, ``seed=0``,
        ``window=5``, ``signal="dfa"``, ``tp_beta=0.9`` ... (``lava-local train --help``).

    Returns
    -------
    Run
    """
    from .torch.train import TrainConfig
    from .torch.train import train as train_run

    name = getattr(train_data, "name", None) or "arrays"
    cfg = TrainConfig.from_flat(rule=rule, dataset="arrays",
                                n_steps=int(train_data.n_steps), epochs=epochs, **options)
    out = Path(out) if out is not None else None
    results = train_run(cfg, out, overwrite=overwrite, progress=progress,
                        data=(train_data, test_data))
    results["dataset"]["name"] = name
    return Run(out, results)


def _run_dir(run) -> Path:
    from .torch.train import RunError

    path = run.path if isinstance(run, Run) else Path(run)
    if path is None:
        raise RunError("this run was trained without out=: give train(..., out=FOLDER) to "
                       "run it in Lava")
    return path


def _batched_predictions(path: Path, data) -> np.ndarray:
    """The trained model's own (torch) predictions on ``data``."""
    import torch

    from .torch.loop import first_learning_step
    from .torch.train import TrainConfig, build, evaluate, load_weights, read_checkpoint

    ck = read_checkpoint(path / "checkpoint.pt")
    cfg = TrainConfig.from_dict(ck["config"])
    device = torch.device("cpu")
    model, _, trainer = build(cfg, data.n_inputs, data.n_classes, device,
                              getattr(data, "frame_shape", None))
    load_weights(ck, cfg, model, trainer, device)
    _, preds = evaluate(model, data, first_learning_step(cfg.n_steps, cfg.window), device)
    return np.asarray(preds)


def run_on_lava(run, data, backend: str = "sim-float", n_samples: int | None = None,
                progress: bool = False) -> dict:
    """Run a trained net as a Lava graph on ``data`` (inference).

    Parameters
    ----------
    run : Run or path
        A run folder (:func:`train` with ``out``, or ``lava-local train --out``).
    data : SpikeDataset
    backend : {"sim-float", "sim-fixed", "loihi2"}
    n_samples : int, optional
        The first samples of ``data`` (default all).

    Returns
    -------
    dict
        ``accuracy`` on the samples run, ``agreement`` with the trained (torch) model's
        own predictions, ``batched_accuracy`` (that model's accuracy), ``steps_per_second``
        of the Lava run, ``n_samples``, ``backend``, ``predictions``.
    """
    from .networks import export_run, load_exported
    from .networks.graph import run_network

    path = _run_dir(run)
    net = load_exported(export_run(path))
    n = len(data) if n_samples is None else min(int(n_samples), len(data))
    r = run_network(net, data, backend=backend, n_samples=n, progress=progress)
    batched = _batched_predictions(path, data)[:n]
    return {"backend": backend, "n_samples": n, "accuracy": r.accuracy,
            "agreement": float((r.predictions == batched).mean()),
            "batched_accuracy": float((batched == r.labels).mean()),
            "steps_per_second": r.steps_per_second, "predictions": r.predictions}


def learn_on_lava(run, stream, evaluate, rule: str, backend: str = "sim-float",
                  n_learn: int | None = None, n_test: int | None = None,
                  eta: float | None = None, out=None, progress: bool = False,
                  **options) -> dict:
    """Keep learning on the Lava graph: test accuracy on ``evaluate`` before, learning
    from ``stream`` (its labels), test accuracy on ``evaluate`` after, with the learned
    weights.

    Parameters
    ----------
    run : Run or path
    stream : SpikeDataset
        What the graph learns from (e.g. the training data; never the evaluation data).
    evaluate : SpikeDataset
        Held-out data, run before and after learning.
    rule : str
        An on-graph learning mode (``lava-local rules``: stllr-dfa, tess, tp, solsa,
        ttlbptt).
    backend : {"sim-float", "sim-fixed"}
    n_learn, n_test : int, optional
        Samples of the stream and of the evaluation data (default all).
    eta : float, optional
        Learning rate (default: the mode's).
    out : path, optional
        Write the learned net there (an ``.h5`` that :mod:`lava_local.networks` loads).
    **options
        The mode's options by flat key (e.g. ``tess_f="identity"``).

    Returns
    -------
    dict
        ``before``/``after`` accuracy on the evaluation data, ``n_learn``, ``n_test``,
        ``learned_net`` (its path, or None), ``steps_per_second`` of the learning run.
    """
    import os

    from .networks import export_run, load_exported, save_exported
    from .networks.online import learn_online

    net = load_exported(export_run(_run_dir(run)))
    m = len(stream) if n_learn is None else min(int(n_learn), len(stream))
    n = len(evaluate) if n_test is None else min(int(n_test), len(evaluate))
    r = learn_online(net, stream, evaluate, backend=backend, learn=rule, n_learn=m,
                     n_test=n, eta=eta, options=options or None, progress=progress)
    learned = None
    if out is not None:
        learned = Path(out)
        tmp = learned.with_suffix(learned.suffix + ".tmp")
        save_exported(r.learned, tmp)
        os.replace(tmp, learned)
    return {"backend": backend, "rule": rule, "n_learn": m, "n_test": n,
            "before": r.before.accuracy, "after": r.after.accuracy,
            "steps_per_second": r.stream.steps_per_second,
            "learned_net": str(learned) if learned is not None else None}
