"""Every preset in Lava: agreement with the batched model, steps/s, and what the papers'
networks need on Loihi 2.

    uv run python benchmarks/paper_nets_in_lava.py --out results/paper-nets

1. Each preset (mlp, rec-mlp, alexnet-snn, vgg9) trained briefly at a small width on data
   this machine has (digits, the temporal task, synthetic DVS Gesture recordings written
   in tonic's format), then run in Lava float and fixed: accuracy, agreement with the
   batched model's predictions, steps/s.
2. The recipes' networks at the papers' sizes: neurons, synaptic connections (pooling
   folded into the next connection, as the graph does it) and weights per layer, and
   an estimate of Loihi 2 neuro cores from the chip's public figures (128 neuro cores,
   ≤ 8,192 neurons per core, 1 M neurons and 120 M synapses per chip, so ≈ 0.94 M synapses
   per core with one synapse per connection — no weight sharing).

Writes ``paper_nets_in_lava.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

if __name__ == "__main__":
    from lava_local.lava_runtime import ensure_lava_runtime

    ensure_lava_runtime()

CORES_PER_CHIP = 128
NEURONS_PER_CORE = 8192
SYNAPSES_PER_CORE = 120_000_000 // CORES_PER_CHIP


def synthetic_gestures(root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """DVS Gesture recordings (tonic's layout): class k's events cluster in its own
    corner and move in its own direction, so a small net can tell them apart."""
    import numpy as np

    from lava_local.data.fixtures import write_dvsgesture

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        samples = []
        for i in range(n):
            label = i % 11
            t = np.sort(rng.random(3000) * 1500.0)
            cx, cy = 20 + 80 * (label % 4) / 3, 20 + 80 * (label // 4) / 2
            ang = 2 * np.pi * label / 11
            x = np.clip(cx + 40 * np.cos(ang) * t / 1500 + rng.normal(0, 6, t.size), 0, 127)
            y = np.clip(cy + 40 * np.sin(ang) * t / 1500 + rng.normal(0, 6, t.size), 0, 127)
            samples.append((x.astype(int), y.astype(int), rng.integers(0, 2, t.size), t,
                            label, 1 + i))
        write_dvsgesture(root, split, samples)


def agreement(out: Path, n_test: int) -> list[dict]:
    """Part 1 (see module doc)."""
    import numpy as np
    import torch

    from lava_local.cli import format_table
    from lava_local.data import load_dataset
    from lava_local.networks import export_run, load_exported
    from lava_local.networks.graph import run_network
    from lava_local.torch.train import TrainConfig, build, read_checkpoint, train

    data = out / "data"
    if not (data / "DVSGesture").exists():
        synthetic_gestures(data, 110, 44)
    runs = {
        "mlp": TrainConfig(rule="stllr", epochs=5, n_steps=20, seed=0),
        "rec-mlp": TrainConfig(rule="stllr", dataset="temporal", preset="rec-mlp",
                               hidden=(64,), n_steps=40, gamma=0.95, lr=2e-3, window=10,
                               epochs=10, seed=0),
        "alexnet-snn": TrainConfig(rule="stllr", preset="alexnet-snn", width=0.125,
                                   epochs=4, n_steps=8, init_gain=3.0, v_th=0.3, seed=0),
        "vgg9": TrainConfig(rule="stllr", dataset="dvsgesture", root=str(data),
                            preset="vgg9", width=1 / 16, epochs=6, n_steps=8,
                            batch_size=16, init_gain=3.0, v_th=0.3, seed=0),
    }
    rows = []
    for preset, cfg in runs.items():
        d = out / "runs" / preset
        if not (d / "results.json").exists():
            train(cfg, d, progress=True)
        net = load_exported(export_run(d))
        ck = read_checkpoint(d / "checkpoint.pt")
        test = load_dataset(cfg.dataset, "test", cfg.root, n_steps=cfg.n_steps, seed=cfg.seed)
        n = min(n_test, len(test))
        model, _, _ = build(cfg, test.n_inputs, test.n_classes, torch.device("cpu"),
                            test.frame_shape)
        model.load_state_dict(ck["model"])
        x = torch.tensor(np.stack([test.frames(i) if hasattr(test, "frames") else test[i][0]
                                   for i in range(n)])).permute(1, 0, 2).float()
        want = model.predict_logits(x, net.window_start).argmax(-1).numpy()
        row = {"preset": preset, "dataset": cfg.dataset, "n_test": n,
               "batched_accuracy": float((want == test.labels[:n]).mean())}
        for backend in ("sim-float", "sim-fixed"):
            r = run_network(net, test, backend=backend, n_samples=n, progress=True)
            row[backend] = {"accuracy": r.accuracy,
                            "agreement": float((r.predictions == want).mean()),
                            "steps_per_second": r.steps_per_second}
        rows.append(row)
        print(row, flush=True)
    print(f"\nevery preset in Lava (small widths; {n_test} test samples at most)\n")
    print(format_table(
        ["preset", "data", "batched acc", "float agreement", "fixed agreement",
         "float steps/s", "fixed steps/s"],
        [[r["preset"], r["dataset"], f"{100 * r['batched_accuracy']:.2f}%",
          f"{100 * r['sim-float']['agreement']:.2f}%",
          f"{100 * r['sim-fixed']['agreement']:.2f}%",
          f"{r['sim-float']['steps_per_second']:.0f}",
          f"{r['sim-fixed']['steps_per_second']:.0f}"] for r in rows]))
    return rows


def layer_resources(cfg, frame_shape, n_inputs: int, n_classes: int) -> list[dict]:
    """Per connection of the graph: neurons it feeds, fan-in, connections, weights."""
    from lava_local.torch.conv import CONV_SPECS, ConvNetConfig, conv_spec

    out = []
    if cfg.preset in CONV_SPECS:
        ccfg = ConvNetConfig(tuple(frame_shape), n_classes, conv_spec(cfg.preset, cfg.width))
        shape = tuple(frame_shape)
        for p in ccfg.plan():
            n = math.prod(p["out"])
            k = p["pool"]
            if p["kind"] == "conv":
                fan_in = shape[0] * (3 * k) ** 2
                weights = p["out"][0] * p["in"][0] * 9
            else:
                fan_in = math.prod(shape)
                weights = p["out"][0] * p["in"][0]
            out.append({"layer": p["kind"], "neurons": n, "fan_in": fan_in,
                        "connections": n * fan_in, "weights": weights})
            shape = tuple(p["out"])
        pool, n_ro = ccfg.readout_in()
        out.append({"layer": "readout", "neurons": n_classes, "fan_in": math.prod(shape),
                    "connections": n_classes * math.prod(shape),
                    "weights": n_classes * n_ro})
        return out
    sizes = [n_inputs, *cfg.hidden, n_classes]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        rec = cfg.is_recurrent and i < len(cfg.hidden)
        fan_in = a + (b if rec else 0)
        out.append({"layer": "readout" if i == len(cfg.hidden) else
                    ("recurrent" if rec else "dense"), "neurons": b, "fan_in": fan_in,
                    "connections": b * fan_in, "weights": b * fan_in})
    return out


def resources() -> list[dict]:
    """Part 2 (see module doc)."""
    from lava_local.cli import format_table
    from lava_local.data.events import SPECS
    from lava_local.recipes import RECIPES
    from lava_local.torch.train import TrainConfig

    shapes = {"gsc": ((120,), 35)}
    rows = []
    for name, recipe in RECIPES.items():
        cfg = TrainConfig.from_flat(strict=False, **recipe.config)
        if cfg.dataset in SPECS:
            spec = SPECS[cfg.dataset]
            frame, n_classes = spec.frame_shape, spec.n_classes
        else:
            frame, n_classes = shapes[cfg.dataset]
        layers = layer_resources(cfg, frame, math.prod(frame), n_classes)
        cores = sum(max(math.ceil(ly["neurons"] / NEURONS_PER_CORE),
                        math.ceil(ly["connections"] / SYNAPSES_PER_CORE)) for ly in layers)
        row = {"recipe": name, "preset": cfg.preset, "layers": layers,
               "neurons": sum(ly["neurons"] for ly in layers),
               "connections": sum(ly["connections"] for ly in layers),
               "weights": sum(ly["weights"] for ly in layers), "cores": cores,
               "chips": math.ceil(cores / CORES_PER_CHIP)}
        rows.append(row)
    print("\nthe recipes' networks on Loihi 2 (estimate: one synapse per connection, "
          f"{NEURONS_PER_CORE} neurons and {SYNAPSES_PER_CORE:,} synapses per core, "
          f"{CORES_PER_CHIP} cores per chip)\n")
    print(format_table(["recipe", "preset", "neurons", "connections", "weights",
                        "neuro cores", "chips"],
                       [[r["recipe"], r["preset"], f"{r['neurons']:,}",
                         f"{r['connections']:,}", f"{r['weights']:,}", str(r["cores"]),
                         str(r["chips"])] for r in rows]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test-samples", type=int, default=40)
    ap.add_argument("--only-resources", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("results/paper-nets"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"resources": resources()}
    if not args.only_resources:
        report["agreement"] = agreement(args.out, args.test_samples)
    (args.out / "paper_nets_in_lava.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {args.out / 'paper_nets_in_lava.json'}")


if __name__ == "__main__":
    main()
