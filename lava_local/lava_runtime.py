"""Import Lava's runtime safely.

Lava's runtime calls ``multiprocessing.set_start_method('fork')`` when it is first
imported and fails if the start method was already fixed — which any earlier call of
``multiprocessing.get_start_method()`` does (scikit-learn, torch and others make such
calls). :func:`ensure_lava_runtime` imports the runtime first, clearing a previously
fixed 'fork' method so Lava can set it again; any other method is an error, because
Lava's runtime needs fork.
"""

from __future__ import annotations

import multiprocessing as mp
import sys

_RUNTIME_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"


def ensure_lava_runtime() -> None:
    """Make sure Lava's runtime is importable in this process (idempotent)."""
    if _RUNTIME_MODULE in sys.modules:
        return
    method = mp.get_start_method(allow_none=True)
    if method not in (None, "fork"):
        raise RuntimeError(
            f"the multiprocessing start method is already {method!r}, but Lava's runtime "
            "needs 'fork'; import lava_local's Lava parts before setting another method")
    if method == "fork":
        mp.set_start_method(None, force=True)
    __import__(_RUNTIME_MODULE)
