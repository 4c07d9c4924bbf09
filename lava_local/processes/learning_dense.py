"""Faster ProcessModels for Lava's ``LearningDense`` (bit-identical results).

Four costs of Lava's learning engine are removed without changing its arithmetic:

- it evaluates every trace at every dependency's spike time with
  ``x_history[tx, 0].diagonal()``-style expressions that build N_pre × N_pre (or
  N_post × N_pre) temporaries for all 15 trace/dependency pairs; here the same values are
  gathered by direct indexing, only for the pairs the rule uses;
- the float engine evaluates the rule's expression with the ``asteval`` interpreter; here
  the same compiled expression runs with Python's ``eval`` (same operations, same order);
- the bit-approximate engine starts every product from an N_post × N_pre array of ones
  and multiplies full-size arrays factor by factor; here the integer factors (exact in
  int32 for 7-bit traces and 4-bit mantissas) are multiplied in their broadcast shapes
  and only then expanded, before the engine's shifts, clips and accumulation, which are
  kept as they are;
- the runtime adds a learning phase (a round trip to every process of the graph) to
  every step; here the learning arithmetic runs at the end of the spiking phase
  (:class:`_LearnInSpikingPhase`), so a learning graph steps like an inference graph.

The weights are unchanged (tested bit for bit). Select them with
``exception_proc_model_map`` (see :func:`fast_learning_models`).

They also reset the pre-synaptic traces x1, x2 at the first step of every sample when the
``LearningDense`` was made with ``trace_reset_interval`` (> 0) and ``trace_reset_offset``
(the step at which the first sample's first pre-synaptic spikes arrive): samples streamed
through one long run then learn independently, as a batched trainer's do. Without it a
trace carries the end of one sample into the start of the next (the readout's κ-trace
keeps κ^(L+2) of it). Loihi 2's learning engine has no such reset that we know of: on the
chip the same effect needs idle steps between samples until the traces have decayed.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.learning.constants import (
    FACTOR_TO_WIDTH_DICT,
    W_ACCUMULATOR_S,
    W_ACCUMULATOR_U,
    W_S_MANT,
    W_SYN_VAR_S,
)
from lava.magma.core.learning.learning_rule_applier import (
    LearningRuleApplierBitApprox,
    LearningRuleApplierFloat,
)
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
        # t_epoch = 1: a dependency's spike time is step 1 of the epoch wherever the
        # dependency is set, and the product is 0 wherever it is not; so the trace of the
        # other side at that time is one row (column), not an N_post x N_pre gather
        one_step = self._learning_rule.t_epoch == 1
        for dep, traces in self._learning_rule.active_traces_per_dependency.items():
            for tr in traces:
                key = f"{tr}_{dep}"
                if dep == "x0":
                    if tr in _X:   # x trace of each pre neuron at its own spike time
                        out[key] = x_hist[self.tx, _X[tr], pre][np.newaxis, :]
                    elif one_step:  # only spiking pres' columns count: t = 1
                        out[key] = y_hist[1, _Y[tr]][:, np.newaxis]
                    else:          # y trace of each post neuron at each pre spike time
                        out[key] = y_hist[self.tx, _Y[tr]].T
                elif dep == "y0":
                    if tr in _X and one_step:   # only spiking posts' rows count: t = 1
                        out[key] = x_hist[1, _X[tr]][np.newaxis, :]
                    elif tr in _X:
                        out[key] = x_hist[self.ty, _X[tr]]
                    else:
                        out[key] = y_hist[self.ty, _Y[tr], post][:, np.newaxis]
                else:              # u: the values at the end of the epoch
                    if tr in _X:
                        out[key] = x_hist[-1, _X[tr]][np.newaxis, :]
                    else:
                        out[key] = y_hist[-1, _Y[tr]][:, np.newaxis]
        return out


class _TraceReset:
    """Zero the pre traces at each sample's first step (see module doc), before that
    step's pre-synaptic spikes arrive: regular impulses are added in the learning phase
    (t_epoch = 1), a graded spike overwrites x1 in the spiking phase — either way the
    sample's first input is kept."""

    def run_spk(self) -> None:
        p = self.proc_params
        interval = p.get("trace_reset_interval", 0)
        if interval and self.time_step >= p["trace_reset_offset"] \
                and (self.time_step - p["trace_reset_offset"]) % interval == 0:
            self.x1 = np.zeros_like(self.x1)
            self.x2 = np.zeros_like(self.x2)
        super().run_spk()


