"""Faster ProcessModels for Lava's ``LearningDense`` (bit-identical results).

Costs of Lava's learning engine removed without changing its arithmetic:

- it evaluates every trace at every dependency's spike time with
  ``x_history[tx, 0].diagonal()``-style expressions that build N_pre × N_pre (or
  N_post × N_pre) temporaries for all 15 trace/dependency pairs; here the same values are
  gathered by direct indexing, only for the pairs the rule uses;
- the float engine evaluates the rule's expression with the ``asteval`` interpreter; here
  each product runs as the same chain of multiplications with Python's ``eval`` of its
  factors, in place once it has its full shape, and the products are summed in the same
  order (same operations, same floats);
- the bit-approximate engine starts every product from an N_post × N_pre array of ones
  and multiplies full-size arrays factor by factor; here the integer factors (exact in
  int32 for 7-bit traces and 4-bit mantissas) are multiplied in their broadcast shapes
  and only then expanded, and the engine's shifts, clips and accumulation run in place;
- with t_epoch = 1 (every rule of lava-local) the general epoch code — trace histories
  over the epoch, spike-time searches, multi-spike impulses, the stacking of traces — is
  a fixed sequence of a few operations (:class:`_OneStep`), run with the engine's own
  decay, impulse and rounding functions and random streams;
- the engine updates every synapse every step; here only the block of synapses the
  rule's products can change (:func:`active_block`), and several synaptic variables
  (TP's tags) in place in an order where none is read after it changed
  (:func:`update_order`) instead of into copies;
- on matrices of at least :data:`~lava_local.processes.kernels.MIN_SYNAPSES` synapses
  (numba present) the series, the saturations and the stochastic rounding of a block
  run as one compiled loop over its synapses, in place
  (:mod:`~lava_local.processes.kernels`): the same operations in the same order, so the
  same floats and integers;
- a learned variable that its rule keeps the same down every column (TP's tags: the
  pre spikes of the last two steps, one copy per synapse as on the chip) is held and
  updated as one row of N_pre values (:func:`per_pre_variables`), written out to its
  matrix whenever Lava reads it;
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
    W_SYN_VAR_U,
    W_TRACE,
)
from lava.magma.core.learning.learning_rule_applier import (
    LearningRuleApplierBitApprox,
    LearningRuleApplierFloat,
)
from lava.magma.core.learning.utils import stochastic_round
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import (
    PyLearningDenseModelBitApproximate,
    PyLearningDenseModelFloat,
)
from lava.proc.dense.process import LearningDense
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

from lava_local.processes.kernels import (
    VarFactor,
    as_operand,
    fits_kernel,
    fixed_series_kernel,
    fixed_trace_step,
    float_series_kernel,
    float_trace_step,
    kind_of,
    nonzero_counts,
    nonzero_rows_cols,
    use_kernel,
)

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
        self._reset_traces_if_due()
        super().run_spk()

    def _reset_traces_if_due(self) -> None:
        p = self.proc_params
        interval = p.get("trace_reset_interval", 0)
        if interval and self.time_step >= p["trace_reset_offset"] \
                and (self.time_step - p["trace_reset_offset"]) % interval == 0:
            self.x1 = np.zeros_like(self.x1)
            self.x2 = np.zeros_like(self.x2)


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
        if self.num_message_bits.item() == 0 and self._one_step_fits():
            self._reset_traces_if_due()
            self._run_spk_one_step()
            return
        super().run_spk()
        if self.time_step % self._learning_rule.t_epoch == 0:
            self.run_lrn()


def block_plan(products) -> list[list[tuple]]:
    """Per product of a series: the pieces whose zeros make it zero, as (applier
    argument, constant added to it) for its dependency and each factor, and
    (None, constant) for a constant factor. A sign factor is zero where its argument is,
    so it needs no piece of its own."""
    from lava.magma.core.learning import string_symbols as sym

    plan = []
    for prod in products:
        pieces = [(prod.dependency, 0)]
        for f in prod.factors:
            const = f.const if f.has_const() else 0
            name = f.state_var
            if name == sym.C:
                pieces.append((None, f.const))
            elif name in sym.DEPENDENCIES:
                pieces.append((name, const))
            elif name in sym.TRACES:
                pieces.append((f"{name}_{prod.dependency}", const))
            else:
                pieces.append((sym.SYNAPTIC_VARIABLE_VAR_MAPPING[name], const))
        plan.append(pieces)
    return plan


def active_block(products, args: dict, shape: tuple[int, int], plan=None,
                 seen: dict | None = None):
    """Rows and columns outside of which every product of the series is zero.

    Each product is its dependency (x0: one value per pre neuron, y0: per post neuron,
    u: one value) times its factors (per pre, per post or per synapse); it is zero
    outside (posts where every per-post piece is non-zero) x (pres where every per-pre
    piece is non-zero). The union over products bounds the synapses a step can change.
    ``plan`` is :func:`block_plan` of ``products`` (made here if not given); each
    piece's non-zeros are found once per call, or once for all calls that share the
    dict ``seen`` (the blocks of several variables from the same arguments).
    """
    n_post, n_pre = shape
    rows = np.zeros(n_post, dtype=bool)
    cols = np.zeros(n_pre, dtype=bool)
    seen = {} if seen is None else seen
    for pieces in block_plan(products) if plan is None else plan:
        r = c = None
        for key, const in pieces:
            if key is None:              # a constant factor
                if const == 0:
                    break
                continue
            nz = seen.get((key, const))
            if nz is None:
                v = np.asarray(args[key])
                if v.shape == shape and v.flags.c_contiguous and fits_kernel(shape):
                    seen[(key, const)] = nz = ("f", *nonzero_rows_cols(v, const))
                elif const:
                    v = v + const
            if nz is None:
                if v.size == 1:
                    nz = ("u", v.reshape(-1)[0] != 0)
                elif v.shape == (1, n_pre):
                    nz = ("c", v[0] != 0)
                elif v.shape == (n_post, 1):
                    nz = ("r", v[:, 0] != 0)
                else:
                    full = np.broadcast_to(v, shape) != 0
                    nz = ("f", full.any(1), full.any(0))
                seen[(key, const)] = nz
            kind = nz[0]
            if kind == "u":
                if not nz[1]:
                    break
            elif kind == "c":
                c = nz[1] if c is None else c & nz[1]
            elif kind == "r":
                r = nz[1] if r is None else r & nz[1]
            else:
                r = nz[1] if r is None else r & nz[1]
                c = nz[2] if c is None else c & nz[2]
        else:                            # no piece is zero everywhere
            if (r is None or r.any()) and (c is None or c.any()):
                if r is None:
                    rows[:] = True
                else:
                    rows |= r
                if c is None:
                    cols[:] = True
                else:
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


_ROW0 = np.zeros(1, dtype=np.int64)     # the one row of a variable held as a row

#: Weight matrices of at most this many synapses learn without a block: finding it
#: costs more than it saves (with the kernels: one pass over every synapse).
SMALL_BLOCK = 2048


def counted_variables(plans: dict) -> frozenset:
    """The synaptic variables whose non-zeros bound some series' block: read as a factor
    without a constant (:func:`block_plan`'s pieces ``(name, 0)``), given each
    variable's ``(plan, referenced)``. A factor with a constant is non-zero where the
    variable is zero, so its variable is not among them."""
    from lava.magma.core.learning import string_symbols as sym

    names = set(sym.SYNAPTIC_VARIABLE_VAR_MAPPING.values())
    return frozenset(key for plan, _ in plans.values() for pieces in plan
                     for key, const in pieces if key in names and const == 0)


def per_pre_variables(series: dict) -> frozenset:
    """The synaptic variables whose update keeps them the same along every column (one
    value per pre neuron, whatever the post neuron), given each learned variable's
    product series: every product's dependency is u or x0 and each factor a constant,
    u, x0, a pre trace or such a variable itself (TP's tags: t <- 32 x0, d <- t). A
    variable read but not learned is not among them (its values are whatever it was
    given)."""
    from lava.magma.core.learning import string_symbols as sym

    per_pre = {"C", "u", "x0", "x1", "x2"}
    names = set(series)
    while True:
        keep = set()
        for name in names:
            ok = True
            for prod in series[name]:
                if prod.dependency not in ("u", "x0"):
                    ok = False
                for f in prod.factors:
                    v = f.state_var
                    if v in per_pre:
                        continue
                    var = sym.SYNAPTIC_VARIABLE_VAR_MAPPING.get(v)
                    if var is None or var not in names:
                        ok = False
            if ok:
                keep.add(name)
        if keep == names:
            return frozenset(names)
        names = keep


def per_pre_operand(value, shape: tuple[int, int]):
    """A :class:`.kernels.VarFactor` of a variable held as one row (shape (1, N_pre),
    :class:`_ActiveBlock`) as the per-pre operand it is: the kernel's own arithmetic on
    it (``+ const``, then the sign, else the bit-approximate clip) done here, once per
    pre neuron; any other operand as it is."""
    if not (isinstance(value, VarFactor) and np.shape(value.value) == (1, shape[1])
            and shape[0] != 1):
        return value
    v = value.value
    if value.lo is not None:            # integers, as the kernel computes them
        v = v.astype(np.int64)
    if value.has_const:
        v = v + (value.const if value.lo is None else int(value.const))
    if value.sgn:
        return np.sign(v)
    return v if value.lo is None else np.clip(v, int(value.lo), int(value.hi))


def update_order(reads: dict[str, set[str]]) -> tuple[list[str], bool]:
    """An order in which synaptic variables can be updated in place, each reading the
    others' values from before the step (the engine's order), given the applier
    arguments each variable's series ``reads``: a variable goes once no variable still
    to come reads it (its own values it reads synapse by synapse, in place). Returns the
    order and whether copies are needed instead (a cycle: every variable written into a
    copy, in the given order)."""
    left, order = list(reads), []
    while left:
        free = next((v for v in left
                     if not any(v in reads[o] for o in left if o != v)), None)
        if free is None:
            return list(reads), True
        order.append(free)
        left.remove(free)
    return order, False


class _ActiveBlock:
    """Apply each synaptic variable's rule only to the block of synapses it can change
    this step.

    The engine evaluates every product over all N_post x N_pre synapses and then
    accumulates, (stochastically) rounds and saturates them all. Outside the block of
    :func:`active_block` every product is 0, so there the accumulator holds the variable
    itself: exact rounding (no fraction: the accumulator's extra bits are the variable's
    own shift) and saturation (the value is in range) leave it unchanged. Here the same
    applier and the same rounding and saturation run on the block only, with the same
    scalar random number: the same weights and tags, bit for bit. Every variable's
    update reads the values from before the step (the engine's order): with several
    variables (a rule that learns tags) they are updated in place in an order where no
    variable is read after it changed (:func:`update_order`; TP: weights, then d, then
    t), or each into a copy where there is none. The first update, and the first
    after any Var.set, runs over all synapses (it saturates values given out of range,
    wherever they are).

    A variable that bounds a block itself (TP's tags: d in dw, t in dt and dd) would
    need a full scan for its non-zero rows and columns at every step. Instead its
    non-zeros are counted once per row and per column (:func:`.kernels.nonzero_counts`)
    and the update kernels keep the counts as they change it (``count``): exact as
    long as every change to it goes through them. Any other change drops the counts
    (an update by Lava's own or the gather path, a first full pass, a value set from
    outside: :meth:`_set_var`, or the variable replaced by another array) and they are
    counted again.

    A variable whose rule keeps it the same down every column (:func:`per_pre_variables`:
    TP's tags hold the pre spikes of the last two steps, one copy per post neuron, as the
    chip's per-synapse tags must) and whose values are so after the first full pass is
    held as one row (N_pre values, ``_rows``) and updated as one: the engine's whole
    update (its kernel, else Lava's applier) on a 1 x N_pre matrix with the same scalar
    random number, which is each synapse's own in every row. The other variables'
    kernels and blocks read it as a per-pre operand. Its N_post x N_pre array is written
    from the row whenever Lava reads it (:meth:`_get_var`); a Var.set (:meth:`_set_var`)
    returns it to the array.
    """

    _full_pass_done = False
    #: The variables held as one row (name -> (1, N_pre) array), see above.
    _rows: dict = {}
    #: The dtype the learned variables are kept in once the kernels make every update
    #: (:meth:`_narrow_variables`); None: as Lava keeps them.
    _narrow_dtype = None

    def _get_var(self):
        """Lava's Var.get, the variables held as rows written out first."""
        self._write_rows()
        super()._get_var()

    def _write_rows(self) -> None:
        for name, row in self._rows.items():
            getattr(self, name)[...] = row

    def _hold_rows(self) -> None:
        """After a full pass: hold as rows the variables :func:`per_pre_variables` of
        the rule whose values are the same down every column (and whose series read
        only such variables)."""
        appliers = self._learning_rule_appliers
        cand = {n: appliers[n]._product_series.products for n in self._per_pre_variables()
                if self._uniform_columns(getattr(self, n))}
        held = per_pre_variables(cand)      # each reading only variables held too
        self._rows = {n: np.array(getattr(self, n)[:1], dtype=self._row_dtype(n))
                      for n in sorted(held)}

    def _per_pre_variables(self) -> frozenset:
        """:func:`per_pre_variables` of this model's rule (made once)."""
        got = self.__dict__.get("_per_pre")
        if got is None:
            got = self._per_pre = per_pre_variables(
                {n: a._product_series.products
                 for n, a in self._learning_rule_appliers.items()})
        return got

    @staticmethod
    def _uniform_columns(v) -> bool:
        return (isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] >= 2
                and bool(np.all(v == v[:1])))

    def _row_dtype(self, name: str):
        return np.float64 if getattr(self, name).dtype.kind == "f" else np.int64

    def _update_row(self, applier, name: str, args: dict) -> np.ndarray:
        """The held row's update: the same per-synapse arithmetic on a 1 x N_pre
        matrix, by its kernel (the engine's whole update of each synapse, as on the
        matrix) where there is one, else by Lava's applier."""
        row = self._rows[name]
        row_args = dict(args)
        row_args["shape"] = row.shape
        if hasattr(applier, "update"):
            out = self._kernel_update(applier, np.empty_like(row), row, _ROW0, None,
                                      row_args, name)
            if out is not None:
                return out
        value = self._update_block(applier, row, row_args, name)
        return np.array(value, dtype=row.dtype).reshape(row.shape)

    def _set_var(self):
        """Lava's Var.set into the variables as Lava keeps them (any narrowed one
        widened back first, any held as a row written out and no longer held), then
        the non-zero counts dropped and the next step a full pass of Lava's engine,
        which saturates every synapse (the values may change anywhere)."""
        self._write_rows()
        self._rows = {}
        narrow = self._narrow_dtype
        for name in getattr(self, "_learning_rule_appliers", {}) if narrow else ():
            v = getattr(self, name)
            if isinstance(v, np.ndarray) and v.dtype == narrow:
                setattr(self, name, v.astype(int))
        super()._set_var()
        self.__dict__.pop("_nz_counts", None)
        self._full_pass_done = False

    def _narrow_variables(self) -> None:
        """After a full pass, keep the learned variables in :attr:`_narrow_dtype` (the
        bit-approximate model: int32 instead of int64) where the kernels make every
        update: they compute in int64 whatever the storage, and the values, saturated to
        the variables' ranges (at most 13 bits) by every update, are exact in int32.
        Half the memory, and a block's gathered columns touch half the cache lines (a TP
        tag's update on a 200x2312 block out of cache: 2.4x faster). Lava reads them
        (Var.get) as the same numbers."""
        dtype = self._narrow_dtype
        if dtype is None or not (getattr(self, "_kernels", False)
                                 and self._kernels_update_all()):
            return
        info = np.iinfo(dtype)
        for name in self._learning_rule_appliers:
            v = getattr(self, name)
            if (isinstance(v, np.ndarray) and v.dtype.kind == "i" and v.dtype != dtype
                    and (v.size == 0 or info.min <= v.min() and v.max() <= info.max)):
                setattr(self, name, np.ascontiguousarray(v, dtype=dtype))

    def _counts_before_step(self, counted, seen: dict) -> dict:
        """The non-zero counts of the variables ``counted``, counted again where dropped
        or out of date; their rows and columns with a non-zero go into ``seen`` (the
        values before the step, as :func:`active_block` reads them)."""
        counts = self.__dict__.setdefault("_nz_counts", {})
        for name in counted:
            var = getattr(self, name)
            got = counts.get(name)
            if got is None or got[0] is not var:
                if not (isinstance(var, np.ndarray) and var.ndim == 2
                        and var.flags.c_contiguous):
                    counts.pop(name, None)
                    continue
                got = counts[name] = [var, *nonzero_counts(var)]
            seen[(name, 0)] = ("f", got[1] > 0, got[2] > 0)
        return counts

    def _build_learning_rule_appliers(self) -> None:
        """Lava's appliers; where the matrix is given to compiled kernels
        (:mod:`.kernels`: large enough, numba present, traces one step per epoch) their
        kernels are compiled (or loaded) here, in the process's start-up, rather than
        at the first step."""
        super()._build_learning_rule_appliers()
        self._kernels = (self._learning_rule.t_epoch == 1
                         and fits_kernel(tuple(self._shape)))
        if self._kernels:
            for dtype, const in ((np.int32, 0), (np.int64, 0), (np.float64, 0),
                                 (np.float64, 0.0)):     # the active block's kernels
                nonzero_rows_cols(np.zeros((2, 2), dtype), const)
                nonzero_counts(np.zeros((2, 2), dtype))
            counted = self._counted_variables()
            rows = self._per_pre_variables()
            for name, applier in self._learning_rule_appliers.items():
                if hasattr(applier, "warm_kernel"):
                    self._warm_kernel(applier, name, name in counted)
                    reads = _referenced(applier._product_series.products)
                    if name in rows:            # held as a row: the whole row, uncounted
                        applier.warm_kernel(self._kernel_saturation(name), False)
                    elif reads & rows:          # reading the rows held
                        applier.warm_kernel(self._kernel_saturation(name),
                                            name in counted - rows, per_pre=rows)
            if hasattr(self, "_warm_trace_kernel"):
                self._warm_trace_kernel()

    def _kernels_update_all(self) -> bool:
        """Whether a kernel can make every synaptic variable's whole update (its
        applier has one and this model's saturations are what the kernels do)."""
        ok = self.__dict__.get("_kernels_all")
        if ok is None:
            ok = self._kernels_all = all(
                hasattr(applier, "update") and self._kernel_ready(name)
                for name, applier in self._learning_rule_appliers.items())
        return ok

    def _whole_block(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Every row and every column of a matrix of ``shape`` (made once per shape)."""
        blocks = self.__dict__.setdefault("_whole_blocks", {})
        if shape not in blocks:
            blocks[shape] = (np.arange(shape[0]), np.arange(shape[1]))
        return blocks[shape]

    def _warm_kernel(self, applier, name: str, count: bool = False) -> None:
        """Compile (or load) the applier's kernels for the variable ``name``."""
        applier.warm_kernel(self._kernel_saturation(name), count)

    def _kernel_ready(self, name: str) -> bool:
        """Whether a kernel can make the variable ``name``'s whole update: this model's
        saturation of it is what the kernels do (``_kernel_saturation``: the float
        model's clamp, the bit-approximate model's finish; None where it is not)."""
        return self._kernel_saturation(name) is not None

    def _block_plans(self) -> dict:
        """Per synaptic variable: :func:`block_plan` of its series and the applier
        arguments it reads (made once)."""
        plans = self.__dict__.setdefault("_plans", {})
        for name, applier in self._learning_rule_appliers.items():
            if name not in plans:
                products = applier._product_series.products
                plans[name] = (block_plan(products), _referenced(products))
        return plans

    def _counted_variables(self) -> frozenset:
        """:func:`counted_variables` where the kernels run (made once), else none."""
        counted = self.__dict__.get("_counted")
        if counted is None:
            counted = self._counted = (counted_variables(self._block_plans())
                                       if getattr(self, "_kernels", False) else frozenset())
        return counted

    def _apply_learning_rules(self, x_traces_history, y_traces_history) -> None:
        from scipy.sparse import csr_matrix

        w = self.weights
        kernels = getattr(self, "_kernels", False)
        # a small matrix: no block (finding it costs more than it saves), every synapse
        # in one kernel pass where the kernels can do each variable's whole update
        whole = w.size <= SMALL_BLOCK
        if (not self._full_pass_done or isinstance(w, csr_matrix) or min(w.shape) < 2
                or (whole and not (kernels and self._kernels_update_all()))):
            super()._apply_learning_rules(x_traces_history, y_traces_history)
            if not self._full_pass_done:
                self._full_pass_done = True
                self._narrow_variables()
                if kernels and not whole and self._kernels_update_all():
                    self._hold_rows()
            self.__dict__.pop("_nz_counts", None)
            return
        args = self._extract_applier_args(x_traces_history, y_traces_history)
        rows_held = self._rows
        args.update(rows_held)
        plans = self._block_plans()
        order = getattr(self, "_update_order", None)
        if order is None:
            order = self._update_order = update_order(
                {name: plans[name][1] for name in self._learning_rule_appliers})
        names, several = order
        counted = frozenset() if whole else self._counted_variables() - rows_held.keys()
        new, seen = {}, {}      # the pieces' non-zeros: of the values before the step
        counts = self._counts_before_step(counted, seen) if counted else {}
        new_rows = {}
        for name in names:
            applier = self._learning_rule_appliers[name]
            if name in rows_held:
                new_rows[name] = self._update_row(applier, name, args)
                continue
            var = getattr(self, name)
            products = applier._product_series.products
            plan, referenced = plans[name]
            if whole:
                rows, cols = self._whole_block(var.shape)
            else:
                rows, cols = active_block(products, args, var.shape, plan, seen)
            if rows.size == 0 or cols.size == 0:
                continue
            kept = counts.get(name)
            if kernels and hasattr(applier, "update"):
                # a compiled pass over the block, in place; outside the block the
                # products are 0, so a loop over every pre neuron (contiguous, about
                # 2.5x faster per synapse than the block's gathered columns) leaves
                # the synapses it adds unchanged: it runs where the block holds more
                # than 2/5 of the columns
                var = np.ascontiguousarray(var)
                value = self._kernel_update(
                    applier, var.copy() if several else var, var, rows,
                    None if 5 * cols.size > 2 * var.shape[1] else cols, args, name,
                    None if kept is None else (kept[1], kept[2]))
                if value is not None:
                    new[name] = value
                    if kept is not None:
                        kept[0] = value
                    continue
            counts.pop(name, None)      # changed by a path that does not count
            if rows.size * cols.size > 0.5 * var.size:  # gathering would cost more
                new[name] = self._update_block(applier, var, args, name)
                continue
            block = np.ix_(rows, cols)
            out = var.copy() if several else var
            out[block] = self._update_block(applier, var[block],
                                            _block_args(args, var.shape, rows, cols,
                                                        referenced), name)
            new[name] = out
        for name, value in new.items():
            setattr(self, name, value)
        if new_rows:
            self._rows = {**rows_held, **new_rows}


class _OneStep:
    """Lava's ``recv_traces`` and ``run_lrn`` for t_epoch = 1 in fewer operations.

    With one step per epoch every within-epoch spike time is 1 and the spike times are
    zero when a step starts (they are reset after each learning phase), so no spike is
    a "multi-spike" and every trace history has two rows: the traces as they were, and
    decayed by one step plus the impulses of this step's spikes. :meth:`_learn_step`
    computes exactly that with the engine's own decay, impulse and rounding functions
    and random streams (advanced as often, in the same order), sets the traces,
    dependencies and spike times as the engine does, and applies the rule through the
    same :meth:`_apply_learning_rules`; the concatenations, index searches and
    empty-array calls of the general epoch code are left out. Rules with t_epoch > 1,
    graded-spike configurations other than regular impulses, and 2-factor rules run
    Lava's own code (:meth:`_one_step_fits`).
    """

    def _one_step_fits(self) -> bool:
        fits = getattr(self, "_one_step", None)
        if fits is None:
            from lava.magma.core.learning.constants import GradedSpikeCfg
            from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

            rule = self._learning_rule
            fits = (rule.t_epoch == 1 and isinstance(rule, Loihi3FLearningRule)
                    and self._graded_spike_cfg == GradedSpikeCfg.USE_REGULAR_IMPULSE)
            self._one_step = fits
        return fits

    def _kernel_decays(self, decays: list[tuple]) -> list[tuple]:
        """The trace kernels' operands per side (x, y), made once from the numpy path's
        ``decays`` (``(nz, dec, *impulse parts)``, ``dec`` a column over the traces
        ``nz``): the decay factor of every trace (the same doubles; NaN where τ = 0)
        and each impulse part as one contiguous value per trace, in its own dtype."""
        got = getattr(self, "_trace_kernel_operands", None)
        if got is None:
            got = self._trace_kernel_operands = []
            for nz, dec, *parts in decays:
                full = np.full(nz.shape, np.nan)
                full[nz] = dec[:, 0]
                got.append((full, *(np.ascontiguousarray(p[:, 0]) for p in parts)))
        return got

    def _learn_step(self, spiked: np.ndarray, bap: np.ndarray, y1, y2, y3) -> None:
        """One step's trace updates and learning: pre spikes ``spiked`` (bool), the post
        neurons' ``bap`` (bool) and post traces y1, y2, y3 as they arrive."""
        # recv_traces: the trace random streams advance twice; run_lrn: the synaptic one
        self._update_trace_randoms()
        self._update_trace_randoms()
        self._update_synaptic_variable_random()
        x = np.stack((self.x1, self.x2))
        y = np.empty((3, bap.size), dtype=x.dtype)
        y[0], y[1], y[2] = y1, y2, y3
        x_hist, y_hist = self._one_step_histories(x, y, spiked, bap)
        # _update_dependencies, spike times at within-epoch step 1, _update_traces
        self.x0, self.y0 = spiked, bap
        self.tx, self.ty = spiked.astype(int), bap.astype(int)
        self.x1, self.x2 = x_hist[1, 0], x_hist[1, 1]
        self.y1, self.y2, self.y3 = y[0], y[1], y[2]
        self._apply_learning_rules(x_hist, y_hist)
        # _reset_dependencies_and_spike_times
        self.x0 = np.zeros_like(spiked)
        self.y0 = np.zeros_like(bap)
        self.tx = np.zeros(spiked.shape, dtype=int)
        self.ty = np.zeros(bap.shape, dtype=int)

    def _run_spk_one_step(self) -> None:
        """The LearningDense step: send the last step's input, take this step's spikes
        and the post traces, learn."""
        self.a_out.send(self.a_buff)
        s_in = self.s_in.recv().astype(bool)
        self.a_buff = self._synaptic_input(s_in)
        bap = self.s_in_bap.recv().astype(bool)
        self._learn_step(s_in, bap, self.s_in_y1.recv(), self.s_in_y2.recv(),
                         self.s_in_y3.recv())


class _OneStepFloat(_OneStep):
    @staticmethod
    def _warm_trace_kernel() -> None:
        """Compile (or load) :func:`.kernels.float_trace_step` for the types a step
        gives it, at start-up rather than in the first step."""
        float_trace_step(np.zeros((1, 2)), np.ones(1), np.zeros(2, bool), np.zeros(1))

    def _one_step_histories(self, x, y, spiked, bap):
        """The float engine's ``_compute_trace_histories`` for one step: row 0 the
        traces, row 1 decayed by ``exp(-1/τ)`` (rows with τ = 0 stay NaN, as Lava's)
        plus the impulses of this step's spikes."""
        decays = getattr(self, "_one_step_decays", None)
        if decays is None:
            decays = self._one_step_decays = [
                (taus != 0, np.exp(-1 / taus[taus != 0][:, np.newaxis]),
                 imp[:, np.newaxis]) for taus, imp in ((self._x_taus, self._x_impulses),
                                                       (self._y_taus, self._y_impulses))]
        if getattr(self, "_kernels", False):      # one compiled pass per side
            return tuple(float_trace_step(np.ascontiguousarray(cur, dtype=float), f,
                                          np.asarray(spk, dtype=bool), imp)
                         for cur, spk, (f, imp) in zip((x, y), (spiked, bap),
                                                       self._kernel_decays(decays)))
        hists = []
        for cur, spk, (nz, dec, imp) in zip((x, y), (spiked, bap), decays):
            hist = np.empty((2,) + cur.shape)
            hist[0] = cur
            if nz.all():
                np.multiply(dec, cur, out=hist[1])
            else:
                hist[1] = np.nan
                hist[1][nz] = dec * cur[nz]
            np.add(hist[1], imp, out=hist[1], where=spk[np.newaxis, :])
            hists.append(hist)
        return hists[0], hists[1]

    def _synaptic_input(self, s_in: np.ndarray) -> np.ndarray:
        """The Dense's output for the next step (binary spikes)."""
        return self._dense_spikes(self.weights, s_in, 0)

    # PyDenseModelFloat's arithmetic, for the projections fused models build in
    @staticmethod
    def _dense_matrix(w: np.ndarray) -> np.ndarray:
        """A Dense's weights as its Var holds them (C order: a product's summation
        order follows the layout)."""
        return np.ascontiguousarray(w, dtype=float)

    @staticmethod
    def _dense_spikes(w: np.ndarray, s: np.ndarray, exp: int) -> np.ndarray:
        """Output for binary input spikes ``s`` (bool)."""
        return w[:, s].sum(axis=1)

    @staticmethod
    def _dense_graded(w: np.ndarray, s: np.ndarray, exp: int) -> np.ndarray:
        """Output for graded inputs."""
        return w.dot(np.zeros(s.shape, dtype=bool) + s)


class _OneStepFixed(_OneStep):
    def _update_trace_randoms(self) -> None:
        """Lava's ``TraceRandom.advance`` of both sides (x, y), with the same draws in
        fewer calls (:func:`advance_trace_random`)."""
        advance_trace_random(self._x_random)
        advance_trace_random(self._y_random)

    def _update_synaptic_variable_random(self) -> None:
        """Lava's ``ConnVarRandom.advance``, the same draw in one call."""
        rnd = self._conn_var_random
        rng = getattr(rnd, "_rng", None)
        if rng is None or not hasattr(rnd, "_random_stochastic_round"):
            rnd.advance()
        else:
            rnd._random_stochastic_round = rng.random()

    def _one_step_histories(self, x, y, spiked, bap):
        """The bit-approximate engine's ``_compute_trace_histories`` for one step: row
        1 the traces decayed by ``exp(-1/τ)`` with stochastic rounding (rows with τ = 0
        stay 0), then the impulses of this step's spikes added with stochastic rounding
        and saturated — the engine's ``_decay_trace`` and ``_add_impulse`` with the
        decay factors worked out once."""
        decays = getattr(self, "_one_step_decays", None)
        if decays is None:
            decays = self._one_step_decays = [
                (taus != 0, np.exp(-1 / taus[taus != 0][:, np.newaxis]),
                 imp_int[:, np.newaxis], imp_frac[:, np.newaxis])
                for taus, imp_int, imp_frac in (
                    (self._x_taus, self._x_impulses_int, self._x_impulses_frac),
                    (self._y_taus, self._y_impulses_int, self._y_impulses_frac))]
        if getattr(self, "_kernels", False):      # one compiled pass per side
            top = 2 ** W_TRACE - 1
            return tuple(
                fixed_trace_step(np.ascontiguousarray(cur, dtype=np.int64), full,
                                 rnd.random_trace_decay, np.asarray(spk, dtype=bool),
                                 i_int, i_frac, rnd.random_impulse_addition, top)
                for cur, spk, rnd, (full, i_int, i_frac) in zip(
                    (x, y), (spiked, bap), (self._x_random, self._y_random),
                    self._kernel_decays(decays)))
        hists = []
        for cur, spk, rnd, (nz, dec, imp_int, imp_frac) in zip(
                (x, y), (spiked, bap), (self._x_random, self._y_random), decays):
            hist = np.zeros((2,) + cur.shape, dtype=int)
            hist[0] = cur
            decayed = dec * cur[nz]
            frac = decayed % 1
            hist[1][nz] = stochastic_round(np.floor(decayed), rnd.random_trace_decay, frac)
            if spk.any():
                hist[1][:, spk] = self._add_impulse(hist[1][:, spk],
                                                    rnd.random_impulse_addition,
                                                    imp_int, imp_frac)
            hists.append(hist)
        return hists[0], hists[1]

    @staticmethod
    def _warm_trace_kernel() -> None:
        """Compile (or load) :func:`.kernels.fixed_trace_step` for the types a step
        gives it, at start-up rather than in the first step."""
        fixed_trace_step(np.zeros((1, 2), np.int64), np.ones(1), 0.0, np.zeros(2, bool),
                         np.zeros(1, np.int64), np.zeros(1, np.int64), 0, 1)

    def _synaptic_input(self, s_in: np.ndarray) -> np.ndarray:
        """PyLearningDenseModelBitApproximate's Dense part (binary spikes): weights
        truncated at the first step, the sum shifted by the weight exponent."""
        self.weight_exp = self.proc_params.get("weight_exp", 0)
        if not self.weights_set:
            self.weights = truncate_weights(self.weights, sign_mode=self.sign_mode,
                                            num_weight_bits=self.num_weight_bits)
            self.weights_set = True
        return _shift(self.weights[:, s_in].sum(axis=1), self.weight_exp)

    # PyDenseModelBitAcc's arithmetic, for the projections fused models build in
    @staticmethod
    def _dense_matrix(w: np.ndarray) -> np.ndarray:
        """A Dense's weights at its first step: int32, clipped and truncated to 8 bits
        in their sign mode."""
        w = np.ascontiguousarray(w, dtype=np.int32)
        sign_mode = determine_sign_mode(w)
        return truncate_weights(clip_weights(w, sign_mode, num_bits=8), sign_mode, 8)

    @staticmethod
    def _dense_spikes(w: np.ndarray, s: np.ndarray, exp: int) -> np.ndarray:
        """Output for binary input spikes ``s`` (bool), in its int32 output port."""
        return _shift(w[:, s].sum(axis=1), exp).astype(np.int32)

    @staticmethod
    def _dense_graded(w: np.ndarray, s: np.ndarray, exp: int) -> np.ndarray:
        """Output for graded inputs, in its int32 output port."""
        return _shift(w.dot(np.zeros(s.shape, dtype=bool) + s), exp).astype(np.int32)


def advance_trace_random(rnd) -> None:
    """``rnd.advance()`` of Lava's ``TraceRandom``: its two generators each draw their
    next number, the same values as Lava's ``rng.random(1)[0]`` and
    ``rng.integers(0, 2 ** W_TRACE, size=1, dtype=int)[0]`` (numpy's generators give a
    scalar draw the value of a one-element array's; tested over 10^5 steps) without the
    arrays: Lava's advance takes 3x as long, and the fixed engine advances both sides'
    twice a step. A generator without those fields advances as Lava's."""
    rd = getattr(rnd, "_rng_trace_decay", None)
    ri = getattr(rnd, "_rng_impulse_addition", None)
    if (rd is None or ri is None or not hasattr(rnd, "_random_trace_decay")
            or not hasattr(rnd, "_random_impulse_addition")):
        rnd.advance()
        return
    rnd._random_trace_decay = rd.random()
    rnd._random_impulse_addition = ri.integers(0, 2 ** W_TRACE)


def _shift(acc: np.ndarray, exp: int) -> np.ndarray:
    """A bit-accurate Dense's accumulated input scaled by its weight exponent."""
    return np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)


_ROWS2 = np.arange(2)
_ACC_RANGE = (-(2 ** W_ACCUMULATOR_U) - 1, 2 ** W_ACCUMULATOR_U - 1)


def _dummy(kind, dtype, var_dtype=np.float64):
    """A kernel operand of ``kind`` for a 2 x 2 matrix (to compile a kernel); a
    synaptic variable's of ``var_dtype``."""
    if isinstance(kind, tuple):
        return np.zeros((2, 2), dtype=var_dtype)
    return as_operand(np.zeros((2, 2) if kind == "f" else 2), kind, dtype)


def _var_factor_spec(factor, clip: tuple[int, int] | None):
    """A synaptic variable factor's (variable, has const, const, sign, lo, hi), or None
    for any other factor; ``clip`` the bit-approximate factor's range (None: float)."""
    from lava.magma.core.learning import string_symbols as sym

    if factor.state_var not in sym.SYNAPTIC_VARIABLE_VAR_MAPPING:
        return None
    lo, hi = clip if clip is not None else (None, None)
    return (sym.SYNAPTIC_VARIABLE_VAR_MAPPING[factor.state_var], factor.has_const(),
            factor.const if factor.has_const() else 0, bool(factor.is_sgn), lo, hi)


def _var_factor(spec, applier_args: dict) -> VarFactor:
    return VarFactor(applier_args[spec[0]], *spec[1:])


def fast_trace_kinds(products, fixed: bool = False,
                     per_pre: frozenset = frozenset()) -> list[tuple]:
    """The kinds (:func:`~lava_local.processes.kernels.kind_of`) of each product's
    dependency and factors as the kernels get them from :class:`_FastTraces` at
    t_epoch = 1: x0 and the pre traces per pre neuron, y0 and the post traces per post
    neuron, u and constants scalars, synaptic variables as
    :class:`~lava_local.processes.kernels.VarFactor` (``fixed``: clipped to their
    factor widths) except those in ``per_pre``, held as rows: per pre neuron."""
    def kind(factor):
        v = factor.state_var
        if v in ("u", "C"):
            return "s"
        if v in ("x0", "x1", "x2"):
            return "r"
        if v in ("y0", "y1", "y2", "y3"):
            return "c"
        if _var_factor_spec(factor, None)[0] in per_pre:
            return "r"
        w = FACTOR_TO_WIDTH_DICT[v]
        spec = _var_factor_spec(factor, (-(2 ** w), 2 ** w - 1) if fixed else None)
        return VarFactor(None, *spec[1:]).kind()
    return [("s" if p.dependency == "u" else "r" if p.dependency == "x0" else "c",
             *(kind(f) for f in p.factors)) for p in products]


class _EvalApplierFloat(LearningRuleApplierFloat):
    """Lava's float applier, evaluated product by product with fewer full-size
    operations.

    Lava evaluates the series as one expression, ``w + (s1 * dep1 * f11 * f12 ...
    + s2 * dep2 * f21 ...)``, left to right. Here each product is the same chain of
    multiplications in the same order (each factor's own sub-expression, e.g.
    ``(x1_u + (1))`` or ``np.sign(...)``, compiled from Lava's string), multiplying in
    place once the product has its full shape, and the products are summed in the same
    order, then added to ``w`` (a + b = b + a exactly). A 0/1 dependency (x0, y0) is
    multiplied into the first factor of its own shape instead of into the scale: where
    it is 1 the chain is then the same multiplications of the same values (s · 1 = s),
    where it is 0 both give a zero — one full-size product fewer per product. The
    results are the same floats, up to the sign of a zero.
    """

    def __init__(self, product_series) -> None:
        super().__init__(product_series)
        self._plan = []
        for product in self._product_series.products:
            scale = eval(f"({product.s_mantissa}) * 2. ** (({product.s_exp}) - 7)")  # noqa: S307
            factors = [(compile(self._extract_factor_str(f, product.dependency), "<factor>",
                                "eval"), _var_factor_spec(f, None)) for f in product.factors]
            self._plan.append((scale, product.dependency, factors))

    def warm_kernel(self, clamp: tuple | None = None, count: bool = False,
                    per_pre: frozenset = frozenset()) -> None:
        """Compile (or load from the disk cache) the kernels for the operands the
        one-step engine gives (:func:`fast_trace_kinds`; ``per_pre``: the variables
        held as rows), ``clamp`` and ``count`` now, not at the first step."""
        kinds = fast_trace_kinds(self._product_series.products, per_pre=per_pre)
        terms = tuple((scale, k) for (scale, _, _), k in zip(self._plan, kinds))
        args = [_dummy(k, np.float64) for ks in kinds for k in ks]
        nz = (np.zeros(2, np.int64), np.zeros(2, np.int64)) if count else ()
        for all_cols in (True, False):
            float_series_kernel(terms, all_cols, clamp, count)(
                np.empty((2, 2)), np.zeros((2, 2)), _ROWS2, _ROWS2, 0.0, *nz, *args)

    def _operands(self, applier_args: dict, raw: bool = False) -> list:
        """Per product: its scale, its dependency's value and its factors' values (with
        ``raw``, a synaptic variable factor as a :class:`.kernels.VarFactor`)."""
        env = {"np": np}
        return [(scale, applier_args[dep],
                 [_var_factor(spec, applier_args) if raw and spec is not None
                  else eval(code, env, applier_args)  # noqa: S307
                  for code, spec in factors])
                for scale, dep, factors in self._plan]

    def update(self, out: np.ndarray, acc: np.ndarray, rows: np.ndarray, cols,
               clamp: tuple | None = None, counts: tuple | None = None,
               **applier_args) -> None:
        """``out = acc + series`` on the synapses ``rows`` x ``cols`` (``cols`` None:
        every pre neuron), in one compiled pass (:mod:`.kernels`): the same operations
        in the same order as :meth:`apply`, then the ``clamp`` of
        :func:`.kernels.float_series_source`. ``out`` may be ``acc`` itself. ``counts``
        (int64 non-zeros of ``acc`` per row, per column) become ``out``'s."""
        terms, args = [], []
        for scale, d, fs in self._operands(applier_args, raw=True):
            fs = [per_pre_operand(f, acc.shape) for f in fs]
            kinds = tuple(kind_of(v, acc.shape) for v in (d, *fs))
            terms.append((scale, kinds))
            args += [as_operand(v, k, np.float64) for v, k in zip((d, *fs), kinds)]
        float_series_kernel(tuple(terms), cols is None, clamp, counts is not None)(
            out, acc, rows, _ROWS2 if cols is None else cols, 0.0, *(counts or ()), *args)

    def apply(self, init_accumulator: np.ndarray, **applier_args) -> np.ndarray:
        if use_kernel(init_accumulator, "f"):
            acc = np.ascontiguousarray(init_accumulator, dtype=np.float64)
            out = np.empty_like(acc)
            self.update(out, acc, np.arange(acc.shape[0]), None, **applier_args)
            return out
        operands = self._operands(applier_args)
        total = None
        for scale, d, fs in operands:
            v = None
            if isinstance(d, np.ndarray):
                k = next((i for i, f in enumerate(fs) if np.shape(f) == d.shape), None)
                if k is not None:
                    fs[k] = fs[k] * d
                    v = scale
            if v is None:
                v = scale * d
            for f in fs:
                if isinstance(v, np.ndarray) and v.shape == np.broadcast_shapes(
                        v.shape, np.shape(f)):
                    np.multiply(v, f, out=v)      # v is this product's own array
                else:
                    v = v * f
            if total is None:
                total = v
            elif isinstance(total, np.ndarray) and total.shape == np.broadcast_shapes(
                    total.shape, np.shape(v)):
                total += v
            else:
                total = total + v
        if (isinstance(total, np.ndarray) and total.dtype == float
                and total.shape == np.shape(init_accumulator)):
            return np.add(total, init_accumulator, out=total)
        return init_accumulator + total


class _BroadcastApplierBitApprox(LearningRuleApplierBitApprox):
    """Lava's bit-approximate applier with factors multiplied in broadcast shapes and
    the full-size steps (shifts, saturation, accumulation) done in place.

    Per product, as Lava's: the dependency times the 4-bit mantissa, times each factor
    clipped to its width, all in int32; right-shifted to the accumulator's width,
    left-shifted by the scale exponent, saturated, added to the accumulator and
    saturated again. The widths and shifts are worked out once.
    """

    def __init__(self, product_series) -> None:
        super().__init__(product_series)
        self._plan = []
        self._kernel_terms = []    # per product: the kernel's mantissa, shifts, bit bound
        for product in self._product_series.products:
            width = W_S_MANT
            factors = []
            for factor in product.factors:
                w = FACTOR_TO_WIDTH_DICT[factor.state_var]
                width += w
                factors.append((factor, -(2 ** w), 2 ** w - 1,
                                _var_factor_spec(factor, (-(2 ** w), 2 ** w - 1))))
            right = max(0, width - W_ACCUMULATOR_U)
            self._plan.append((product.dependency, np.int32(product.s_mantissa), factors,
                               right, product.s_exp))
            # |dependency x factors x mantissa| < 2^width: the bound that lets a kernel
            # skip the int32 wrap
            self._kernel_terms.append((int(product.s_mantissa), right, int(product.s_exp),
                                       width))

    def _operands(self, applier_args: dict, raw: bool = False) -> list:
        """Per product: its mantissa, its dependency's and clipped factors' int32
        values (with ``raw``, a synaptic variable factor as a
        :class:`.kernels.VarFactor`), its right and left shifts."""
        clip = np.core.umath.clip
        operands = []
        for dep, mant, factors, right, left in self._plan:
            pieces = [np.asarray(applier_args[dep]).astype(np.int32)]
            for factor, f_lo, f_hi, spec in factors:
                if raw and spec is not None:
                    pieces.append(_var_factor(spec, applier_args))
                    continue
                val = self._compute_factor(dep, factor, applier_args)
                pieces.append(np.asarray(clip(val, f_lo, f_hi)).astype(np.int32))
            operands.append((mant, pieces, right, left))
        return operands

    def update(self, out: np.ndarray, acc: np.ndarray, rows: np.ndarray, cols,
               finish: tuple | None = None, rand: float = 0.0,
               counts: tuple | None = None, **applier_args) -> None:
        """:meth:`apply` on the synapses ``rows`` x ``cols`` (``cols`` None: every pre
        neuron) in one compiled pass (:mod:`.kernels`), the same integers, into
        ``out`` (may be ``acc``); with ``finish`` (:func:`.kernels.fixed_series_source`)
        the engine's whole update of the variable ``acc`` with the random number
        ``rand``. ``counts`` (int64 non-zeros of ``acc`` per row, per column) become
        ``out``'s."""
        lo, hi = _ACC_RANGE
        terms, args = [], []
        for (_, pieces, _, _), (mant, right, left, bits) in zip(
                self._operands(applier_args, raw=True), self._kernel_terms):
            pieces = [per_pre_operand(v, acc.shape) for v in pieces]
            kinds = tuple(kind_of(v, acc.shape) for v in pieces)
            terms.append((mant, kinds, right, left, bits))
            args += [as_operand(v, k, np.int64) for v, k in zip(pieces, kinds)]
        fixed_series_kernel(tuple(terms), lo, hi, finish, cols is None, counts is not None)(
            out, acc, rows, _ROWS2 if cols is None else cols, float(rand), *(counts or ()),
            *args)

    def warm_kernel(self, finish: tuple | None = None, count: bool = False,
                    per_pre: frozenset = frozenset()) -> None:
        """Compile (or load from the disk cache) the kernels for the operands the
        one-step engine gives (:func:`fast_trace_kinds`; ``per_pre``: the variables
        held as rows), ``finish``, ``count``, and int32 or int64 variables now, not at
        the first step."""
        lo, hi = _ACC_RANGE
        kinds = fast_trace_kinds(self._product_series.products, fixed=True, per_pre=per_pre)
        terms = tuple((mant, k, right, left, bits)
                      for (mant, right, left, bits), k in zip(self._kernel_terms, kinds))
        nz = (np.zeros(2, np.int64), np.zeros(2, np.int64)) if count else ()
        for dtype in (np.int32, np.int64):
            args = [_dummy(k, np.int64, dtype) for ks in kinds for k in ks]
            for fin, all_cols, c in ((None, True, False), (finish, True, count),
                                     (finish, False, count)):
                fixed_series_kernel(terms, lo, hi, fin, all_cols, c)(
                    np.empty((2, 2), dtype), np.zeros((2, 2), dtype), _ROWS2, _ROWS2, 0.0,
                    *(nz if c else ()), *args)

    def apply(self, init_accumulator: np.ndarray, **applier_args) -> np.ndarray:
        lo, hi = _ACC_RANGE
        shape = applier_args["shape"]
        col_shape, row_shape = (shape[0], 1), (1, shape[1])
        result = init_accumulator if not self._plan else None
        clip = np.core.umath.clip
        if self._plan and use_kernel(init_accumulator, "i"):
            acc = np.ascontiguousarray(init_accumulator)
            out = np.empty(shape, dtype=np.result_type(acc.dtype, np.int32))
            self.update(out, acc, np.arange(shape[0]), None, **applier_args)
            return out
        operands = self._operands(applier_args)
        for mant, pieces, right, left in operands:
            # the int32 product of the dependency, the mantissa and the clipped factors,
            # grouped per-post x per-pre x per-synapse (int32 products wrap modulo 2^32,
            # so any grouping gives the same numbers as Lava's left-to-right one)
            small, col, row, full = mant, None, None, []
            for p in pieces:
                if p.size == 1:
                    small = small * p
                elif p.shape == col_shape:
                    col = p if col is None else col * p
                elif p.shape == row_shape:
                    row = p if row is None else row * p
                else:
                    full.append(p)
            cur = small
            for p in (col, row, *full):
                if p is not None:
                    cur = cur * p
            cur = np.broadcast_to(cur, shape).astype(np.int32) \
                if np.shape(cur) != shape or cur.dtype != np.int32 else cur
            np.right_shift(cur, right, out=cur)
            np.left_shift(cur, left, out=cur)
            clip(cur, lo, hi, out=cur)
            if result is None:      # not in place: the accumulator may be a view
                result = clip(init_accumulator + cur, lo, hi)
            else:
                result += cur
                clip(result, lo, hi, out=result)
        return result


@implements(proc=LearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class FastLearningDenseFloat(_LearnInSpikingPhase, _TraceReset, _ActiveBlock, _FastTraces,
                             _OneStepFloat, PyLearningDenseModelFloat):
    """``PyLearningDenseModelFloat`` with direct trace indexing and ``eval``, learning
    in the spiking phase."""

    def _create_learning_rule_applier(self, product_series):
        return _EvalApplierFloat(product_series)

    def _kernel_clamp(self, name: str) -> tuple | None:
        """The bounds (lo, hi; None: unbounded) of this model's saturation of the
        variable ``name``, read from it (None if it is not a clamp)."""
        cache = self.__dict__.setdefault("_clamps", {})
        if name not in cache:
            probe = np.array([-1e300, -2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 1e300])
            got = np.asarray(self._saturate_synaptic_variable(name, probe.copy()),
                             dtype=float)
            lo = None if got[0] == probe[0] else float(got[0])
            hi = None if got[-1] == probe[-1] else float(got[-1])
            want = np.clip(probe, -np.inf if lo is None else lo, np.inf if hi is None else hi)
            cache[name] = (lo, hi) if np.array_equal(got, want) else None
        return cache[name]

    _kernel_saturation = _kernel_clamp

    def _kernel_update(self, applier, out, var, rows, cols, args, name: str,
                       counts: tuple | None = None):
        """The float engine's update of ``var`` (the series, then the saturation) on
        ``rows`` x ``cols`` by a kernel, into ``out``, keeping ``counts`` (its non-zeros
        per row and column); None where this model's saturation is not a clamp."""
        clamp = self._kernel_clamp(name)
        if clamp is None:
            return None
        applier.update(out, var, rows, cols, clamp=clamp, counts=counts, **args)
        return out

    def _update_block(self, applier, w, args, name: str = "weights"):
        """The float engine's update of a block of a synaptic variable."""
        return self._saturate_synaptic_variable(name, applier.apply(w, **args))


@implements(proc=LearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class FastLearningDenseBitApproximate(_LearnInSpikingPhase, _TraceReset, _ActiveBlock,
                                      _FastTraces, _OneStepFixed,
                                      PyLearningDenseModelBitApproximate):
    """``PyLearningDenseModelBitApproximate`` with direct trace indexing and broadcast
    factor products, learning in the spiking phase."""

    _narrow_dtype = np.int32

    def _create_learning_rule_applier(self, product_series):
        return _BroadcastApplierBitApprox(product_series)

    def _kernel_finish(self, name: str) -> tuple | None:
        """The ``finish`` of :func:`.kernels.fixed_series_source` for the variable
        ``name``: its shift to the accumulator's units, the stochastic rounding's bits,
        and the bounds of this model's own two saturations, read from those functions
        on every value they can meet (None if either is not a clip to an interval)."""
        cache = self.__dict__.setdefault("_finishes", {})
        if name not in cache:
            cache[name] = None
            bounds = []
            for saturate, top in ((self._saturate_synaptic_variable_accumulator, 2 ** 17),
                                  (self._saturate_synaptic_variable, 2 ** 12)):
                probe = np.arange(-top, top + 1)
                got = np.asarray(saturate(name, probe.copy()))
                lo, hi = int(got.min()), int(got.max())
                if not np.array_equal(got, np.clip(probe, lo, hi)):
                    break
                bounds += [lo, hi]
            else:
                cache[name] = (W_ACCUMULATOR_S - W_SYN_VAR_S[name],
                               W_ACCUMULATOR_U - W_SYN_VAR_U[name], *bounds)
        return cache[name]

    _kernel_saturation = _kernel_finish

    def _kernel_update(self, applier, out, var, rows, cols, args, name: str,
                       counts: tuple | None = None):
        """The bit-approximate engine's whole update of ``var`` (accumulate, saturate,
        round stochastically, shift back, saturate) on ``rows`` x ``cols`` by a kernel,
        into ``out``, keeping ``counts`` (its non-zeros per row and column); None where
        this model's saturations are not clips."""
        finish = self._kernel_finish(name)
        if finish is None:
            return None
        applier.update(out, var, rows, cols, finish=finish,
                       rand=self._conn_var_random.random_stochastic_round, counts=counts,
                       **args)
        return out

    def _update_block(self, applier, w, args, name: str = "weights"):
        """The bit-approximate engine's update of a block of a synaptic variable:
        accumulate in the accumulator's units, saturate, round stochastically, back to
        the variable's units, saturate."""
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
