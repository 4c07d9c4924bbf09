"""SOLSA from the batched trainer to learning on the Lava graph, one run.

    uv run python benchmarks/solsa_on_lava.py --seeds 0,1,2 --out results/solsa

1. Batched SOLSA on the embedded temporal task (the `compare` setting: T = 40,
   λ = γ = 0.95, lr 2e-3, window 10, 25 epochs), with the eligibility in float and
   rounded every step to the fixed-point graph's 8-bit + sign tag (``solsa_tag_quant``):
   what the on-chip tag costs, in accuracy points.
2. The trained net (first seed) as a Lava graph: accuracy of sim-float and sim-fixed on
   the test split and agreement with the batched model.
3. Online learning on the graph (``--learn solsa``), measured on data it did not learn
   from: an under-trained net and the trained net stream training samples through the
   learning graph; the test samples are measured before and after.
4. Learning-state memory of SOLSA vs BPTT on the same net as T grows (batch 1, the
   online setting SOLSA targets, and batch 32), and the T where they cross.

Writes ``solsa_on_lava.json`` and ``solsa_on_lava.png`` into ``--out``
(``python benchmarks/solsa_on_lava.py --replot OUT`` redraws the plot from the JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

if __name__ == "__main__":
    from lava_local.lava_runtime import ensure_lava_runtime

    ensure_lava_runtime()

#: The temporal task's setting of the README's `compare` table.
TEMPORAL = dict(dataset="temporal", n_steps=40, gamma=0.95, lr=2e-3, window=10, epochs=25)


def main() -> None:
    import numpy as np

    from lava_local.cli import format_table
    from lava_local.networks import export_run, load_exported
    from lava_local.networks.online import learn_online
    from lava_local.torch.train import TrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=TEMPORAL["epochs"])
    ap.add_argument("--test-samples", type=int, default=300)
    ap.add_argument("--learn-samples", type=int, default=150)
    ap.add_argument("--eta", default="2^-7,2^-5",
                    help="learning rates of the online runs (2^k or decimals)")
    ap.add_argument("--memory-steps", default="20,40,100,200,400,1000")
    ap.add_argument("--out", type=Path, default=Path("results/solsa-on-lava"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    etas = [2.0 ** float(e[2:]) if e.startswith("2^") else float(e)
            for e in args.eta.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.out / "runs"
    report: dict = {"config": vars(args) | {"out": str(args.out)}}

    # 1. float eligibility vs the tag's 8 bits + sign ---------------------------------------
    accs = {}
    for quant in (False, True):
        key = "tag" if quant else "float"
        accs[key] = []
        for s in seeds:
            d = runs / f"solsa-{key}-seed{s}"
            cfg = TrainConfig(rule="solsa", seed=s, params={"solsa_tag_quant": quant},
                              **{**TEMPORAL, "epochs": args.epochs})
            res = (json.loads((d / "results.json").read_text())
                   if (d / "results.json").exists() else train(cfg, d, progress=True))
            accs[key].append(res["test_acc"])
    report["tag"] = {k: {"per_seed": v, "mean": float(np.mean(v)), "std": float(np.std(v))}
                     for k, v in accs.items()}
    print(f"\nbatched SOLSA on the temporal task, seeds {args.seeds}\n")
    print(format_table(["eligibility", "mean ± std", "per seed"],
                       [[k, f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}",
                         " ".join(f"{100 * a:.2f}" for a in v)] for k, v in accs.items()]))
    print(f"cost of the 8-bit tag: {100 * (np.mean(accs['float']) - np.mean(accs['tag'])):.2f}"
          " points", flush=True)

    # 2. the trained net in Lava -----------------------------------------------------------
    d = runs / f"solsa-float-seed{seeds[0]}"
    report["lava"] = lava_agreement(d, args.test_samples)

    # 3. online learning on the graph ------------------------------------------------------
    weak_dir = runs / "solsa-weak"
    if not (weak_dir / "checkpoint.pt").exists():
        train(TrainConfig(rule="solsa", seed=1, **{**TEMPORAL, "epochs": 2}), weak_dir,
              progress=True)
    from lava_local.data import load_dataset

    rows, online = [], []
    for label, run_dir in (("under-trained", weak_dir), ("trained", d)):
        net = load_exported(export_run(run_dir))
        tr = load_dataset("temporal", "train", n_steps=net.n_steps, seed=net.seed)
        te = load_dataset("temporal", "test", n_steps=net.n_steps, seed=net.seed)
        for eta in etas:
            for backend in ("sim-float", "sim-fixed"):
                r = learn_online(net, tr, te, backend, "solsa", n_learn=args.learn_samples,
                                 n_test=args.test_samples, eta=eta)
                row = {"net": label, "backend": backend, "eta": eta,
                       "before": r.before.accuracy, "after": r.after.accuracy,
                       "learning_steps_per_second": r.stream.steps_per_second}
                online.append(row)
                rows.append([label, backend, f"2^{np.log2(eta):.0f}",
                             f"{100 * r.before.accuracy:.2f}%", f"{100 * r.after.accuracy:.2f}%",
                             f"{100 * (r.after.accuracy - r.before.accuracy):+.2f}",
                             f"{r.stream.steps_per_second:.0f}"])
                print(rows[-1], flush=True)
    report["online"] = online
    print(f"\nonline learning on the graph (--learn solsa): {args.learn_samples} training "
          f"samples streamed, {args.test_samples} test samples before/after\n")
    print(format_table(["net", "backend", "eta", "test before", "test after", "change",
                        "learning steps/s"], rows))

    # 4. memory vs T -----------------------------------------------------------------------
    report["memory"] = memory_crossing([int(t) for t in args.memory_steps.split(",")])
    (args.out / "solsa_on_lava.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out / "solsa_on_lava.png")
    print(f"\nwritten: {args.out / 'solsa_on_lava.json'}, {args.out / 'solsa_on_lava.png'}")


def lava_agreement(run_dir: Path, n_test: int) -> dict:
    """Part 2: the batched model's test predictions vs the float and fixed graphs."""
    import torch

    from lava_local.cli import format_table
    from lava_local.data import load_dataset
    from lava_local.networks import export_run, load_exported
    from lava_local.networks.graph import run_network
    from lava_local.torch.train import TrainConfig, build, read_checkpoint

    net = load_exported(export_run(run_dir))
    test = load_dataset("temporal", "test", n_steps=net.n_steps, seed=net.seed)
    n = min(n_test, len(test))
    ck = read_checkpoint(run_dir / "checkpoint.pt")
    model, _, _ = build(TrainConfig.from_dict(ck["config"]), test.n_inputs, test.n_classes,
                        torch.device("cpu"))
    model.load_state_dict(ck["model"])
    x = torch.tensor(test.spikes[:n]).permute(1, 0, 2).float()
    batched = model.predict_logits(x, net.window_start).argmax(-1).numpy()
    lava = {"batched": {"accuracy": float((batched == test.labels[:n]).mean())}}
    for b in ("sim-float", "sim-fixed"):
        r = run_network(net, test, backend=b, n_samples=n, progress=True)
        lava[b] = {"accuracy": r.accuracy, "agreement": float((r.predictions == batched).mean()),
                   "steps_per_second": r.steps_per_second}
    print(f"\nthe trained SOLSA net ({run_dir.name}) on {n} test samples\n")
    print(format_table(["", "accuracy", "agreement with batched", "steps/s"],
                       [[k, f"{100 * v['accuracy']:.2f}%",
                         f"{100 * v['agreement']:.2f}%" if "agreement" in v else "-",
                         f"{v['steps_per_second']:.0f}" if "steps_per_second" in v else "-"]
                        for k, v in lava.items()]), flush=True)
    return lava


