"""What a learning rule is: one object that knows its hyper-parameters, its batched
trainer, its cost formulas, the layer kinds it trains and its parts on a Lava graph.

A rule module (``lava_local/rules/<rule>.py``) defines

- a frozen :class:`RuleParams` dataclass of its own hyper-parameters, each field an
  :func:`option` (default, command-line flag, help) and validated in ``__post_init__``;
- its trainer (on :mod:`lava_local.torch.loop`'s shared machinery);
- a :class:`Rule` subclass instance that ties them together, registered in
  :mod:`lava_local.rules` (the registry). Everything above the equations (CLI flags,
  ``TrainConfig`` validation, ``compare``, export, accounting, the Lava graph) asks the
  registry; nothing outside ``lava_local/rules/`` branches on a rule's name.

Flat keys: a rule's options also live in one flat namespace (command-line flags,
recipes, ``results.json`` and checkpoints): field ``f`` of TESS is the key ``tess_f``
(flag ``--tess-f``). Two rules may share a key (S-TLLR and TESS both have ``lam_pre``)
when it means the same thing and has the same default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar

#: Layer kinds a network can have; a rule declares which of them it trains.
LAYER_KINDS = ("dense", "recurrent", "conv")


def positive_int(text: str) -> int:
    """argparse type: a positive integer (a clear message otherwise)."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def option(default: Any, help: str, *, key: str | None = None, flag: str | None = None,
           choices: tuple | None = None, type: Any = None, action: str | None = None,
           metavar: str | None = None):
    """A hyper-parameter field: its default, its flat ``key`` (default: the field name),
    its command-line ``flag`` (default: ``--`` + key with dashes) and how argparse reads
    it (``choices``, ``type``, ``action`` ``store_true``/``store_false``, ``metavar``)."""
    return field(default=default, metadata={
        "help": help, "key": key, "flag": flag, "choices": choices, "type": type,
        "action": action, "metavar": metavar})


@dataclass(frozen=True)
class FlagSpec:
    """One command-line flag of a rule option."""

    key: str
    flag: str
    help: str
    default: Any
    choices: tuple | None
    type: Any
    action: str | None
    metavar: str | None


