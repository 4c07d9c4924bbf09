"""Lava run speed (steps/s) of a trained network, learning off vs on (every on-graph
learning mode of the registry), float vs fixed; and the fixed graph's accuracy against
the float graph's on the test split.

    uv run python benchmarks/lava_speed.py --run runs/a --samples 60 [--accuracy-samples 360]

Trains the demo's default S-TLLR run (10 epochs) first when ``--run`` does not exist.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lava_local.cli import format_table
from lava_local.data import load_dataset
from lava_local.networks import export_run, load_exported
from lava_local.networks.graph import run_network
from lava_local.torch.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/bench-lava"))
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--accuracy-samples", type=int, default=0,
                    help="also compare float/fixed accuracy on this many test samples")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not (args.run / "checkpoint.pt").exists():
        train(TrainConfig(epochs=10), args.run, progress=False)
    net = load_exported(export_run(args.run))
    test = load_dataset(net.dataset, "test", n_steps=net.n_steps, encoding=net.encoding,
                        seed=net.seed)
    from lava_local.rules import graph_modes

    rows, res = [], []
    for backend in ("sim-float", "sim-fixed") if args.samples else ():
        r = run_network(net, test, backend=backend, n_samples=args.samples)
        inference = r.steps_per_second
        res.append({"backend": backend, "mode": "inference", "samples": args.samples,
                    "steps_per_second": inference})
        for learn in graph_modes():
            speed = {}
            for name, engine in (("graph, engine off", False), ("learning", True)):
                r = run_network(net, test, backend=backend, learn=learn,
                                n_samples=args.samples, learning_engine=engine)
                speed[name] = r.steps_per_second
                res.append({"backend": backend, "mode": f"{learn}: {name}",
                            "samples": args.samples, "steps_per_second": r.steps_per_second})
            on = speed["learning"]
            rows.append([backend, learn, f"{inference:.0f}",
                         f"{speed['graph, engine off']:.0f}", f"{on:.0f}",
                         f"{on / inference:.2f}", f"{on / speed['graph, engine off']:.2f}"])
    sizes = "-".join(map(str, net.layer_sizes))
    if rows:
        print(f"\nLava steps/s, net {sizes}, T={net.n_steps}, {args.samples} samples\n")
        print(format_table(["backend", "learning mode", "inference graph",
                            "learning graph, engine off", "learning on", "on / inference",
                            "on / engine off"], rows))
    if args.accuracy_samples:
        import torch

        from lava_local.torch.train import build

        ck = torch.load(args.run / "checkpoint.pt")
        model, _, _ = build(TrainConfig.from_dict(ck["config"]), net.layer_sizes[0],
                            net.layer_sizes[-1], torch.device("cpu"))
        model.load_state_dict(ck["model"])
        n = args.accuracy_samples
        x = torch.tensor(test.spikes[:n]).permute(1, 0, 2).float()
        batched = model.predict_logits(x, net.window_start).argmax(-1).numpy()
        print(f"\nbatched (torch) accuracy on {n} test samples: "
              f"{100 * (batched == test.labels[:n]).mean():.2f}%")
        acc = {}
        for backend in ("sim-float", "sim-fixed"):
            r = run_network(net, test, backend=backend, n_samples=n, progress=False)
            acc[backend] = r.accuracy
            agree = float((r.predictions == batched).mean())
            print(f"{backend}: accuracy {100 * r.accuracy:.2f}%, agreement with the batched "
                  f"predictions {100 * agree:.2f}%")
            res.append({"backend": backend, "learn": "none", "samples": n,
                        "accuracy": r.accuracy, "agreement_with_batched": agree})
        print(f"\naccuracy on {args.accuracy_samples} test samples: "
              f"sim-float {100 * acc['sim-float']:.2f}%, sim-fixed {100 * acc['sim-fixed']:.2f}%"
              f" (loss {100 * (acc['sim-float'] - acc['sim-fixed']):.2f} points)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "lava_speed.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