def memory_crossing(steps: list[int]) -> dict:
    """Part 4: measured learning-state memory per sample of SOLSA and BPTT (one training
    step of the temporal net, 40-128-128-4) for each T, at batch 1 and batch 32."""
    from dataclasses import replace

    from lava_local.cli import format_table
    from lava_local.torch.train import TrainConfig, memory_sweep

    out = {}
    for batch in (1, 32):
        cfg = replace(TrainConfig(rule="solsa", **TEMPORAL), batch_size=batch)
        rows = memory_sweep(cfg, steps, rules=("solsa", "bptt"), progress=False)
        table = {}
        for r in rows:
            table.setdefault(r["n_steps"], {})[r["rule"]] = \
                r["memory_measured_bytes_per_sample"]
        cross = next((t for t in sorted(table) if table[t]["bptt"] > table[t]["solsa"]), None)
        out[f"batch{batch}"] = {"per_T": {str(t): v for t, v in table.items()},
                                "crossing_T": cross}
        print(f"\nlearning-state memory per sample (measured), batch {batch}\n")
        print(format_table(["T", "BPTT", "SOLSA", "SOLSA / BPTT"],
                           [[str(t), f"{v['bptt'] / 1024:.1f} KiB",
                             f"{v['solsa'] / 1024:.1f} KiB",
                             f"{v['solsa'] / v['bptt']:.2f}"] for t, v in sorted(table.items())]))
        print(f"SOLSA needs less than BPTT from T = {cross}", flush=True)
    return out


