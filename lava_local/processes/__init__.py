"""Lava Processes and ProcessModels of lava-local (float and fixed_pt models).

Keep this package free of scripts: Lava's compiler imports every module in a Process's
folder when it looks for ProcessModels.

Time on the graph: every Dense delays its input by one step, so layer l of a network
fed at step σ answers at step σ + l; each Process here resets its state at the first step
of every sample *as it reaches that Process* (``reset_interval``/``reset_offset``), so
samples stream through one long run without rebuilding the graph.
"""

from lava_local.processes.learning_layer import LearningLIFLayer, LearningReadout
from lava_local.processes.neuron import STLLRNeuron
from lava_local.processes.readout import ErrorUnit, LeakyReadout
from lava_local.processes.tp_unit import TPUnit

__all__ = ["ErrorUnit", "LeakyReadout", "LearningLIFLayer", "LearningReadout",
           "STLLRNeuron", "TPUnit"]
