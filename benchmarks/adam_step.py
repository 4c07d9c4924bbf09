"""One Adam step on the CPU: torch's ``torch.optim.Adam`` against the trainers'
``FusedAdam`` (one compiled pass per parameter), on the weight shapes of the speed
benchmark's nets, with ordinary moments and with first moments decayed into the
subnormal range (what vanishing gradients leave after ~800 steps).

    uv run python benchmarks/adam_step.py [--threads N] [--repeats R]

Prints a table (milliseconds per step, median of ``--repeats`` timed steps after a
warm-up, the two optimisers interleaved step by step) and writes nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lava_local.torch.optim import FusedAdam

SHAPES = {"128x64": (128, 64), "128x128": (128, 128), "450x700": (450, 700),
          "1000x1000": (1000, 1000)}


def _optimisers(shape, subnormal: bool):
    """torch's Adam and FusedAdam on equal parameters and gradients; with
    ``subnormal``, the first moments set to values below the smallest normal float
    (as 900 steps of zero gradient leave them) and the gradients zero."""
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(shape, generator=g)
    grad = torch.zeros(shape) if subnormal else torch.randn(shape, generator=g)
    out = []
    for cls in (torch.optim.Adam, FusedAdam):
        p = torch.nn.Parameter(p0.clone())
        opt = cls([p], lr=1e-3)
        p.grad = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        opt.step()                                  # the state exists
        if subnormal:
            opt.state[p]["exp_avg"].mul_(0.9 ** 850)     # 0.9^850 < 2^-126
            opt.state[p]["exp_avg_sq"].fill_(1e-6)
        p.grad = grad.clone()
        out.append(opt)
    return out


def time_steps(shape, subnormal: bool, repeats: int) -> tuple[float, float]:
    """Median seconds per step of torch's Adam and FusedAdam."""
    opts = _optimisers(shape, subnormal)
    times = [[], []]
    for k in range(repeats + 3):
        for i, opt in enumerate(opts):
            t0 = time.perf_counter()
            opt.step()
            if k >= 3:
                times[i].append(time.perf_counter() - t0)
    # zero gradients: torch's moments stay subnormal for ~130 more steps (x 0.9 each),
    # FusedAdam's are zero from its first step on, as in training
    return float(np.median(times[0])), float(np.median(times[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--repeats", type=int, default=50, help="timed steps (default 50)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"one Adam step, {args.threads} torch thread(s), median of {args.repeats} steps\n")
    head = ["weight", "moments", "torch Adam (ms)", "FusedAdam (ms)", "speed-up"]
    rows = []
    for name, shape in SHAPES.items():
        for sub in (False, True):
            a, b = time_steps(shape, sub, args.repeats)
            rows.append([name, "subnormal" if sub else "ordinary", f"{a * 1e3:.3f}",
                         f"{b * 1e3:.3f}", f"{a / b:.1f}"])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