def plot(report: dict, path: Path) -> None:
    """Left: batched SOLSA, float vs tag eligibility; middle: online learning on the
    graph; right: memory per sample against T."""
    import numpy as np

    from lava_local.plots import _plt

    plt = _plt()
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 4.4))
    tag = report["tag"]
    means = [100 * v["mean"] for v in tag.values()]
    a1.bar(list(tag), means, yerr=[100 * v["std"] for v in tag.values()], capsize=4,
           color=["C0", "C1"], width=0.5)
    for i, v in enumerate(tag.values()):       # every seed, and the mean beside its bar
        a1.plot([i] * len(v["per_seed"]), [100 * a for a in v["per_seed"]], "k.", ms=6)
        a1.annotate(f"{means[i]:.2f}", (i + 0.27, means[i]), fontsize=8, va="center")
    lo = min(min(v["per_seed"]) for v in tag.values())
    a1.set_ylim(max(0, 100 * lo - 5), 101)
    a1.set_ylabel("test accuracy (%)")
    a1.set_title(f"batched SOLSA, temporal task, {len(tag['float']['per_seed'])} seeds:\n"
                 "float eligibility vs the on-chip tag (8 bits + sign)", fontsize=9)
    online = report["online"]
    labels = [f"{'weak' if o['net'] == 'under-trained' else 'trained'} {o['backend'][4:]} "
              f"η=2^{np.log2(o['eta']):.0f}" for o in online]
    change = [100 * (o["after"] - o["before"]) for o in online]
    b2 = a2.bar(range(len(change)), change, color=["C3" if c < 0 else "C2" for c in change])
    a2.bar_label(b2, fmt="%+.1f", fontsize=7)
    a2.axhline(0, color="k", lw=0.8)
    a2.set_xticks(range(len(change)), labels, rotation=90, fontsize=7)
    a2.set_ylabel("test accuracy after - before (points)")
    a2.set_title("learning on the Lava graph (--learn solsa),\nmeasured on test samples",
                 fontsize=9)
    for i, (key, m) in enumerate(report["memory"].items()):
        ts = sorted(int(t) for t in m["per_T"])
        for rule, style in (("bptt", "--"), ("solsa", "-")):
            a3.plot(ts, [m["per_T"][str(t)][rule] / 1024 for t in ts], style,
                    marker="os"[i], ms=8 - 4 * i, color=f"C{i}",
                    label=f"{rule.upper()}, {key.replace('batch', 'batch ')}")
    a3.set_xscale("log")
    a3.set_yscale("log")
    a3.set_xlabel("time steps T")
    a3.set_ylabel("learning state per sample (KiB, measured)")
    cross = report["memory"]["batch1"]["crossing_T"]
    a3.set_title(f"memory per sample vs T (net 40-128-128-4)\nbatch 1 and 32 coincide; "
                 f"SOLSA < BPTT from T = {cross}", fontsize=9)
    a3.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    if "--replot" in __import__("sys").argv:   # redraw from a finished run's JSON
        out = Path(__import__("sys").argv[-1])
        plot(json.loads((out / "solsa_on_lava.json").read_text()), out / "solsa_on_lava.png")
    else:
        main()