class _LearnInSpikingPhase:
    """Run the learning phase's arithmetic at the end of the spiking phase of the same
    step, and request no learning phase from the runtime.

    Lava's runtime service adds a whole LRN round (a command to every process of the
    graph and a reply from each) to every step in which one process asks for it, which
    with t_epoch = 1 is every step. Everything ``run_lrn`` reads (pre spikes, bAP, y1-y3,
    the randoms) has been received by the end of ``run_spk``, nothing reaches the
    synapse between the two phases (only ports carry data, and they are read in
    ``run_spk``), and the weights are next read in the next step's ``run_spk``: the
    same arithmetic in the same order, so the weights are bit-identical (tested through
    every learning graph's re-simulation). On Loihi 2 the learning engine runs in its
    own phase; this only changes how the CPU simulation schedules it.
    """

    def lrn_guard(self) -> bool:
        return False

    def run_spk(self) -> None:
        super().run_spk()
        if self.time_step % self._learning_rule.t_epoch == 0:
            self.run_lrn()


def _factor_value(dep: str, factor, args: dict):
    """A product's factor as the engine evaluates it (before any clipping)."""
    from lava.magma.core.learning import string_symbols as sym

    const = factor.const if factor.has_const() else 0
    name = factor.state_var
    if name == sym.C:
        return np.asarray(factor.const)
    if name in sym.DEPENDENCIES:
        v = args[name]
    elif name in sym.TRACES:
        v = args[f"{name}_{dep}"]
    else:
        v = args[sym.SYNAPTIC_VARIABLE_VAR_MAPPING[name]]
    v = np.asarray(v) + const
    return np.sign(v) if factor.is_sgn else v


def active_block(products, args: dict, shape: tuple[int, int]):
    """Rows and columns outside of which every product of the series is zero.

    Each product is its dependency (x0: one value per pre neuron, y0: per post neuron,
    u: one value) times its factors (per pre, per post or per synapse); it is zero
    outside (posts where every per-post piece is non-zero) x (pres where every per-pre
    piece is non-zero). The union over products bounds the synapses a step can change.
    """
    n_post, n_pre = shape
    rows = np.zeros(n_post, dtype=bool)
    cols = np.zeros(n_pre, dtype=bool)
    for prod in products:
        r = np.ones(n_post, dtype=bool)
        c = np.ones(n_pre, dtype=bool)
        pieces = [np.asarray(args[prod.dependency])]
        pieces += [_factor_value(prod.dependency, f, args) for f in prod.factors]
        for v in pieces:
            if v.size == 1:
                if v.reshape(-1)[0] == 0:
                    r[:] = False
            elif v.shape == (1, n_pre):
                c &= v[0] != 0
            elif v.shape == (n_post, 1):
                r &= v[:, 0] != 0
            else:
                nz = np.broadcast_to(v, shape) != 0
                r &= nz.any(1)
                c &= nz.any(0)
        if r.any() and c.any():
            rows |= r
            cols |= c
    return np.flatnonzero(rows), np.flatnonzero(cols)


def _referenced(products) -> set[str]:
    """The applier arguments a product series reads."""
    from lava.magma.core.learning import string_symbols as sym

    names = set()
    for prod in products:
        names.add(prod.dependency)
        for f in prod.factors:
            if f.state_var in sym.TRACES:
                names.add(f"{f.state_var}_{prod.dependency}")
            elif f.state_var in sym.DEPENDENCIES:
                names.add(f.state_var)
            elif f.state_var in sym.SYNAPTIC_VARIABLE_VAR_MAPPING:
                names.add(sym.SYNAPTIC_VARIABLE_VAR_MAPPING[f.state_var])
    return names


def _block_args(args: dict, shape: tuple[int, int], rows, cols, names: set[str]) -> dict:
    """The arguments ``names`` of the applier restricted to the synapses (rows x cols);
    every other argument as it is, except per-synapse ones, which no product reads."""
    n_post, n_pre = shape
    out = {}
    for k, v in args.items():
        if k not in names and isinstance(v, np.ndarray) and v.shape == shape:
            continue
        if isinstance(v, np.ndarray) and v.ndim == 2:
            if v.shape == shape:
                v = v[np.ix_(rows, cols)]
            elif v.shape == (1, n_pre):
                v = v[:, cols]
            elif v.shape == (n_post, 1):
                v = v[rows, :]
        out[k] = v
    out["shape"] = (rows.size, cols.size)
    return out


