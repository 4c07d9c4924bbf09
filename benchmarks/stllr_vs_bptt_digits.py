"""S-TLLR (bp and dfa) vs BPTT on the embedded digits data over several seeds.

Prints a table of test accuracy (mean ± std over seeds), learning-state memory and MACs
per sample and training time per epoch; writes the rows as JSON (and a bar plot) when
``--out`` is given.

    uv run python benchmarks/stllr_vs_bptt_digits.py --seeds 0,1,2 --epochs 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lava_local.cli import format_table, human_bytes, human_count
from lava_local.torch.train import TrainConfig, train

VARIANTS = {"stllr-bp": dict(rule="stllr", signal="bp"),
            "stllr-dfa": dict(rule="stllr", signal="dfa"),
            "bptt": dict(rule="bptt")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name, kw in VARIANTS.items():
        runs = [train(TrainConfig.from_flat(epochs=args.epochs, n_steps=args.steps, seed=s,
                                            **kw),
                      progress=False) for s in seeds]
        acc = np.array([r["test_acc"] for r in runs]) * 100
        c = runs[0]["cost"]
        rows.append({
            "variant": name, "seeds": seeds, "test_acc": acc.tolist(),
            "test_acc_mean": float(acc.mean()), "test_acc_std": float(acc.std(ddof=1))
            if len(acc) > 1 else 0.0,
            "epoch_time_s": float(np.mean([r["train_time_s"] / args.epochs for r in runs])),
            "cost": c,
        })
        print(f"{name}: {acc.round(2).tolist()}", flush=True)
    print()
    print(format_table(
        ["variant", "test acc (mean ± std)", "mem/sample analytic", "mem/sample measured",
         "learn MACs/sample analytic", "MACs/sample measured", "s/epoch"],
        [[r["variant"], f"{r['test_acc_mean']:.2f} ± {r['test_acc_std']:.2f}",
          human_bytes(r["cost"]["memory_analytic_bytes_per_sample"]),
          human_bytes(r["cost"]["memory_measured_bytes_per_sample"]),
          human_count(r["cost"]["macs_analytic_learning_per_sample"]),
          human_count(r["cost"]["macs_measured_per_sample"]),
          f"{r['epoch_time_s']:.2f}"] for r in rows]))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "digits.json").write_text(json.dumps(rows, indent=2) + "\n")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar([r["variant"] for r in rows], [r["test_acc_mean"] for r in rows],
               yerr=[r["test_acc_std"] for r in rows], capsize=4,
               color=["C0", "C9", "C1"])
        ax.set_ylim(80, 100)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"digits, T={args.steps}, {len(seeds)} seeds")
        fig.tight_layout()
        fig.savefig(args.out / "digits.png", dpi=120)
        print(f"written: {args.out / 'digits.json'}, {args.out / 'digits.png'}")


if __name__ == "__main__":
    main()
