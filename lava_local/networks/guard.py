"""Running a Lava graph so that a signal or an error never leaves processes behind.

Lava runs each ProcessModel in a forked worker process. Left to themselves, a Ctrl-C
(SIGINT to the whole process group) makes every worker print its own traceback; SIGINT to
the Python process alone leaves it waiting forever on workers blocked in futex waits; and
SIGTERM leaves ~10 orphan workers and their shared-memory segments in /dev/shm
(`../shared/LAVA_NOTES.md`). :class:`LavaGuard` therefore

- forks the workers with SIGINT ignored (they inherit it): only the parent handles it;
- turns SIGINT and SIGTERM in the parent into :class:`Interrupted` while the graph runs;
- stops the runtime in a thread with a deadline, and if it does not stop in time kills
  the worker processes and removes the shared-memory segments that appeared during the
  run and are still there;
- on Linux, has each worker killed by the kernel when the Python process dies
  (PR_SET_PDEATHSIG), so that a SIGKILL of the run leaves no worker behind either.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

SHM = Path("/dev/shm")


class Interrupted(KeyboardInterrupt):
    """A signal stopped a Lava run (its processes are stopped)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_FORKING = threading.local()


def _die_with_parent() -> None:
    """In a worker forked by :meth:`LavaGuard.start`: ask Linux to SIGKILL it when the
    process that forked it dies (PR_SET_PDEATHSIG), so that even a SIGKILL of the run
    leaves no worker behind."""
    if not getattr(_FORKING, "on", False):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the signal handlers still stop the run
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_die_with_parent)


def _shm_names() -> set[str]:
    try:
        return {p.name for p in SHM.iterdir()}
    except OSError:
        return set()


class LavaGuard:
    """Use around a Lava run::

        with LavaGuard() as guard:
            guard.start(lambda: process.create_runtime(run_cfg=cfg))
            process.run(...)
        # on leaving: process stopped (guard.stop_with), even on a signal or an error
    """

    def __init__(self, stop_timeout: float = 20.0):
        self.stop_timeout = stop_timeout
        self._stop = None
        self._old: dict[int, object] = {}
        self._shm_before: set[str] = set()
        self._main = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> LavaGuard:
        self._shm_before = _shm_names()
        return self

    def start(self, create, stop) -> None:
        """``create()`` the runtime (forks the workers) with SIGINT ignored, then catch
        SIGINT/SIGTERM until the guard exits; ``stop()`` stops the runtime."""
        self._stop = stop
        if not self._main:          # signals can only be handled in the main thread
            create()
            return
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        _FORKING.on = True
        try:
            create()
        finally:
            _FORKING.on = False
            signal.signal(signal.SIGINT, old_int)
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._raise)

    @staticmethod
    def _raise(signum, frame):
        raise Interrupted(signum)

    def __exit__(self, *exc) -> None:
        try:
            if self._old:           # a second Ctrl-C must not cut the stopping short
                for s in self._old:
                    signal.signal(s, signal.SIG_IGN)
            if self._stop is not None:
                self._stop_in_time()
        finally:
            for s, h in self._old.items():
                signal.signal(s, h)
            self._old.clear()

    def _stop_in_time(self) -> None:
        done = threading.Event()

        def stop():
            try:
                self._stop()
            except Exception:       # a runtime that failed to start or already ended
                pass
            finally:
                done.set()

        threading.Thread(target=stop, daemon=True).start()
        if done.wait(self.stop_timeout):
            return
        for child in multiprocessing.active_children():
            try:
                child.kill()
            except OSError:
                pass
        for child in multiprocessing.active_children():
            child.join(timeout=2)
        for name in _shm_names() - self._shm_before:
            if name.startswith("psm_"):
                try:
                    os.unlink(SHM / name)
                except OSError:
                    pass