class _ActiveBlock:
    """Apply a weight rule only to the block of synapses it can change this step.

    The engine evaluates every product over all N_post x N_pre synapses and then
    accumulates, (stochastically) rounds and saturates them all. Outside the block of
    :func:`active_block` every product is 0, so there the accumulator holds the weight
    itself: exact rounding (no fraction) and saturation (the weight is in range) leave it
    unchanged. Here the same applier and the same rounding and saturation run on the
    block only, with the same scalar random number: the same weights, bit for bit. The
    first update runs over all synapses (it saturates weights given out of range), and
    rules that also learn tags or delays always do.
    """

    _full_pass_done = False

    def _apply_learning_rules(self, x_traces_history, y_traces_history) -> None:
        from scipy.sparse import csr_matrix

        w = self.weights
        if (list(self._learning_rule_appliers) != ["weights"] or not self._full_pass_done
                or isinstance(w, csr_matrix) or min(w.shape) < 2):
            super()._apply_learning_rules(x_traces_history, y_traces_history)
            self._full_pass_done = True
            return
        args = self._extract_applier_args(x_traces_history, y_traces_history)
        applier = self._learning_rule_appliers["weights"]
        products = applier._product_series.products
        rows, cols = active_block(products, args, w.shape)
        if rows.size == 0 or cols.size == 0:
            return
        if rows.size * cols.size > 0.5 * w.size:    # gathering would cost more: all of it
            self.weights = self._update_block(applier, w, args)
            return
        block = np.ix_(rows, cols)
        w[block] = self._update_block(applier, w[block],
                                      _block_args(args, w.shape, rows, cols,
                                                  _referenced(products)))


class _EvalApplierFloat(LearningRuleApplierFloat):
    """Lava's float applier, evaluating its compiled expression with ``eval``."""

    def apply(self, init_accumulator: np.ndarray, **applier_args) -> np.ndarray:
        return init_accumulator + eval(self._applier_compiled, {}, applier_args)  # noqa: S307


class _BroadcastApplierBitApprox(LearningRuleApplierBitApprox):
    """Lava's bit-approximate applier with factors multiplied in broadcast shapes."""

    def apply(self, init_accumulator: np.ndarray, **applier_args) -> np.ndarray:
        lim = 2 ** W_ACCUMULATOR_U
        shape = applier_args["shape"]
        result = init_accumulator
        for product in self._product_series.products:
            cur = np.asarray(applier_args[product.dependency]).astype(np.int32) \
                * np.int32(product.s_mantissa)
            width = W_S_MANT
            for factor in product.factors:
                w = FACTOR_TO_WIDTH_DICT[factor.state_var]
                width += w
                val = self._compute_factor(product.dependency, factor, applier_args)
                cur = cur * np.clip(val, -(2 ** w), 2 ** w - 1).astype(np.int32)
            cur = np.broadcast_to(cur, shape).astype(np.int32)
            cur = np.right_shift(cur, max(0, width - W_ACCUMULATOR_U))
            cur = np.left_shift(cur, product.s_exp)
            cur = np.clip(cur, -lim - 1, lim - 1)
            result = np.clip(result + cur, -lim - 1, lim - 1)
        return result


@implements(proc=LearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class FastLearningDenseFloat(_LearnInSpikingPhase, _TraceReset, _ActiveBlock, _FastTraces,
                             PyLearningDenseModelFloat):
    """``PyLearningDenseModelFloat`` with direct trace indexing and ``eval``, learning
    in the spiking phase."""

    def _create_learning_rule_applier(self, product_series):
        return _EvalApplierFloat(product_series)

    def _update_block(self, applier, w, args):
        """The float engine's update of a block of weights."""
        return self._saturate_synaptic_variable("weights", applier.apply(w, **args))


@implements(proc=LearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class FastLearningDenseBitApproximate(_LearnInSpikingPhase, _TraceReset, _ActiveBlock,
                                      _FastTraces,
                                      PyLearningDenseModelBitApproximate):
    """``PyLearningDenseModelBitApproximate`` with direct trace indexing and broadcast
    factor products, learning in the spiking phase."""

    def _create_learning_rule_applier(self, product_series):
        return _BroadcastApplierBitApprox(product_series)

    def _update_block(self, applier, w, args):
        """The bit-approximate engine's update of a block of weights: accumulate in the
        accumulator's units, saturate, round stochastically, back to weight units,
        saturate."""
        name = "weights"
        shift = W_ACCUMULATOR_S - W_SYN_VAR_S[name]
        v = applier.apply(w << shift, **args)
        v = self._saturate_synaptic_variable_accumulator(name, v)
        v = self._stochastic_round_synaptic_variable(
            name, v, self._conn_var_random.random_stochastic_round)
        return self._saturate_synaptic_variable(name, v >> shift)


def fast_learning_models(backend: str) -> dict:
    """``exception_proc_model_map`` entry selecting the fast model for a backend."""
    if backend == "sim-float":
        return {LearningDense: FastLearningDenseFloat}
    if backend == "sim-fixed":
        return {LearningDense: FastLearningDenseBitApproximate}
    return {}
