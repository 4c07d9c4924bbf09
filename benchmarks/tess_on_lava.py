"""TESS from the batched trainer to learning on the Lava graph, measured in one run.

    uv run python benchmarks/tess_on_lava.py --seeds 0,1,2 --out results/tess

1. On-chip variant gap: batched TESS with f = softmax vs f = identity on digits, same
   net, data and seeds.
2. The trained (softmax, seed 0) net as a Lava graph: accuracy of sim-float and sim-fixed
   on the test split and agreement with the batched model's predictions.
3. Online learning on the graph, evaluated honestly: an under-trained net (1 epoch,
   lr 3e-4) and the trained net stream training samples through the learning graph
   (``--learn tess``; S-TLLR-DFA beside it), then the test samples — never learned from —
   are measured before and after; steps/s of the learning graph.
4. Why the learning engines' traces are reset per sample: S-TLLR-DFA on the trained net,
   float graph with and without the reset, beside batched S-TLLR-DFA taking the same
   per-sample SGD steps on the same stream (``--only-reset`` runs this part alone).

Writes ``tess_on_lava.json`` and ``tess_on_lava.png`` into ``--out``
(``python benchmarks/tess_on_lava.py --replot OUT`` redraws the plot from the JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

if __name__ == "__main__":
    from lava_local.lava_runtime import ensure_lava_runtime

    ensure_lava_runtime()


def main() -> None:
    import numpy as np
    import torch

    from lava_local.cli import format_table
    from lava_local.data import load_dataset
    from lava_local.networks import export_run, load_exported
    from lava_local.networks.graph import run_network
    from lava_local.networks.online import learn_online
    from lava_local.rules import TESSParams
    from lava_local.torch.train import TrainConfig, build, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--test-samples", type=int, default=360)
    ap.add_argument("--learn-samples", type=int, default=200)
    ap.add_argument("--online-test-samples", type=int, default=360)
    ap.add_argument("--eta", default="2^-9,2^-7",
                    help="learning rates of the online runs (2^k or decimals)")
    ap.add_argument("--out", type=Path, default=Path("results/tess-on-lava"))
    ap.add_argument("--only-reset", action="store_true",
                    help="run part 4 only (adds it to an existing tess_on_lava.json)")
    args = ap.parse_args()
    if args.only_reset:
        path = args.out / "tess_on_lava.json"
        report = json.loads(path.read_text()) if path.exists() else {}
        report["reset"] = reset_check(args, int(args.seeds.split(",")[0]))
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    etas = [2.0 ** float(e[2:]) if e.startswith("2^") else float(e)
            for e in args.eta.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.out / "runs"
    report: dict = {"config": vars(args) | {"out": str(args.out)}}

    # 1. softmax vs identity, batched ----------------------------------------------------
    gap = {f: [] for f in ("softmax", "identity")}
    for f in gap:
        for s in seeds:
            d = runs / f"tess-{f}-seed{s}"
            cfg = TrainConfig(rule="tess", params=TESSParams(f=f), epochs=args.epochs, seed=s)
            res = (json.loads((d / "results.json").read_text()) if (d / "results.json").exists()
                   else train(cfg, d, progress=True))
            gap[f].append(res["test_acc"])
    report["gap"] = {f: {"per_seed": v, "mean": float(np.mean(v)), "std": float(np.std(v))}
                     for f, v in gap.items()}
    print("\nbatched TESS on digits (64-128-128-10, T = 20, "
          f"{args.epochs} epochs), test accuracy\n")
    print(format_table(["f", "mean ± std", "per seed"],
                       [[f, f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}",
                         " ".join(f"{100 * a:.2f}" for a in v)] for f, v in gap.items()]))
    d_gap = 100 * (np.mean(gap["softmax"]) - np.mean(gap["identity"]))
    print(f"on-chip variant gap (softmax - identity): {d_gap:.2f} points")

    # 2. the trained net in Lava --------------------------------------------------------
    d = runs / f"tess-softmax-seed{seeds[0]}"
    net = load_exported(export_run(d))
    test = load_dataset("digits", "test", n_steps=net.n_steps, seed=net.seed)
    n = min(args.test_samples, len(test))
    cfg = TrainConfig(rule="tess", epochs=args.epochs, seed=seeds[0])
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(torch.load(d / "checkpoint.pt")["model"])
    x = torch.tensor(test.spikes[:n]).permute(1, 0, 2).float()
    batched = model.predict_logits(x, net.window_start).argmax(-1).numpy()
    lava = {"batched": {"accuracy": float((batched == test.labels[:n]).mean())}}
    for b in ("sim-float", "sim-fixed"):
        r = run_network(net, test, backend=b, n_samples=n, progress=True)
        lava[b] = {"accuracy": r.accuracy, "agreement": float((r.predictions == batched).mean()),
                   "steps_per_second": r.steps_per_second}
    report["lava"] = lava
    print(f"\nthe trained net (f = softmax, seed {seeds[0]}) on {n} test samples\n")
    print(format_table(["", "accuracy", "agreement with batched", "steps/s"],
                       [[k, f"{100 * v['accuracy']:.2f}%",
                         f"{100 * v['agreement']:.2f}%" if "agreement" in v else "-",
                         f"{v['steps_per_second']:.0f}" if "steps_per_second" in v else "-"]
                        for k, v in lava.items()]))

    # 3. online learning on the graph ----------------------------------------------------
    weak_dir = runs / "tess-weak"
    if not (weak_dir / "checkpoint.pt").exists():
        train(TrainConfig(rule="tess", epochs=1, lr=3e-4, seed=1), weak_dir, progress=True)
    rows, online = [], []
    for label, run_dir in (("under-trained", weak_dir), ("trained", d)):
        net = load_exported(export_run(run_dir))
        tr = load_dataset("digits", "train", n_steps=net.n_steps, seed=net.seed)
        te = load_dataset("digits", "test", n_steps=net.n_steps, seed=net.seed)
        for backend, mode, opts in (("sim-float", "tess", {"tess_f": "softmax"}),
                                    ("sim-float", "tess", {"tess_f": "identity"}),
                                    ("sim-fixed", "tess", {"tess_f": "identity"}),
                                    ("sim-float", "stllr-dfa", None),
                                    ("sim-fixed", "stllr-dfa", None)):
            for eta in etas:
                r = learn_online(net, tr, te, backend, mode, n_learn=args.learn_samples,
                                 n_test=args.online_test_samples, eta=eta, options=opts)
                f = r.stream.learning.get("f", "")
                row = {"net": label, "backend": backend, "mode": mode, "f": f, "eta": eta,
                       "before": r.before.accuracy, "after": r.after.accuracy,
                       "learning_steps_per_second": r.stream.steps_per_second}
                online.append(row)
                rows.append([label, backend, f"{mode} {f}".strip(), f"2^{np.log2(eta):.0f}",
                             f"{100 * r.before.accuracy:.2f}%", f"{100 * r.after.accuracy:.2f}%",
                             f"{100 * (r.after.accuracy - r.before.accuracy):+.2f}",
                             f"{r.stream.steps_per_second:.0f}"])
                print(rows[-1], flush=True)
    report["online"] = online
    print(f"\nonline learning on the graph: {args.learn_samples} training samples streamed, "
          f"{args.online_test_samples} test samples before/after\n")
    print(format_table(["net", "backend", "learning", "eta", "test before", "test after",
                        "change", "learning steps/s"], rows))
    report["reset"] = reset_check(args, seeds[0])
    (args.out / "tess_on_lava.json").write_text(json.dumps(report, indent=2) + "\n")

    plot(report, args.out / "tess_on_lava.png")
    print(f"\nwritten: {args.out / 'tess_on_lava.json'}, {args.out / 'tess_on_lava.png'}")


def reset_check(args, seed: int) -> dict:
    """Part 4 (see module doc): test accuracy after S-TLLR-DFA learning at η = 2^-7."""
    import torch

    from lava_local.cli import format_table
    from lava_local.data import load_dataset
    from lava_local.networks import export_run, load_exported
    from lava_local.networks.online import learn_online
    from lava_local.rules import STLLRParams
    from lava_local.rules.stllr import STLLRTrainer, default_feedback
    from lava_local.rules.tess import TESSParams
    from lava_local.torch.train import TrainConfig, build, train

    eta = 2.0 ** -7
    d = args.out / "runs" / f"tess-softmax-seed{seed}"
    cfg = TrainConfig(rule="tess", params=TESSParams(f="softmax"), epochs=args.epochs,
                      seed=seed)
    if not (d / "checkpoint.pt").exists():
        train(cfg, d, progress=True)
    net = load_exported(export_run(d))
    tr = load_dataset("digits", "train", n_steps=net.n_steps, seed=net.seed)
    te = load_dataset("digits", "test", n_steps=net.n_steps, seed=net.seed)
    n = min(args.online_test_samples, len(te))
    out = {"eta": eta, "n_learn": args.learn_samples, "n_test": n}
    for reset in (False, True):
        r = learn_online(net, tr, te, "sim-float", "stllr-dfa", n_learn=args.learn_samples,
                         n_test=n, eta=eta, reset_traces=reset)
        out["before"] = r.before.accuracy
        out["graph_reset" if reset else "graph_no_reset"] = r.after.accuracy
        order = r.stream_indices
    # batched S-TLLR-DFA: the same stream, the graph's feedback matrices, SGD(η) per sample
    model, _, _ = build(cfg, 64, 10, torch.device("cpu"))
    model.load_state_dict(torch.load(d / "checkpoint.pt")["model"])
    model.double()
    trainer = STLLRTrainer(model, torch.optim.SGD(model.parameters(), lr=eta),
                           STLLRParams(signal="dfa", online=True))
    trainer.feedback = [torch.tensor(b) for b in default_feedback(net.layer_sizes, 0)]
    for i in order:
        x = torch.tensor(tr.spikes[i:i + 1]).permute(1, 0, 2).double()
        trainer.train_batch(x, torch.tensor(tr.labels[i:i + 1]))
    x = torch.tensor(te.spikes[:n]).permute(1, 0, 2).double()
    pred = model.predict_logits(x, net.window_start).argmax(-1).numpy()
    out["batched"] = float((pred == te.labels[:n]).mean())
    print(f"\nS-TLLR-DFA learning (η = 2^-7, {args.learn_samples} training samples) on the "
          f"trained net, {n} test samples\n")
    print(format_table(["", "test accuracy"], [
        ["before", f"{100 * out['before']:.2f}%"],
        ["graph, traces run on across samples", f"{100 * out['graph_no_reset']:.2f}%"],
        ["graph, traces reset per sample", f"{100 * out['graph_reset']:.2f}%"],
        ["batched S-TLLR-DFA, same SGD steps", f"{100 * out['batched']:.2f}%"]]))
    return out


def plot(report: dict, path: Path) -> None:
    """Left: batched TESS, softmax vs identity; right: test-accuracy change of every
    online run on the graph."""
    import numpy as np

    from lava_local.plots import _plt

    gap = {f: v["per_seed"] for f, v in report["gap"].items()}
    online = report["online"]
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    a1.bar(list(gap), [100 * np.mean(v) for v in gap.values()],
           yerr=[100 * np.std(v) for v in gap.values()], color=["C1", "C2"], capsize=4)
    a1.set_ylabel("test accuracy (%)")
    a1.set_ylim(100 * min(min(v) for v in gap.values()) - 5, 100)
    a1.set_title(f"batched TESS on digits, {len(next(iter(gap.values())))} seeds: "
                 "f = softmax vs identity", fontsize=9)
    labels = [f"{'weak' if o['net'] == 'under-trained' else 'trained'} net, "
              f"{o['backend'][4:]} {o['mode']} {o['f']} "
              f"η=2^{np.log2(o['eta']):.0f}" for o in online]
    change = [100 * (o["after"] - o["before"]) for o in online]
    a2.bar(range(len(change)), change, color=["C3" if c < 0 else "C2" for c in change])
    a2.axhline(0, color="k", lw=0.8)
    a2.set_xticks(range(len(change)), labels, rotation=90, fontsize=6)
    a2.set_ylabel("test accuracy after - before (points)")
    a2.set_title("learning on the Lava graph from training samples, measured on test "
                 "samples", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    if "--replot" in __import__("sys").argv:   # redraw from a finished run's JSON
        out = Path(__import__("sys").argv[-1])
        plot(json.loads((out / "tess_on_lava.json").read_text()), out / "tess_on_lava.png")
    else:
        main()
