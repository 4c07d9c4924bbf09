"""The rule registry: one object per learning rule.

>>> from lava_local import rules
>>> tess = rules.get("tess")
>>> tess.Params(f="identity")            # its frozen, validated hyper-parameters
>>> tess.layers                          # the layer kinds it trains
>>> tess.graph.mode                      # "tess": `lava-local run RUN --learn tess`

Each rule lives in its own module (``stllr``, ``tess``, ``tp``, ``solsa``, ``ttlbptt``,
``bptt``): parameters, batched trainer, analytic cost formulas, supported layers and its
on-graph parts, or why it has none (see :class:`~lava_local.rules.base.Rule`). A new
rule is its equations (``functional/``), its module here, its line in :data:`REGISTRY`
and its tests.
"""

from __future__ import annotations

from .base import LAYER_KINDS, Costs, FlagSpec, GraphLearning, Rule, RuleParams
from .bptt import BPTT, BPTTParams
from .solsa import SOLSA, SOLSAParams
from .stllr import STLLR, STLLRParams
from .tess import TESS, TESSParams
from .tp import TP, TPParams
from .ttlbptt import TTLBPTT, TTLBPTTParams

#: Every rule, by name, in the order tables list them.
REGISTRY: dict[str, Rule] = {r.name: r for r in (STLLR, TESS, TP, SOLSA, TTLBPTT, BPTT)}
#: Rule names.
RULES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> Rule:
    """The rule called ``name`` (a ``ValueError`` naming the choices otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}") from None


def graph_modes() -> dict[str, GraphLearning]:
    """On-graph learning modes (``run --learn``) by name."""
    return {r.graph.mode: r.graph for r in REGISTRY.values() if r.graph is not None}


def graph_mode(name: str) -> GraphLearning:
    modes = graph_modes()
    if name not in modes:
        raise ValueError(f"unknown on-graph learning mode {name!r}; choose one of "
                         f"none, {', '.join(modes)}")
    return modes[name]


def flags() -> list[tuple[FlagSpec, list[str]]]:
    """Every rule option's flag once, with the rules that take it. A flag shared by
    several rules must mean the same (same key, default and parser)."""
    seen: dict[str, tuple[FlagSpec, list[str]]] = {}
    for rule in REGISTRY.values():
        for spec in rule.Params.flags():
            if spec.key in seen:
                first, users = seen[spec.key]
                if (first.flag, first.default, first.choices, first.action) != \
                        (spec.flag, spec.default, spec.choices, spec.action):
                    raise RuntimeError(f"option {spec.key} means different things in "
                                       f"{users[0]} and {rule.name}")
                users.append(rule.name)
            else:
                seen[spec.key] = (spec, [rule.name])
    return list(seen.values())


def option_keys() -> set[str]:
    """Flat keys of every rule's options."""
    return {spec.key for spec, _ in flags()}


__all__ = ["BPTTParams", "Costs", "GraphLearning", "LAYER_KINDS", "REGISTRY", "RULES",
           "Rule", "RuleParams", "SOLSAParams", "STLLRParams", "TESSParams", "TPParams",
           "TTLBPTTParams", "flags", "get", "graph_mode", "graph_modes", "option_keys"]
