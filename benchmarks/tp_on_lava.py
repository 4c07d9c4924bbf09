"""Traces Propagation from the batched trainer to learning on the Lava graph, one run.

    uv run python benchmarks/tp_on_lava.py --seeds 0,1,2 --out results/tp

1. On-chip variant gap: batched TP with the batch contrast (the paper) vs the prototype
   contrast (the on-chip variant), same net, data and seeds, on digits and on the
   embedded temporal task.
2. The trained prototype-TP net (digits, first seed) as a Lava graph: accuracy of
   sim-float and sim-fixed on the test split and agreement with the batched model.
3. Online learning on the graph (``--learn tp``), evaluated on data it did not learn
   from: an under-trained net (1 epoch, lr 3e-5) and the trained net stream training
   samples through the learning graph, the test samples are measured before and after;
   batched prototype TP taking the same per-sample SGD steps (batch 1) beside it.

Writes ``tp_on_lava.json`` and ``tp_on_lava.png`` into ``--out``
(``python benchmarks/tp_on_lava.py --replot OUT`` redraws the plot from the JSON).
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
    ap.add_argument("--epochs", type=int, default=10, help="digits epochs")
    ap.add_argument("--test-samples", type=int, default=360)
    ap.add_argument("--learn-samples", type=int, default=200)
    ap.add_argument("--eta", default="2^-9,2^-7,2^-5",
                    help="learning rates of the online runs (2^k or decimals)")
    ap.add_argument("--skip-temporal", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("results/tp-on-lava"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    etas = [2.0 ** float(e[2:]) if e.startswith("2^") else float(e)
            for e in args.eta.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.out / "runs"
    report: dict = {"config": vars(args) | {"out": str(args.out)}}

    # 1. batch vs prototype contrast, batched ---------------------------------------------
    tasks = {"digits": dict(epochs=args.epochs)}
    if not args.skip_temporal:
        tasks["temporal"] = TEMPORAL
    report["gap"] = {}
    for task, setting in tasks.items():
        accs = {}
        for contrast in ("batch", "prototype"):
            accs[contrast] = []
            for s in seeds:
                d = runs / f"{task}-{contrast}-seed{s}"
                cfg = TrainConfig(rule="tp", seed=s, params={"tp_contrast": contrast},
                                  **setting)
                res = (json.loads((d / "results.json").read_text())
                       if (d / "results.json").exists() else train(cfg, d, progress=True))
                accs[contrast].append(res["test_acc"])
        report["gap"][task] = {c: {"per_seed": v, "mean": float(np.mean(v)),
                                   "std": float(np.std(v))} for c, v in accs.items()}
        print(f"\nbatched TP on {task}, test accuracy over seeds {args.seeds}\n")
        print(format_table(["contrast", "mean ± std", "per seed"],
                           [[c, f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}",
                             " ".join(f"{100 * a:.2f}" for a in v)] for c, v in accs.items()]))
        gap = 100 * (np.mean(accs["batch"]) - np.mean(accs["prototype"]))
        print(f"on-chip variant gap (batch - prototype): {gap:.2f} points", flush=True)

    # 2. the trained prototype-TP net in Lava ---------------------------------------------
    d = runs / f"digits-prototype-seed{seeds[0]}"
    report["lava"] = lava_agreement(d, args.test_samples)

    # 3. online learning on the graph -----------------------------------------------------
    weak_dir = runs / "digits-prototype-weak"
    if not (weak_dir / "checkpoint.pt").exists():
        train(TrainConfig(rule="tp", epochs=1, lr=3e-5, seed=1,
                          params={"tp_contrast": "prototype"}), weak_dir, progress=True)
    from lava_local.data import load_dataset

    rows, online = [], []
    for label, run_dir in (("under-trained", weak_dir), ("trained", d)):
        net = load_exported(export_run(run_dir))
        tr = load_dataset("digits", "train", n_steps=net.n_steps, seed=net.seed)
        te = load_dataset("digits", "test", n_steps=net.n_steps, seed=net.seed)
        for eta in etas:
            batched = None
            for backend in ("sim-float", "sim-fixed"):
                r = learn_online(net, tr, te, backend, "tp", n_learn=args.learn_samples,
                                 n_test=args.test_samples, eta=eta)
                if batched is None:
                    batched = batched_online(run_dir, net, tr, te, r.stream_indices, eta,
                                             args.test_samples)
                row = {"net": label, "backend": backend, "eta": eta,
                       "before": r.before.accuracy, "after": r.after.accuracy,
                       "batched_after": batched,
                       "learning_steps_per_second": r.stream.steps_per_second}
                online.append(row)
                rows.append([label, backend, f"2^{np.log2(eta):.0f}",
                             f"{100 * r.before.accuracy:.2f}%", f"{100 * r.after.accuracy:.2f}%",
                             f"{100 * (r.after.accuracy - r.before.accuracy):+.2f}",
                             f"{100 * batched:.2f}%", f"{r.stream.steps_per_second:.0f}"])
                print(rows[-1], flush=True)
    report["online"] = online
    print(f"\nonline learning on the graph (--learn tp): {args.learn_samples} training "
          f"samples streamed, {args.test_samples} test samples before/after\n")
    print(format_table(["net", "backend", "eta", "test before", "test after", "change",
                        "batched, same SGD steps", "learning steps/s"], rows))
    (args.out / "tp_on_lava.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out / "tp_on_lava.png")
    print(f"\nwritten: {args.out / 'tp_on_lava.json'}, {args.out / 'tp_on_lava.png'}")


def _model(run_dir: Path):
    import torch

    from lava_local.torch.train import TrainConfig, build, read_checkpoint

    ck = read_checkpoint(run_dir / "checkpoint.pt")
    cfg = TrainConfig.from_dict(ck["config"])
    model, _, trainer = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(ck["model"])
    trainer.load_state_dict(ck["trainer"])
    return model, trainer


def lava_agreement(run_dir: Path, n_test: int) -> dict:
    """Part 2: the batched model's test predictions vs the float and fixed graphs."""
    import torch

    from lava_local.cli import format_table
    from lava_local.data import load_dataset
    from lava_local.networks import export_run, load_exported
    from lava_local.networks.graph import run_network

    net = load_exported(export_run(run_dir))
    test = load_dataset("digits", "test", n_steps=net.n_steps, seed=net.seed)
    n = min(n_test, len(test))
    model, _ = _model(run_dir)
    x = torch.tensor(test.spikes[:n]).permute(1, 0, 2).float()
    batched = model.predict_logits(x, net.window_start).argmax(-1).numpy()
    lava = {"batched": {"accuracy": float((batched == test.labels[:n]).mean())}}
    for b in ("sim-float", "sim-fixed"):
        r = run_network(net, test, backend=b, n_samples=n, progress=True)
        lava[b] = {"accuracy": r.accuracy, "agreement": float((r.predictions == batched).mean()),
                   "steps_per_second": r.steps_per_second}
    print(f"\nthe trained prototype-TP net ({run_dir.name}) on {n} test samples\n")
    print(format_table(["", "accuracy", "agreement with batched", "steps/s"],
                       [[k, f"{100 * v['accuracy']:.2f}%",
                         f"{100 * v['agreement']:.2f}%" if "agreement" in v else "-",
                         f"{v['steps_per_second']:.0f}" if "steps_per_second" in v else "-"]
                        for k, v in lava.items()]), flush=True)
    return lava


