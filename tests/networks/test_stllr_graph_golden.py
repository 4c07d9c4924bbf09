"""S-TLLR-DFA on the Lava graph gives the same weights and predictions as before the
graph became rule-agnostic.

``golden/stllr_dfa.npz`` was written by the graph builder of commit c08dedb (the last
S-TLLR-only ``run_network``) with ``python tests/networks/test_stllr_graph_golden.py``.
The net is made from seeded numpy draws (no training), so the case depends on nothing
but the graph: fixed-point weights must be equal bit for bit, float weights to 1e-12.
It runs with ``reset_traces=False``: the old graph let the learning engines' pre traces
run on across samples; zeroing them at each sample's start (the default since) is a
deliberate change, tested against the references in ``test_tess_graph.py``.
"""

from pathlib import Path

import numpy as np
import pytest

from lava_local.data import load_dataset
from lava_local.networks import ExportedNet

GOLDEN = Path(__file__).parent / "golden" / "stllr_dfa.npz"
N_SAMPLES, ETA, SEED = 4, 2 ** -5, 3


def golden_net() -> ExportedNet:
    rng = np.random.default_rng(17)
    sizes = [64, 24, 16, 10]
    weights = [rng.normal(scale=1.8 / np.sqrt(a), size=(b, a))
               for a, b in zip(sizes[:-1], sizes[1:])]
    feedback = [rng.uniform(-0.8, 0.8, size=(n, 10)) for n in sizes[1:-1]]
    return ExportedNet(weights=weights, gamma=0.5, v_th=0.8, kappa=0.9,
                       surrogate="triangle", n_steps=10, window_start=2, seed=SEED,
                       rule="stllr",
                       params=dict(lam_pre=0.5, lam_post=0.2, alpha_pre=1.0, alpha_post=-1.0,
                                   signal="dfa", post_form="paper"),
                       feedback=feedback)


def run(backend: str):
    from lava_local.networks.graph import run_network

    test = load_dataset("digits", "test", n_steps=10, seed=SEED)
    return run_network(golden_net(), test, backend=backend, learn="stllr-dfa",
                       n_samples=N_SAMPLES, eta=ETA, rng_seed=5, reset_traces=False)


@pytest.mark.parametrize("backend", ["sim-float", "sim-fixed"])
def test_stllr_dfa_graph_is_unchanged(backend):
    want = np.load(GOLDEN)
    r = run(backend)
    key = backend.replace("-", "_")
    np.testing.assert_array_equal(r.predictions, want[f"{key}_predictions"])
    for l, w in enumerate(r.weights):
        ref = want[f"{key}_w{l}"]
        assert np.abs(ref - golden_net().weights[l]).max() > 1e-4  # the case learns
        if backend == "sim-fixed":
            np.testing.assert_array_equal(w, ref)
        else:
            np.testing.assert_allclose(w, ref, rtol=0, atol=1e-12)


if __name__ == "__main__":
    out = {}
    for backend in ("sim-float", "sim-fixed"):
        r = run(backend)
        key = backend.replace("-", "_")
        out[f"{key}_predictions"] = r.predictions
        for l, w in enumerate(r.weights):
            out[f"{key}_w{l}"] = w
    np.savez_compressed(GOLDEN, **out)
    print("written", GOLDEN, {k: v.shape for k, v in out.items()})
