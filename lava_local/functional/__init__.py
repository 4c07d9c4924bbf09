"""Pure array functions for neurons, traces and learning rules (numpy and torch alike).

Time-axis convention: time-first, ``(T, batch, features)``; a step works on
``(batch, features)``.
"""

from .lif import LIFState, heaviside, leaky_readout_step, lif_step
from .stllr import (
    POST_FORMS,
    bp_signal,
    ce_output_error,
    dfa_signal,
    noncausal_trace,
    stllr_eligibility,
    stllr_update,
)
from .surrogates import (
    SURROGATES,
    arctan,
    fast_sigmoid_sq,
    get_surrogate,
    sigmoid_prime,
    triangle,
)
from .tess import TESS_F, square_wave_projection, tess_signal
from .tp import (
    tp_contrastive_loss,
    tp_contrastive_signal,
    tp_prototype_loss,
    tp_prototype_signal,
    tp_prototype_targets,
    tp_soft_targets,
)
from .traces import post_trace_step, pre_trace_step

__all__ = [
    "LIFState",
    "POST_FORMS",
    "SURROGATES",
    "TESS_F",
    "arctan",
    "bp_signal",
    "ce_output_error",
    "dfa_signal",
    "fast_sigmoid_sq",
    "get_surrogate",
    "heaviside",
    "leaky_readout_step",
    "lif_step",
    "noncausal_trace",
    "post_trace_step",
    "pre_trace_step",
    "sigmoid_prime",
    "square_wave_projection",
    "stllr_eligibility",
    "stllr_update",
    "tess_signal",
    "tp_contrastive_loss",
    "tp_contrastive_signal",
    "tp_prototype_loss",
    "tp_prototype_signal",
    "tp_prototype_targets",
    "tp_soft_targets",
    "triangle",
]
