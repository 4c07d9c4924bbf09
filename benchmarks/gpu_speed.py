"""The GPU targets of the speed issue in one run, for a machine with torch and a CUDA
device but without Lava (the torch side of lava-local needs only torch and numpy):

    PYTHONPATH=. python benchmarks/gpu_speed.py --out results/gpu

Net 700-1000-1000-1000-1000-20, batch 512, T = 100 and 1000 (``--steps``), every trainer
variant against BPTT exactly as ``lava-local bench speed --device cuda`` times them
(round robin, CUDA-synchronised, median of ``--repeats``; the device's fp32 matmul rate
measured in the same run). Writes ``gpu_speed.json``: one ``bench speed`` result per T
(:func:`lava_local.bench.trainer_speed`), written after each T, so a run cut short keeps
what it measured; prints the tables. Plot them later on any machine with matplotlib:

    uv run python benchmarks/gpu_speed.py --plot results/gpu
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_speed.json")
    p.add_argument("--plot", action="store_true",
                   help="only plot the gpu_speed.json in --out (one PNG per T)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run)")
    p.add_argument("--steps", type=_ints, default=(100, 1000), help="T values (100,1000)")
    p.add_argument("--hidden", type=_ints, default=(1000,) * 4, help="hidden widths")
    p.add_argument("--n-in", type=int, default=700)
    p.add_argument("--n-out", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    a = p.parse_args(argv)
    path = a.out / "gpu_speed.json"
    if a.plot:
        from lava_local.plots import plot_speed

        for res in json.loads(path.read_text()):
            png = plot_speed(res, a.out / f"gpu_speed_T{res['setup']['n_steps']}.png")
            print(f"written: {png}")
        return 0

    import torch

    from lava_local.bench import SpeedSetup, speed_table, speed_title, trainer_speed
    from lava_local.cli import format_table

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_speed: torch sees no CUDA device (--device cpu for a dry run)",
              file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    results = []
    for t in a.steps:
        setup = SpeedSetup(a.n_in, a.hidden, a.n_out, t, a.batch_size)
        res = trainer_speed(setup, a.device, a.repeats, a.warmup, progress=False)
        results.append(res)
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\n{speed_title(res)}\n", flush=True)
        print(format_table(*speed_table(res)), flush=True)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
