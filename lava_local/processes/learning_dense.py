"""Faster ProcessModels for Lava's ``LearningDense`` (bit-identical results).

Lava's learning engine evaluates every trace at every dependency's spike time with
``x_history[tx, 0].diagonal()``-style expressions that build N_pre × N_pre (or
N_post × N_pre) temporaries for all 15 trace/dependency pairs, whether the rule uses
them or not. These subclasses gather the same values by direct indexing, and only for
the pairs the attached rule uses; the arithmetic and therefore the weights are
unchanged (tested). They are selected with ``exception_proc_model_map``.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import (
    PyLearningDenseModelBitApproximate,
    PyLearningDenseModelFloat,
)
from lava.proc.dense.process import LearningDense

_X = {"x1": 0, "x2": 1}
_Y = {"y1": 0, "y2": 1, "y3": 2}


class _FastTraces:
    def _extract_applier_evaluated_traces(self, x_hist: np.ndarray, y_hist: np.ndarray):
        out = {}
        pre = np.arange(x_hist.shape[-1])
        post = np.arange(y_hist.shape[-1])
        for dep, traces in self._learning_rule.active_traces_per_dependency.items():
            for tr in traces:
                key = f"{tr}_{dep}"
                if dep == "x0":
                    if tr in _X:   # x trace of each pre neuron at its own spike time
                        out[key] = x_hist[self.tx, _X[tr], pre][np.newaxis, :]
                    else:          # y trace of each post neuron at each pre spike time
                        out[key] = y_hist[self.tx, _Y[tr]].T
                elif dep == "y0":
                    if tr in _X:
                        out[key] = x_hist[self.ty, _X[tr]]
                    else:
                        out[key] = y_hist[self.ty, _Y[tr], post][:, np.newaxis]
                else:              # u: the values at the end of the epoch
                    if tr in _X:
                        out[key] = x_hist[-1, _X[tr]][np.newaxis, :]
                    else:
                        out[key] = y_hist[-1, _Y[tr]][:, np.newaxis]
        return out


@implements(proc=LearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class FastLearningDenseFloat(_FastTraces, PyLearningDenseModelFloat):
    """``PyLearningDenseModelFloat`` with direct trace indexing."""


@implements(proc=LearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class FastLearningDenseBitApproximate(_FastTraces, PyLearningDenseModelBitApproximate):
    """``PyLearningDenseModelBitApproximate`` with direct trace indexing."""


def fast_learning_models(backend: str) -> dict:
    """``exception_proc_model_map`` entry selecting the fast model for a backend."""
    if backend == "sim-float":
        return {LearningDense: FastLearningDenseFloat}
    if backend == "sim-fixed":
        return {LearningDense: FastLearningDenseBitApproximate}
    return {}
