"""A signal during a Lava run stops every worker process and leaves no shared memory
behind; the user sees one line, not a traceback per worker."""

import os
import signal
import subprocess
import sys
import time

import pytest

from lava_local.torch.train import TrainConfig, train


def _session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the run and every worker it forked; exited
    ones waiting to be reaped do not count)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid=,stat="], capture_output=True,
                         text=True, check=True).stdout
    return [int(p) for p, s, st in (line.split() for line in out.splitlines())
            if int(s) == sid and not st.startswith("Z")]


def _psm() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("psm_")}


def _mapped_psm(pids: list[int]) -> set[str]:
    """The shared-memory segments these processes have mapped (the run's own, whatever
    other Lava runs on the machine do meanwhile)."""
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if "/dev/shm/psm_" in line:
                        names.add(line.rsplit("/", 1)[-1].split()[0])
        except OSError:
            pass
    return names


def _wait(done, tries: int, pause: float = 0.25) -> None:
    for _ in range(tries):
        if done():
            return
        time.sleep(pause)


def _start_graph(run_dir, **pipes) -> tuple[subprocess.Popen, set[str]]:
    """`lava-local run` in its own session, once its graph is stepping; with the shared
    memory its processes have mapped."""
    p = subprocess.Popen([sys.executable, "-m", "lava_local.cli", "run", str(run_dir),
                          "--backend", "sim-float", "--no-progress"],
                         start_new_session=True, **pipes)
    _wait(lambda: len(_session(p.pid)) >= 6 or p.poll() is not None, 450, 0.2)
    if p.poll() is not None or len(_session(p.pid)) < 6:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("the graph did not start")
    time.sleep(1.5)                             # the graph is stepping
    return p, _mapped_psm(_session(p.pid))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("signals") / "run"
    train(TrainConfig(epochs=1, n_steps=10, hidden=(16,)), out, progress=False)
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_python_process_stops_the_lava_run_cleanly(run_dir, sig):
    p, own = _start_graph(run_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    try:
        assert own, "the run maps no shared memory: nothing to check"
        os.kill(p.pid, sig)                     # the Python process alone, not its group
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            pytest.fail("the run did not exit within 30 s of the signal")
    assert p.returncode == 130, err
    assert "interrupted" in err and "processes were stopped" in err
    assert "Traceback" not in err
    _wait(lambda: not _session(p.pid), 20)      # give exiting workers a moment
    assert _session(p.pid) == [], "worker processes were left behind"
    assert own & _psm() == set(), "shared-memory segments were left behind"
    assert not list(run_dir.glob("lava-*.json")), "an interrupted run wrote results"


def test_a_killed_run_leaves_no_worker_behind(run_dir):
    """SIGKILL cannot be handled; the workers die with the process that forked them
    (PR_SET_PDEATHSIG) and the run's shared memory is released."""
    p, own = _start_graph(run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        _wait(lambda: not _session(p.pid), 40)
        assert _session(p.pid) == [], "worker processes outlived a killed run"
        _wait(lambda: not own & _psm(), 20)     # multiprocessing's resource tracker
        assert own and own & _psm() == set(), "shared-memory segments were left behind"
    finally:
        if _session(p.pid):
            os.killpg(p.pid, signal.SIGKILL)