def batched_online(run_dir: Path, net, train_ds, test_ds, order, eta: float,
                   n_test: int) -> float:
    """Batched prototype TP taking the graph's SGD steps (batch 1, every signal scaled by
    1/(T - T_l) as on the graph) on the same stream; its test accuracy after."""
    import torch

    from lava_local.rules import TPParams
    from lava_local.rules.tp import TPTrainer

    model, trainer = _model(run_dir)
    model.double()
    n_win = net.n_steps - net.window_start
    tr = TPTrainer(model, torch.optim.SGD(model.parameters(), lr=eta / n_win),
                   TPParams(contrast="prototype", beta=trainer.params.beta))
    tr.load_state_dict({"label_proj": trainer.label_proj.double()})
    for i in order:
        x = torch.tensor(train_ds.spikes[i:i + 1]).permute(1, 0, 2).double()
        tr.train_batch(x, torch.tensor(train_ds.labels[i:i + 1]))
    n = min(n_test, len(test_ds))
    x = torch.tensor(test_ds.spikes[:n]).permute(1, 0, 2).double()
    pred = model.predict_logits(x, net.window_start).argmax(-1).numpy()
    return float((pred == test_ds.labels[:n]).mean())


def plot(report: dict, path: Path) -> None:
    """Left: batched TP, batch vs prototype contrast per task; right: test-accuracy
    change of every online run on the graph (and of batched TP on the same stream)."""
    import numpy as np

    from lava_local.plots import _plt

    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.4))
    tasks = list(report["gap"])
    for i, c in enumerate(("batch", "prototype")):
        means = [100 * report["gap"][t][c]["mean"] for t in tasks]
        stds = [100 * report["gap"][t][c]["std"] for t in tasks]
        bars = a1.bar(np.arange(len(tasks)) + 0.38 * i, means, 0.36, yerr=stds, capsize=4,
                      label=f"{c} contrast", color=f"C{i}")
        a1.bar_label(bars, fmt="%.1f", fontsize=7)
    a1.set_xticks(np.arange(len(tasks)) + 0.19, tasks)
    a1.set_ylabel("test accuracy (%)")
    n_seeds = len(report["gap"][tasks[0]]["batch"]["per_seed"])
    a1.set_title(f"batched TP, {n_seeds} seeds: batch vs prototype contrast", fontsize=9)
    a1.legend(fontsize=8, loc="lower left")
    online = report["online"]
    labels = [f"{'weak' if o['net'] == 'under-trained' else 'trained'} {o['backend'][4:]} "
              f"η=2^{np.log2(o['eta']):.0f}" for o in online]
    change = [100 * (o["after"] - o["before"]) for o in online]
    ref = [100 * (o["batched_after"] - o["before"]) for o in online]
    x = np.arange(len(change))
    a2.bar(x, change, 0.6, color=["C3" if c < 0 else "C2" for c in change],
           label="Lava graph")
    a2.scatter(x, ref, color="k", marker="_", s=120, zorder=3,
               label="batched prototype TP, same SGD steps")
    a2.axhline(0, color="k", lw=0.8)
    a2.set_xticks(x, labels, rotation=90, fontsize=7)
    a2.set_ylabel("test accuracy after - before (points)")
    a2.set_title("digits: learning on the graph from training samples, measured on test "
                 "samples", fontsize=9)
    a2.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    if "--replot" in __import__("sys").argv:   # redraw from a finished run's JSON
        out = Path(__import__("sys").argv[-1])
        plot(json.loads((out / "tp_on_lava.json").read_text()), out / "tp_on_lava.png")
    else:
        main()
