"""Compiling generated numba kernels once per machine (no Lava, no torch here).

A kernel is Python source defining ``kernel``; :func:`compile_kernel` compiles it with
numba's ``njit`` and keeps the machine code on disk, so that a process started later
(every Lava run forks new ones, every training run is a new process) loads it instead
of compiling again. Used by the learning engine's kernels
(:mod:`lava_local.processes.kernels`) and the trainers' fused Adam step
(:mod:`lava_local.torch.optim`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def numba_available() -> bool:
    """Whether numba imports (kernels can be compiled)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def kernel_cache_dir() -> Path:
    """Where compiled kernels are kept between processes: ``LAVA_LOCAL_CACHE`` or
    ``~/.cache/lava-local``, sub-folder ``kernels``."""
    root = os.environ.get("LAVA_LOCAL_CACHE") or Path.home() / ".cache" / "lava-local"
    return Path(root) / "kernels"


@functools.cache
def compile_kernel(source: str, error_model: str = "python"):
    """The njit-compiled ``kernel`` of ``source`` (numba's ``error_model``: ``numpy``
    lets a loop that divides vectorise, with IEEE results for a division by zero).

    The source is written once to a file named by its hash in :func:`kernel_cache_dir`
    and imported from there, so that numba's on-disk cache keeps the machine code: a
    Lava process started later (every run forks new ones) loads it instead of compiling
    again. Where that folder cannot be written the kernel is compiled in memory."""
    from numba import njit

    text = ("import numpy as np\nfrom numba import njit\n\n\n"
            f"@njit(cache=True, nogil=True, error_model={error_model!r})\n" + source)
    try:
        folder = kernel_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"k_{hashlib.sha1(text.encode()).hexdigest()[:20]}.py"
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            if not path.exists():
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
        name = f"lava_local_kernel_{path.stem}"
        if name not in sys.modules:      # numba's cache finds the module by its name
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return sys.modules[name].kernel
    except OSError:
        env: dict = {"np": np}
        exec(compile(source, "<lava-local kernel>", "exec"), env)  # noqa: S102
        return njit(nogil=True, error_model=error_model)(env["kernel"])


@functools.cache
def numpy_kernel(source: str):
    """:func:`compile_kernel` of ``source`` with numba's ``numpy`` error model, looked up
    once per source (the trainers call their kernels at every step)."""
    return compile_kernel(source, error_model="numpy")
