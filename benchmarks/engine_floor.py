"""The arithmetic floor of a learning step: one S-TLLR weight update over every synapse of
a layer, by Lava's own float / bit-approximate appliers and by lava-local's (numpy, and
the compiled kernel updating the weights in place as the learning graph does), in this
process (no Lava runtime, no messages), on one core. The appliers return new arrays: their
times include writing fresh memory.

    uv run python benchmarks/engine_floor.py [--sizes 128x128,200x2312] [--repeats 50]

A learning graph cannot step faster than 1 / (this time) where its active block covers
every synapse (float traces decay but never reach 0, so there it nearly does).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from lava_local.cli import format_table
from lava_local.lava_runtime import ensure_lava_runtime


def _args(rng, n_post: int, n_pre: int, integer: bool) -> dict:
    """Every applier argument of S-TLLR's series, non-zero (a full block)."""
    draw = (lambda s: rng.integers(1, 127, s)) if integer else (lambda s: rng.random(s) + 0.1)
    args = dict(shape=(n_post, n_pre), x0=rng.random((1, n_pre)) < 0.5,
                y0=rng.random((n_post, 1)) < 0.5, u=1, np=np, tag_1=0, tag_2=0)
    for k in ("x1_u", "x2_u", "x1_y0", "x2_y0"):
        args[k] = draw((1, n_pre))
    for k in ("y1_u", "y2_u", "y1_y0", "y2_y0"):
        args[k] = draw((n_post, 1))
    return args


def _time(apply, w, args, repeats: int) -> float:
    apply(w.copy(), **args)
    t0 = time.perf_counter()
    for _ in range(repeats):
        apply(w.copy(), **args)
    return (time.perf_counter() - t0) / repeats


def _time_in_place(applier, w, args, repeats: int) -> float:
    """The kernel's update of every synapse of ``w`` in place, as the learning graph runs
    it (no new full-size arrays)."""
    w = w.copy()
    rows = np.arange(w.shape[0])
    applier.update(w, w, rows, None, **args)
    t0 = time.perf_counter()
    for _ in range(repeats):
        applier.update(w, w, rows, None, **args)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="128x128,200x2312",
                    help="N_post x N_pre of the layers, comma-separated")
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    ensure_lava_runtime()
    import torch
    from lava.magma.core.learning.learning_rule_applier import (
        LearningRuleApplierBitApprox,
        LearningRuleApplierFloat,
    )

    from lava_local.processes.learning_dense import _BroadcastApplierBitApprox, _EvalApplierFloat
    from lava_local.rules.stllr_loihi import OnChipSTLLR

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes.split(","):
        n_post, n_pre = (int(v) for v in size.lower().split("x"))
        for mode, lava_cls, ours_cls in (
                ("float", LearningRuleApplierFloat, _EvalApplierFloat),
                ("fixed", LearningRuleApplierBitApprox, _BroadcastApplierBitApprox)):
            ps = OnChipSTLLR(eta=2 ** -7, mode=mode, weight_precision=7) \
                .learning_rule(0).active_product_series["dw"]
            a = _args(rng, n_post, n_pre, mode == "fixed")
            w = (rng.integers(-200, 200, (n_post, n_pre)) << 7 if mode == "fixed"
                 else rng.normal(size=(n_post, n_pre)))
            a["weights"] = w
            t_lava = _time(lava_cls(ps).apply, w, a, args.repeats)
            os.environ["LAVA_LOCAL_KERNELS"] = "0"     # lava-local's numpy applier
            times = [_time(ours_cls(ps).apply, w, a, args.repeats)]
            os.environ["LAVA_LOCAL_KERNELS"] = "all"   # its kernel, in place (the graph's)
            times.append(_time_in_place(ours_cls(ps), w, a, args.repeats))
            rows.append([f"{n_post}x{n_pre}", mode, f"{1e3 * t_lava:.2f}",
                         *(f"{1e3 * t:.2f}" for t in times),
                         f"{t_lava / min(times):.1f}", f"{1 / min(times):.0f}"])
    print(format_table(["layer", "engine", "Lava's applier (ms/step)",
                        "lava-local's, numpy (ms/step)",
                        "lava-local's kernel, in place (ms/step)",
                        "speed-up", "at most learning steps/s"], rows))


if __name__ == "__main__":
    main()
