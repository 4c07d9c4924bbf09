"""lava-local: local learning rules for spiking neural networks on Lava.

The Python API (:mod:`lava_local.api`), one call each::

    import lava_local as ll
    train, test = ll.data.from_arrays(x_train, y_train), ll.data.from_arrays(x_test, y_test)
    run = ll.train("stllr", train, test, hidden=(64,), epochs=5, out="runs/mine")
    ll.run_on_lava(run, test, backend="sim-fixed")
    ll.learn_on_lava(run, stream=train, evaluate=test, rule="stllr-dfa")

``ll.data`` (data sets, encoders), ``ll.rules`` (the rule registry) and
``ll.networks`` (export, Lava graphs) are imported on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = ("Run", "learn_on_lava", "run_on_lava", "train")
_SUBMODULES = ("api", "bench", "data", "networks", "rules")

__all__ = [*_API, *_SUBMODULES, "__version__"]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(".api", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lava_local' has no attribute {name!r}")
