"""Online learning on the Lava graph, evaluated on data it does not learn from.

:func:`learn_online` measures the test accuracy of a net's Lava graph, streams training
samples through its learning graph (one rule's on-graph mode, e.g. ``tess`` or
``stllr-dfa``), and measures the test accuracy of the learned weights with a fresh
inference graph: before and after, never on the stream being learned. The learned
weights are returned as an :class:`~lava_local.networks.export.ExportedNet`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data.subset import Subset
from .export import ExportedNet
from .graph import LavaRun, run_network


@dataclass
class OnlineResult:
    """Test accuracy before and after online learning on a training stream."""

    before: LavaRun          # inference graph on the test samples, initial weights
    stream: LavaRun          # learning graph on the training stream
    after: LavaRun           # inference graph on the same test samples, learned weights
    learned: ExportedNet     # the net with the learned weights (and filters)
    stream_indices: np.ndarray   # the training samples streamed, in order
    initial: list            # the weights before learning

    def to_dict(self) -> dict:
        w0, w1 = self.initial, self.learned.weights
        return {
            "learning": self.stream.learning,
            "stream": {"split": "train", "n_samples": int(len(self.stream_indices)),
                       "indices": self.stream_indices.tolist(),
                       "accuracy_while_learning": self.stream.accuracy,
                       "steps_per_second": self.stream.steps_per_second,
                       "seconds": self.stream.seconds},
            "test": {"n_samples": int(len(self.before.predictions)),
                     "accuracy_before": self.before.accuracy,
                     "accuracy_after": self.after.accuracy,
                     "predictions_before": self.before.predictions.tolist(),
                     "predictions_after": self.after.predictions.tolist(),
                     "steps_per_second": self.after.steps_per_second},
            "weight_change_norm": [float(np.linalg.norm(a - b)) for a, b in zip(w1, w0)],
        }


def learn_online(net: ExportedNet, train, test, backend: str = "sim-float",
                 learn: str = "stllr-dfa", n_learn: int | None = None,
                 n_test: int | None = None, eta: float | None = None, rng_seed: int = 0,
                 options: dict | None = None, progress: bool = False,
                 reset_traces: bool = True) -> OnlineResult:
    """Learn on the graph from ``n_learn`` training samples (a seeded shuffle of
    ``train``; all by default) and measure the first ``n_test`` test samples before and
    after (see module doc). ``rng_seed`` seeds the shuffle and the learning engines;
    ``reset_traces`` as in :func:`~lava_local.networks.graph.build_graph`."""
    n_learn = len(train) if n_learn is None else min(n_learn, len(train))
    if n_learn < 1:
        raise ValueError("online learning needs at least one training sample")
    order = np.random.default_rng([rng_seed, 11]).permutation(len(train))[:n_learn]
    stream = Subset(train, order)
    before = run_network(net, test, backend, n_samples=n_test, progress=progress)
    online = run_network(net, stream, backend, learn=learn, eta=eta, rng_seed=rng_seed,
                         options=options, progress=progress, reset_traces=reset_traces)
    learned = replace(net, **online.learned)
    after = run_network(learned, test, backend, n_samples=n_test, progress=progress)
    return OnlineResult(before, online, after, learned, order, net.weights)