class RuleParams:
    """Base of every rule's frozen parameter dataclass (see :func:`option`).

    Subclasses are ``@dataclass(frozen=True)`` and validate in ``__post_init__``
    (call ``super().__post_init__()`` first: it rejects non-finite numbers and values
    outside an option's ``choices``).
    """

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{self.key_of(f.name)} must be a finite number, got {v}")
            choices = f.metadata.get("choices")
            if choices is not None and v not in choices:
                raise ValueError(f"{self.key_of(f.name)} must be one of "
                                 f"{', '.join(map(str, choices))}, got {v!r}")

    # -- flat keys ---------------------------------------------------------------------
    @classmethod
    def key_of(cls, name: str) -> str:
        """Flat key of field ``name``."""
        f = {f.name: f for f in fields(cls)}[name]
        return f.metadata.get("key") or f.name

    @classmethod
    def keys(cls) -> dict[str, str]:
        """Flat key -> field name."""
        return {(f.metadata.get("key") or f.name): f.name for f in fields(cls)}

    @classmethod
    def flags(cls) -> list[FlagSpec]:
        out = []
        for f in fields(cls):
            m = f.metadata
            key = m.get("key") or f.name
            out.append(FlagSpec(key, m.get("flag") or "--" + key.replace("_", "-"),
                                m.get("help", ""), f.default if f.default is not MISSING
                                else None, m.get("choices"), m.get("type"), m.get("action"),
                                m.get("metavar")))
        return out

    @classmethod
    def from_flat(cls, values: Mapping[str, Any], strict: bool = True):
        """Build from flat keys. With ``strict`` every key must be one of this rule's;
        otherwise keys of other rules are ignored (reading a saved run, or options given
        to several rules at once)."""
        keys = cls.keys()
        unknown = [k for k in values if k not in keys]
        if strict and unknown:
            raise ValueError(f"option(s) {', '.join(sorted(unknown))} do not apply here; "
                             f"this rule takes {', '.join(keys) or 'no options'}")
        return cls(**{keys[k]: v for k, v in values.items() if k in keys})

    def to_flat(self) -> dict[str, Any]:
        """Flat key -> value (JSON-friendly: tuples become lists)."""
        names = {v: k for k, v in self.keys().items()}
        return {names[k]: (list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Costs:
    """The inputs of a rule's analytic cost formulas.

    ``layer_sizes`` = [N_0 (inputs), N_1, ..., N_L, C] (flattened counts); ``forward_macs``
    (conv nets) replaces Σ N_l N_{l-1} per weight layer; ``recurrent`` adds V^l."""

    layer_sizes: list[int]
    n_steps: int
    t_l: int = 0
    recurrent: bool = False
    forward_macs: list[int] | None = None

    @property
    def neurons(self) -> int:
        """Σ_l N_l over the spiking layers and the readout."""
        return sum(self.layer_sizes[1:])

    @property
    def hidden(self) -> list[int]:
        return list(self.layer_sizes[1:-1])

    @property
    def synapses(self) -> int:
        """Σ_l N_l N_{l-1} (or the conv nets' forward MACs per step)."""
        if self.forward_macs is not None:
            return sum(self.forward_macs)
        s = self.layer_sizes
        return sum(a * b for a, b in zip(s[:-1], s[1:]))

    @property
    def learning_steps(self) -> int:
        """T - T_l."""
        return self.n_steps - self.t_l


#: Every optional layer feature (:class:`~lava_local.torch.model.LayerFeatures`).
ALL_FEATURES = frozenset({"weight_std", "bias", "learn_leak", "learn_threshold", "v_th_min",
                          "dropout"})


class Rule:
    """A learning rule (subclass per rule; one instance in the registry).

    Attributes
    ----------
    name, title, paper : str
        Registry key (``--rule``), display name, source.
    Params : type[RuleParams]
        Its frozen hyper-parameter dataclass.
    layers : frozenset of str
        Layer kinds its batched trainer trains (of :data:`LAYER_KINDS`).
    min_batch : int
        Smallest batch its update is defined for (Traces Propagation contrasts pairs);
        :meth:`min_batch_of` may lower it for some options.
    features : frozenset of str
        The optional layer features its trainer learns (weight standardisation, bias,
        learnable leak and threshold; the clamp works with every rule that has them).
    own_lr_schedule : str
        The learning-rate schedule its trainer applies itself ("" for none; then
        ``--lr-schedule`` chooses one).
    lava_inference : str
        "" when a trained net of this rule runs in Lava, else why not.
    graph : GraphLearning or None
        Its on-graph learning parts.
    no_graph_reason : str
        Why it has none (when ``graph`` is None).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    paper: ClassVar[str]
    Params: ClassVar[type]
    layers: ClassVar[frozenset] = frozenset({"dense"})
    min_batch: ClassVar[int] = 1
    features: ClassVar[frozenset] = frozenset()
    own_lr_schedule: ClassVar[str] = ""
    lava_inference: ClassVar[str] = ""
    no_graph_reason: ClassVar[str] = ""

    @property
    def graph(self):
        return None

    # -- run configurations ----------------------------------------------------------------
    def check(self, cfg) -> None:
        """Cross-checks against a run configuration (raise ``ValueError`` naming the
        fix). The base class checks the layer kinds and the batch size."""
        missing = sorted(cfg.layer_kinds - self.layers)
        if missing:
            fit = [k for k in LAYER_KINDS if k in self.layers]
            raise ValueError(f"{self.name} does not train {'/'.join(missing)} layers "
                             f"(it trains {', '.join(fit)}); see `lava-local rules`")
        used = [k for k in ("weight_std", "bias", "learn_leak", "learn_threshold", "dropout")
                if getattr(cfg, k, False) and k not in self.features]
        if getattr(cfg, "v_th_min", 0) and "v_th_min" not in self.features:
            used.append("v_th_min")
        if used:
            from . import RULES, get

            flags = ", ".join("--" + k.replace("_", "-") for k in used)
            fit = [r for r in RULES if set(used) <= get(r).features]
            raise ValueError(f"{flags} {'is' if len(used) == 1 else 'are'} not an option of "
                             f"{self.name}'s trainer; the rules that learn "
                             f"{'it' if len(used) == 1 else 'them'}: {', '.join(fit)}")
        if getattr(cfg, "lr_schedule", "none") != "none" and self.own_lr_schedule:
            raise ValueError(f"{self.title} has its own learning-rate schedule "
                             f"({self.own_lr_schedule}); leave out --lr-schedule")
        need = self.min_batch_of(cfg.params)
        if cfg.batch_size < need:
            raise ValueError(f"{self.title} needs a batch size >= {need}; use "
                             f"--batch-size {need} or more")

    def min_batch_of(self, params) -> int:
        """Smallest batch the update is defined for with these hyper-parameters."""
        return self.min_batch

    # -- training ------------------------------------------------------------------------
    def build_model(self, cfg, n_in: int, n_out: int, frame_shape, generator):
        """The network of run ``cfg`` (default: the dense or conv net of its preset)."""
        from ..torch.model import build_net

        return build_net(cfg, n_in, n_out, frame_shape, generator)

    def make_trainer(self, model, params, window: int | None, lr: float, generator):
        """The trainer with an Adam optimiser over its parameters (fixed random
        matrices a rule draws come from ``generator``, after the model's weights;
        :class:`~lava_local.torch.optim.FusedAdam`: torch's Adam, its CPU step
        compiled)."""
        from ..torch.optim import make_adam

        trainer = self.trainer_class()(model, None, params, window, generator=generator)
        trainer.attach_optimizer(make_adam(trainer.parameters(), lr=lr))
        return trainer

    def trainer_class(self):
        raise NotImplementedError

    # -- Lava export -----------------------------------------------------------------------
    def export_layers(self, state: Mapping) -> dict:
        """The net's layers for :class:`~lava_local.networks.export.ExportedNet` from a
        checkpoint's model state (default: the dense net's ``hidden.i``, ``recurrent.i``
        and ``readout``; soft-reset LIF layers and a leaky readout). Standardised layers
        (``gain.i``, ``gain_rec.i``) are exported as the weights they use."""
        from ..functional.lif import standardise_weight

        def used(name: str, gain: str, i: int):
            w = state[f"{name}.{i}"]
            if f"{gain}.{i}" in state:
                w = standardise_weight(w.double(), state[f"{gain}.{i}"].double())
            return w.double().cpu().numpy()

        n_hidden = len([k for k in state if k.startswith("hidden.")])
        weights = [used("hidden", "gain", i) for i in range(n_hidden)]
        weights.append(state["readout"].double().cpu().numpy())
        out = {"weights": weights}
        if "recurrent.0" in state:
            out["recurrent"] = [used("recurrent", "gain_rec", i) for i in range(n_hidden)]
        return out

    def import_layers(self, state: Mapping, net) -> dict:
        """The inverse of :meth:`export_layers`: the model ``state`` with the layers of
        ``net`` (an ``ExportedNet``, e.g. learned on the Lava graph) put in, each keeping
        its shape and dtype."""
        n_hidden = len(net.weights) - 1
        out = dict(state)
        _put(out, state, "readout", net.weights[-1])
        for i in range(n_hidden):
            _put(out, state, f"hidden.{i}", net.weights[i])
        for i, v in enumerate(net.recurrent or []):
            _put(out, state, f"recurrent.{i}", v)
        return out

    # -- analytic costs (per sample, batch 1) ----------------------------------------------
    def memory_values(self, c: Costs, params) -> int:
        """Learning-state values per sample (the paper's formula)."""
        raise NotImplementedError

    def learning_macs(self, c: Costs, params) -> int:
        """Learning MACs per sample (the paper's count of the learning part)."""
        raise NotImplementedError

    def memory_formula(self) -> str:
        """The memory formula, for ``lava-local rules``."""
        raise NotImplementedError

    def macs_formula(self) -> str:
        raise NotImplementedError

    # -- description -----------------------------------------------------------------------
    def describe(self) -> dict:
        g = self.graph
        return {
            "rule": self.name, "title": self.title, "paper": self.paper,
            "layers": [k for k in LAYER_KINDS if k in self.layers],
            "options": list(self.Params.keys()),
            "memory": self.memory_formula(), "macs": self.macs_formula(),
            "lava_inference": self.lava_inference or "yes",
            "graph": g.describe() if g is not None else None,
            "no_graph_reason": self.no_graph_reason if g is None else "",
        }


class GraphParts:
    """A rule's on-graph parts bound to one net and backend (what
    :meth:`GraphLearning.bind` returns); :func:`lava_local.networks.graph.build_graph`
    asks it for each hidden layer's synapse rule and neuron settings, then lets it
    :meth:`attach` the learning-signal path.

    Parameters
    ----------
    record : dict
        What a run records about the learning on the graph (mode, options, params).
    """

    def __init__(self, record: dict):
        self._record = record

    def hidden_rule(self, ctx, l: int):
        """The product-series rule object of hidden layer l's synapses (it makes the
        ``Loihi3FLearningRule`` and says how its neuron scales the third factors)."""
        raise NotImplementedError

    def delta_unit(self, ctx, l: int) -> float:
        """Real value of one integer unit of the learning signal at hidden layer l
        (fixed point)."""
        return 2.0 ** -7

    def neuron_options(self, ctx, l: int) -> dict:
        """Further settings of hidden layer l's learning neuron
        (:class:`~lava_local.processes.STLLRNeuron`)."""
        return {}

    def signal_weights(self, ctx, l: int):
        """The real matrix through which :meth:`attach` will project graded signals
        into hidden layer l's learning signal with ``ctx.send_signal``, or None; a
        simulated graph then builds that projection into the layer's process."""
        return None

    def local_error(self, ctx, l: int):
        """Hidden layer l's own error path, if the mode's signal for it is one — its
        spikes through a fixed projection into an error unit (with the label), the
        error through a second projection into the third factor: a dict of
        ``fwd_weights``, ``fwd_exp``, ``unit`` (the :class:`~lava_local.processes
        .ErrorUnit` settings), ``back_weights``, ``back_exp`` in the backend's units;
        None otherwise. A simulated graph then builds it into the layer's process
        (:meth:`attach` then connects the label only)."""
        return None

    def prototype_unit(self, ctx, l: int):
        """Hidden layer l's prototype unit, if the mode's signal for it is one — a unit
        fed by the layer's spikes and the label whose output is the third factor, one
        step late: the keyword settings of a :class:`~lava_local.processes.TPUnit`
        (``prototypes``, ``targets``, ``beta``, ``interval``, ``offset``,
        ``window_start``, ``scale``) in the backend's units; None otherwise. A simulated
        graph then builds it into the layer's process (:meth:`attach` then connects the
        label only)."""
        return None

    def readout_decay(self, net) -> float:
        """Per-step decay of the readout synapses' pre trace (their eligibility)."""
        return net.kappa

    def readout_rule(self, ctx):
        """The readout synapses' product-series rule object, or None for the common one
        (the readout's local gradient through its pre trace of :meth:`readout_decay`)."""
        return None

    def trace_decays(self, net) -> list[float]:
        """Per-step decays of every learning-engine trace of the graph (the idle steps
        between samples on Loihi 2 are sized by the slowest)."""
        return [self.readout_decay(net)]

    def attach(self, ctx) -> None:
        """Build the learning-signal path and connect it to the neurons of ``ctx``."""
        raise NotImplementedError

    def build_graph(self, net, dataset, backend: str, eta: float, n_samples, rng_seed: int):
        """A whole graph of the mode's own shape (a :class:`~lava_local.networks.graph
        .LavaGraph`), or None to learn on the common graph (the default)."""
        return None

    def record(self) -> dict:
        """What a run records about the learning on the graph."""
        return dict(self._record)


class GraphLearning:
    """A rule's parts on the Lava graph (see :mod:`lava_local.networks.graph`).

    Subclasses say which learning mode they are (``mode``, the value of ``run --learn``),
    which backends they run on, the product-series rule of every hidden layer's
    synapses, and how the learning signal reaches each hidden neuron's third-factor port
    (``attach``). The readout always learns with its exact local gradient (shared).

    Attributes
    ----------
    mode : str
    rule : str
        The registry name of the rule it belongs to.
    neuron, signal, product_series : str
        One-line descriptions of the three parts, for ``lava-local rules``.
    backends : tuple of str
        Backends whose models exist.
    """

    mode: ClassVar[str]
    rule: ClassVar[str]
    neuron: ClassVar[str] = ""
    signal: ClassVar[str] = ""
    product_series: ClassVar[str] = ""
    backends: ClassVar[tuple] = ("sim-float", "sim-fixed", "loihi2")
    #: The kind of exported net it learns on (``ExportedNet.neuron``: "lif" or "cuba").
    net_kind: ClassVar[str] = "lif"
    Options: ClassVar[type | None] = None
    #: SGD step of the learning engines when none is given (measured, see the README).
    default_eta: ClassVar[float] = 2.0 ** -7

    def describe(self) -> dict:
        return {"mode": self.mode, "neuron": self.neuron, "signal": self.signal,
                "product_series": self.product_series, "backends": list(self.backends),
                "default_eta": self.default_eta}

    def bind(self, net, backend: str, rng_seed: int = 0,
             options: Mapping[str, Any] | None = None):
        """The parts for one graph (a :class:`GraphParts`): ``net`` (an exported net),
        ``backend``, the seed of anything drawn at random, and the mode's options; raise
        ``ValueError`` naming the fix if they do not fit."""
        raise NotImplementedError


def _put(out: dict, state: Mapping, key: str, value) -> None:
    """``out[key]`` = ``value`` in the shape and dtype of ``state[key]``."""
    import numpy as np
    import torch

    ref = state[key]
    out[key] = torch.as_tensor(np.asarray(value)).to(ref.dtype).reshape(ref.shape).clone()
